-- Where each serial's revocation is published, as the CA says when it stores the
-- precertificate: `issuer_key_hash` is the SHA-1 of the issuer's subjectPublicKey (20
-- bytes, the key hash OCSP CertIDs carry) and `crl_shard` the CRL shard its CRL
-- distribution point names (NULL when it names none). Rows stored before this
-- migration keep both NULL: their certificates carry no CRL distribution point from
-- this scheme, so no CRL shard lists them. MariaDB's IF NOT EXISTS keeps the file safe
-- to run again after a crash between its statements.
ALTER TABLE certificate_status
    ADD COLUMN IF NOT EXISTS issuer_key_hash VARBINARY(20),
    ADD COLUMN IF NOT EXISTS crl_shard BIGINT,
    -- A CRL shard's revoked, unexpired certificates.
    ADD INDEX IF NOT EXISTS certificate_status_crl
        (status, issuer_key_hash, crl_shard, not_after),
    -- The status-change feed, in the order it is read.
    ADD INDEX IF NOT EXISTS certificate_status_last_updated (last_updated, serial);
