-- Which finalize request began processing an order, so that the same request, repeated
-- after its answer was lost to a crash, is told it still owns the issuance.
ALTER TABLE orders ADD COLUMN processing_attempt TEXT;
