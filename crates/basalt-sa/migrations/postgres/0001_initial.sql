-- Basalt's schema, PostgreSQL flavour: the end state of the SQLite migrations 0001-0003.
--
-- Portability rules (so CockroachDB and YugabyteDB accept the same file): IDs are random
-- positive 64-bit integers chosen by the SA, never sequences; no table relies on a
-- cross-table foreign key for correctness; times are unix seconds; booleans are 0/1
-- integers; every integer is BIGINT so one Rust type (i64) reads every column; statuses
-- are their RFC 8555 strings; lists and errors are JSON text.

CREATE TABLE accounts (
    id BIGINT NOT NULL PRIMARY KEY,
    key_jwk TEXT NOT NULL,
    key_thumbprint TEXT NOT NULL,
    contacts TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX accounts_key_thumbprint ON accounts (key_thumbprint);

CREATE TABLE orders (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    identifiers TEXT NOT NULL,
    expires BIGINT NOT NULL,
    error TEXT,
    began_processing BIGINT NOT NULL DEFAULT 0,
    certificate_serial TEXT,
    created_at BIGINT NOT NULL,
    profile TEXT NOT NULL DEFAULT '',
    not_before BIGINT,
    not_after BIGINT,
    replaces TEXT
);

-- An account's orders list, newest first, keyset paged on (created_at, id).
CREATE INDEX orders_account_created_id ON orders (account_id, created_at, id);

-- newOrder refuses a second live replacement, and ARI answers which order replaces a
-- certificate: both look orders up by the serial they replace.
CREATE INDEX orders_replaces ON orders (replaces);

CREATE TABLE authzs (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    identifier_type TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    status TEXT NOT NULL,
    expires BIGINT NOT NULL,
    wildcard BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Authorization reuse looks up an account's valid authorizations by name.
CREATE INDEX authzs_account_identifier
    ON authzs (account_id, identifier_type, identifier_value, status, expires);

-- Which authorizations an order needs; `position` keeps the order's own ordering.
CREATE TABLE order_authzs (
    order_id BIGINT NOT NULL,
    authz_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (order_id, authz_id)
);

CREATE INDEX order_authzs_authz_id ON order_authzs (authz_id);

CREATE TABLE challenges (
    authz_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    position BIGINT NOT NULL,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    validated BIGINT,
    error TEXT,
    validation_records TEXT NOT NULL,
    PRIMARY KEY (authz_id, kind)
);

-- Every serial ever handed out, so that none is used twice.
CREATE TABLE serials (
    serial TEXT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Linted precertificates, stored before the issuer key signs anything with their serial.
CREATE TABLE precertificates (
    serial TEXT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    der BYTEA NOT NULL,
    issued_at BIGINT NOT NULL
);

CREATE TABLE certificates (
    serial TEXT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    der BYTEA NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX certificates_account_id ON certificates (account_id, issued_at);

-- The issuer chain of each certificate, nearest issuer at position 0.
CREATE TABLE certificate_chains (
    serial TEXT NOT NULL,
    position BIGINT NOT NULL,
    der BYTEA NOT NULL,
    PRIMARY KEY (serial, position)
);

CREATE TABLE certificate_status (
    serial TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_reason BIGINT,
    not_after BIGINT NOT NULL,
    last_updated BIGINT NOT NULL
);

-- The OCSP and CRL updaters walk unexpired certificates by expiry.
CREATE INDEX certificate_status_not_after ON certificate_status (not_after, status);

-- External account binding keys (RFC 8555 §7.3.4). `account_id` is the account the key
-- was used for; a key binds one account only, so it is set once and never cleared.
CREATE TABLE eab_keys (
    key_id TEXT NOT NULL PRIMARY KEY,
    hmac_key BYTEA NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    account_id BIGINT
);

-- The operator's listing is newest first.
CREATE INDEX eab_keys_created_at ON eab_keys (created_at, key_id);
