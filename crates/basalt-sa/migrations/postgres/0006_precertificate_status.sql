-- A precertificate now gives its serial a status when it is stored, so a serial whose
-- certificate was never stored (the CA died after the precertificate) can be revoked
-- and answered for by OCSP. Precertificates stored before have none: they get one,
-- good, expiring when their serial's reservation says.
INSERT INTO certificate_status (serial, status, not_after, last_updated)
SELECT p.serial, 'good', s.expires_at, p.issued_at
FROM precertificates p
JOIN serials s ON s.serial = p.serial
WHERE NOT EXISTS (SELECT 1 FROM certificate_status cs WHERE cs.serial = p.serial);
