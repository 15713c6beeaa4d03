-- Incidents an operator declared (`basalt admin incident`): the certificates each
-- names are to be renewed at once, so ARI (RFC 9773) moves their renewal window to
-- now. `id` is a random positive 64-bit integer chosen by the SA; `name` is the
-- operator's unique short name; `url` explains the incident (may be empty);
-- `serial_count` is how many serials it names, kept so that neither the listing nor
-- an ARI answer counts rows. An incident is never changed once declared.
CREATE TABLE incidents (
    id BIGINT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    serial_count BIGINT NOT NULL
);

CREATE UNIQUE INDEX incidents_name ON incidents (name);

-- The serials each incident names. ARI looks an incident up by serial.
CREATE TABLE incident_serials (
    incident_id BIGINT NOT NULL,
    serial TEXT NOT NULL,
    PRIMARY KEY (incident_id, serial)
);

CREATE INDEX incident_serials_serial ON incident_serials (serial);
