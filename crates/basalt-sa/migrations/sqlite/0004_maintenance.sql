-- When an order began processing, so the SA can find orders whose issuance was cut
-- short (a crash between "processing" and "valid") and settle them; and indexes for
-- the purge of expired orders and authorizations.
ALTER TABLE orders ADD COLUMN processing_at BIGINT;
CREATE INDEX orders_processing ON orders (began_processing, processing_at);
CREATE INDEX orders_expires ON orders (expires);
CREATE INDEX authzs_expires ON authzs (expires);
