-- Releases of the kiosk software (issue 32), as a TUF repository: the metadata the committee
-- signed offline (each root version, the current targets) and the files they list (the
-- current release's wheels and its release.json). The server signs snapshot and timestamp
-- itself, as kiosks ask; it stores neither.
CREATE TABLE update_metadata (name TEXT PRIMARY KEY, doc TEXT NOT NULL, published_at DOUBLE PRECISION NOT NULL);
CREATE TABLE update_targets (path TEXT PRIMARY KEY, data BYTEA NOT NULL, added_at DOUBLE PRECISION NOT NULL);
