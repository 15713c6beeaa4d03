-- Basalt's schema, MySQL/MariaDB flavour: the same tables and indexes as PostgreSQL's
-- 0001, in InnoDB.
--
-- MySQL differences, and why:
-- - Every table is utf8mb4 with the binary collation `utf8mb4_bin`: key thumbprints,
--   tokens and serials are case-sensitive, and the default collations compare
--   case-insensitively (two keys whose thumbprints differ only in case would collide).
-- - Indexed strings are VARCHAR, since MySQL cannot index a TEXT column whole.
-- - Indexes are declared inside CREATE TABLE and every table is CREATE TABLE IF NOT
--   EXISTS: DDL commits implicitly in MySQL, so a migration cut short by a crash must
--   be safe to run again from the start.

CREATE TABLE IF NOT EXISTS accounts (
    id BIGINT NOT NULL PRIMARY KEY,
    key_jwk TEXT NOT NULL,
    key_thumbprint VARCHAR(255) NOT NULL,
    contacts TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY accounts_key_thumbprint (key_thumbprint)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS orders (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    identifiers TEXT NOT NULL,
    expires BIGINT NOT NULL,
    error TEXT,
    began_processing BIGINT NOT NULL DEFAULT 0,
    certificate_serial VARCHAR(128),
    created_at BIGINT NOT NULL,
    profile VARCHAR(255) NOT NULL DEFAULT '',
    not_before BIGINT,
    not_after BIGINT,
    replaces VARCHAR(128),
    KEY orders_account_created_id (account_id, created_at, id),
    KEY orders_replaces (replaces)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS authzs (
    id BIGINT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    identifier_type VARCHAR(16) NOT NULL,
    identifier_value VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    expires BIGINT NOT NULL,
    wildcard BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    KEY authzs_account_identifier
        (account_id, identifier_type, identifier_value, status, expires)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_authzs (
    order_id BIGINT NOT NULL,
    authz_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (order_id, authz_id),
    KEY order_authzs_authz_id (authz_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS challenges (
    authz_id BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    position BIGINT NOT NULL,
    token VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    validated BIGINT,
    error TEXT,
    validation_records TEXT NOT NULL,
    PRIMARY KEY (authz_id, kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS serials (
    serial VARCHAR(128) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS precertificates (
    serial VARCHAR(128) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    der MEDIUMBLOB NOT NULL,
    issued_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS certificates (
    serial VARCHAR(128) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    der MEDIUMBLOB NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    KEY certificates_account_id (account_id, issued_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS certificate_chains (
    serial VARCHAR(128) NOT NULL,
    position BIGINT NOT NULL,
    der MEDIUMBLOB NOT NULL,
    PRIMARY KEY (serial, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS certificate_status (
    serial VARCHAR(128) NOT NULL PRIMARY KEY,
    status VARCHAR(32) NOT NULL,
    revoked_at BIGINT,
    revoked_reason BIGINT,
    not_after BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    KEY certificate_status_not_after (not_after, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS eab_keys (
    key_id VARCHAR(255) NOT NULL PRIMARY KEY,
    hmac_key BLOB NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    account_id BIGINT,
    KEY eab_keys_created_at (created_at, key_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
