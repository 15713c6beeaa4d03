-- The blocked-keys list: public keys refused as account keys and in CSRs, named by the
-- SHA-256 of their DER SubjectPublicKeyInfo (32 bytes). `source` is "admin" (an
-- operator blocked it) or "key-compromise" (a revocation signed by the key proved it
-- compromised); `added_at` is unix seconds.
CREATE TABLE blocked_keys (
    spki_sha256 BLOB NOT NULL PRIMARY KEY,
    added_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    comment TEXT NOT NULL
);
