-- Which request began validating a challenge, so that the same request, repeated after
-- its answer was lost to a crash, is told it still owns the validation.
ALTER TABLE challenges ADD COLUMN processing_attempt TEXT;
