-- Orders carry the certificate profile they asked for (draft-ietf-acme-profiles), the
-- validity window they requested (RFC 8555 §7.4) and the certificate they replace
-- (RFC 9773 §5). Orders made before this migration asked for no particular profile:
-- '' stands for "the RA's default", and they requested no window and replace nothing.

ALTER TABLE orders ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN not_before BIGINT;
ALTER TABLE orders ADD COLUMN not_after BIGINT;
ALTER TABLE orders ADD COLUMN replaces TEXT;

-- newOrder refuses a second live replacement, and ARI answers which order replaces a
-- certificate: both look orders up by the serial they replace.
CREATE INDEX orders_replaces ON orders (replaces);

-- External account binding keys (RFC 8555 §7.3.4). `account_id` is the account the key
-- was used for; a key binds one account only, so it is set once and never cleared.
CREATE TABLE eab_keys (
    key_id TEXT NOT NULL PRIMARY KEY,
    hmac_key BLOB NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    account_id BIGINT
);

-- The operator's listing is newest first.
CREATE INDEX eab_keys_created_at ON eab_keys (created_at, key_id);
