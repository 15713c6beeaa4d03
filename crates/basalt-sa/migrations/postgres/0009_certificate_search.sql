-- Certificate search for operators (`basalt admin certs`, `basalt admin revoke-key`):
-- the names and the key of each precertificate, written in the same transaction as
-- the precertificate itself.
--
-- NOT BACKFILLED: precertificates stored before this migration have no rows here, so
-- a search by name or by key does not find them (filling the tables would mean
-- parsing every stored certificate inside the migration). A search by account finds
-- every precertificate, old ones included, through the index at the end.
--
-- `issued_names`: one row per DNS name or IP address a precertificate names. A DNS
-- name is stored with its labels reversed (`www.example.com` as `com.example.www`),
-- so a name and every name under it are one range of the primary key: `com.example`
-- itself, then everything after `com.example.` and before `com.example/` ('/' is the
-- character after '.'). The "C" collation makes that range the one bytes give,
-- whatever the database's locale. An IP address is stored as it is. `not_before` is
-- the precertificate's notBefore (unix seconds).
CREATE TABLE issued_names (
    identifier_type TEXT NOT NULL,
    reversed_name TEXT COLLATE "C" NOT NULL,
    serial TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    PRIMARY KEY (identifier_type, reversed_name, serial)
);

-- `key_hash_serials`: the SHA-256 of each precertificate's DER SubjectPublicKeyInfo
-- (32 bytes, as the blocked-keys list names keys), and its notAfter (unix seconds).
CREATE TABLE key_hash_serials (
    spki_sha256 BYTEA NOT NULL,
    serial TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    PRIMARY KEY (spki_sha256, serial)
);

-- An account's precertificates, newest first.
CREATE INDEX precertificates_account_id ON precertificates (account_id, issued_at);
