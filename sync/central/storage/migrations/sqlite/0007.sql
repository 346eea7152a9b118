-- Trust rooted offline: manifests the root signed, risk statements members signed,
-- tag keys in their root-signed form, and the audit heads kiosks report having seen.
CREATE TABLE manifests (version INTEGER PRIMARY KEY, doc TEXT NOT NULL, published_at REAL NOT NULL);
CREATE TABLE risk_statements (
    statement_id TEXT PRIMARY KEY,
    changed INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX risk_statements_changed ON risk_statements (changed);
ALTER TABLE tag_keys ADD COLUMN doc TEXT;
ALTER TABLE reads ADD COLUMN kind TEXT NOT NULL DEFAULT 'read';  -- read, or trace
CREATE TABLE audit_witness (
    kiosk_id TEXT PRIMARY KEY REFERENCES kiosks (kiosk_id),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    reported_at REAL NOT NULL
);
