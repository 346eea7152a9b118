CREATE TABLE kiosks (
    kiosk_id TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    tag_public BYTEA
);
CREATE UNIQUE INDEX kiosks_active_key ON kiosks (public_key) WHERE revoked_at IS NULL;
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    received_at DOUBLE PRECISION NOT NULL,
    records INTEGER NOT NULL,
    newest_capture DOUBLE PRECISION
);
CREATE INDEX batches_received_at ON batches (received_at);
CREATE INDEX batches_kiosk ON batches (kiosk_id, received_at);
-- Partitioned by retention class, then by capture day (records_<class>_<yyyymmdd>, made
-- ahead by the server): retention drops whole days; a default partition catches the rest.
CREATE TABLE records (
    record_id UUID NOT NULL,
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    captured_at DOUBLE PRECISION NOT NULL,
    clock_synced BOOLEAN NOT NULL,
    retention TEXT NOT NULL CHECK (retention IN ('normal', 'significant')),
    delete_after DOUBLE PRECISION NOT NULL,
    seal_kid TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    batch_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    seal_fallback BOOLEAN NOT NULL DEFAULT false,
    tag TEXT,
    PRIMARY KEY (record_id, retention, captured_at)
) PARTITION BY LIST (retention);
CREATE TABLE records_normal PARTITION OF records FOR VALUES IN ('normal')
    PARTITION BY RANGE (captured_at);
CREATE TABLE records_significant PARTITION OF records FOR VALUES IN ('significant')
    PARTITION BY RANGE (captured_at);
CREATE TABLE records_normal_default PARTITION OF records_normal DEFAULT;
CREATE TABLE records_significant_default PARTITION OF records_significant DEFAULT;
CREATE INDEX records_record_id ON records (record_id);
CREATE INDEX records_kiosk_epoch_seq ON records (kiosk_id, epoch, seq);
CREATE INDEX records_delete_after ON records (delete_after);
CREATE INDEX records_captured_at ON records (captured_at);
CREATE INDEX records_tag ON records (tag) WHERE tag IS NOT NULL;
CREATE TABLE risk (
    pass_ref TEXT PRIMARY KEY,            -- what kiosks match on; never the pass id
    level SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 3),
    updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    changed BIGINT NOT NULL DEFAULT 0     -- the risk version at its last change
);
CREATE INDEX risk_changed ON risk (changed);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('risk_version', '1'), ('delta_floor', '0');
CREATE TABLE reads (
    read_id BIGSERIAL PRIMARY KEY,
    read_at DOUBLE PRECISION NOT NULL,
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    kiosk_id TEXT,
    from_ts DOUBLE PRECISION,
    to_ts DOUBLE PRECISION,
    records INTEGER NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    signature TEXT
);
CREATE TABLE tag_keys (
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    valid_from DOUBLE PRECISION NOT NULL,
    valid_to DOUBLE PRECISION NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (kiosk_id, valid_from)
);
