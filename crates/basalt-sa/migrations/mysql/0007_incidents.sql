-- Incidents an operator declared (`basalt admin incident`): the certificates each
-- names are to be renewed at once, so ARI (RFC 9773) moves their renewal window to
-- now. `id` is a random positive 64-bit integer chosen by the SA; `name` is the
-- operator's unique short name; `url` explains the incident (may be empty);
-- `serial_count` is how many serials it names, kept so that neither the listing nor
-- an ARI answer counts rows. An incident is never changed once declared. IF NOT
-- EXISTS keeps the file safe to run again after a crash.
CREATE TABLE IF NOT EXISTS incidents (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    url TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    serial_count BIGINT NOT NULL,
    UNIQUE KEY incidents_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The serials each incident names. ARI looks an incident up by serial.
CREATE TABLE IF NOT EXISTS incident_serials (
    incident_id BIGINT NOT NULL,
    serial VARCHAR(128) NOT NULL,
    PRIMARY KEY (incident_id, serial),
    KEY incident_serials_serial (serial)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
