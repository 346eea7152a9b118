CREATE TABLE manifests (
    version BIGINT PRIMARY KEY,
    doc TEXT NOT NULL,
    published_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE risk_statements (
    statement_id TEXT PRIMARY KEY,
    changed BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX risk_statements_changed ON risk_statements (changed);
ALTER TABLE tag_keys ADD COLUMN doc TEXT;
ALTER TABLE reads ADD COLUMN kind TEXT NOT NULL DEFAULT 'read';  -- read, or trace
CREATE TABLE audit_witness (
    kiosk_id TEXT PRIMARY KEY REFERENCES kiosks (kiosk_id),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    reported_at DOUBLE PRECISION NOT NULL
);
