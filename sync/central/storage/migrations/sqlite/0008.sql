-- Deletion without holes: a case holds only the records its traces and openings
-- touched (not a whole window), until it closes, never past the longest retention.
CREATE TABLE held (
    case_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seal_kid TEXT NOT NULL,
    captured_at REAL NOT NULL,
    PRIMARY KEY (case_id, record_id)
);
CREATE INDEX held_record ON held (record_id);
CREATE INDEX held_captured ON held (captured_at);
DROP TABLE risk;                          -- replaced by risk_statements (members sign them)
-- Records that arrived without a search tag, per kiosk and day (kept by ingest): what
-- trace and `status` report as unsearchable, without a scan of the records.
CREATE TABLE untagged_days (
    kiosk_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    records BIGINT NOT NULL,
    PRIMARY KEY (kiosk_id, day)
);
INSERT INTO untagged_days (kiosk_id, day, records)
    SELECT kiosk_id, CAST(captured_at / 86400 AS INTEGER), count(*)
    FROM records WHERE tag IS NULL GROUP BY 1, 2;
