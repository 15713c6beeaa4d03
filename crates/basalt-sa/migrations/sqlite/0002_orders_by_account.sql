-- An account's orders list (RFC 8555 §7.1.2.1), newest first: keyset paging walks
-- (account_id, created_at DESC, id DESC), so the index carries the id tie-break. It
-- covers everything the older (account_id, created_at) index did, which it replaces.

CREATE INDEX orders_account_created_id ON orders (account_id, created_at, id);

DROP INDEX orders_account_id;
