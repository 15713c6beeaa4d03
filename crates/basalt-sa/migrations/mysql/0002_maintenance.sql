-- When an order began processing, so the SA can find orders whose issuance was cut
-- short (a crash between "processing" and "valid") and settle them; and indexes for
-- the purge of expired orders and authorizations. MariaDB's IF NOT EXISTS keeps the
-- file safe to run again after a crash between its statements.
ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS processing_at BIGINT,
    ADD INDEX IF NOT EXISTS orders_processing (began_processing, processing_at),
    ADD INDEX IF NOT EXISTS orders_expires (expires);
ALTER TABLE authzs ADD INDEX IF NOT EXISTS authzs_expires (expires);
