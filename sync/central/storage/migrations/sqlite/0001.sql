CREATE TABLE kiosks (
    kiosk_id TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    public_key BLOB NOT NULL,             -- raw Ed25519 device key
    registered_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    received_at REAL NOT NULL,
    records INTEGER NOT NULL
);
CREATE TABLE records (
    record_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    seq INTEGER NOT NULL,
    captured_at REAL NOT NULL,
    clock_synced INTEGER NOT NULL,
    retention TEXT NOT NULL,
    delete_after REAL NOT NULL,
    seal_kid TEXT NOT NULL,
    sealed BLOB NOT NULL,
    batch_id TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX records_kiosk_seq ON records (kiosk_id, seq);
CREATE INDEX records_delete_after ON records (delete_after);
CREATE TABLE risk (
    pass_ref TEXT PRIMARY KEY,            -- what kiosks see: a hash of the pass id
    pass_id TEXT NOT NULL,                -- the committee's own record
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
    updated_at REAL NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('risk_version', '1');
