-- The blocked-keys list: public keys refused as account keys and in CSRs, named by the
-- SHA-256 of their DER SubjectPublicKeyInfo (32 bytes). `source` is "admin" (an
-- operator blocked it) or "key-compromise" (a revocation signed by the key proved it
-- compromised); `added_at` is unix seconds. IF NOT EXISTS keeps the file safe to run
-- again after a crash.
CREATE TABLE IF NOT EXISTS blocked_keys (
    spki_sha256 VARBINARY(32) NOT NULL PRIMARY KEY,
    added_at BIGINT NOT NULL,
    source VARCHAR(32) NOT NULL,
    comment TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
