-- The committee's audit log (sync/central/audit.py): hash-chained, signed entries.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,               -- canonical JSON; the hash covers exactly this
    hash TEXT NOT NULL UNIQUE,
    signature TEXT                     -- NULL only for the bootstrap entry
);
-- The server keeps what kiosks match on (the pass reference hash), not pass ids.
UPDATE risk SET pass_id = '';
-- The risk list as deltas: the version at which each entry last changed; an expired or
-- lowered entry stays as a level-0 tombstone for TOMBSTONE_DAYS, then delta_floor rises.
ALTER TABLE risk ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX risk_changed ON risk (changed);
INSERT INTO meta (key, value) VALUES ('delta_floor', '0');
-- For the operator's view: each batch's newest capture (how long records waited).
ALTER TABLE batches ADD COLUMN newest_capture REAL;
CREATE INDEX batches_kiosk ON batches (kiosk_id, received_at);
-- Search tags (kiosk.core.sealkeys.search_tag) and the tag keys sealed to each kiosk.
ALTER TABLE records ADD COLUMN tag TEXT;
CREATE INDEX records_tag ON records (tag) WHERE tag IS NOT NULL;
ALTER TABLE kiosks ADD COLUMN tag_public BLOB;      -- the kiosk's X25519 key for tag keys
CREATE TABLE tag_keys (
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    valid_from REAL NOT NULL,
    valid_to REAL NOT NULL,
    sealed BLOB NOT NULL,                           -- only that kiosk can open it
    PRIMARY KEY (kiosk_id, valid_from)
);
