CREATE TABLE sequence_summary (
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    epoch BIGINT NOT NULL,
    received BIGINT NOT NULL,
    distinct_seq BIGINT NOT NULL,
    low BIGINT NOT NULL,
    high BIGINT NOT NULL,
    PRIMARY KEY (kiosk_id, epoch)
);
INSERT INTO sequence_summary (kiosk_id, epoch, received, distinct_seq, low, high)
    SELECT kiosk_id, epoch, count(*), count(DISTINCT seq), min(seq), max(seq)
    FROM records GROUP BY kiosk_id, epoch;
-- The runs of numbers below each epoch's highest that never arrived, kept by ingest too
-- (a late record splits or shrinks its run): `status` lists them without a scan.
CREATE TABLE sequence_gaps (
    kiosk_id TEXT NOT NULL REFERENCES kiosks (kiosk_id),
    epoch BIGINT NOT NULL,
    low BIGINT NOT NULL,
    high BIGINT NOT NULL,
    PRIMARY KEY (kiosk_id, epoch, low)
);
INSERT INTO sequence_gaps (kiosk_id, epoch, low, high)
    SELECT kiosk_id, epoch, seq + 1, next - 1 FROM (
        SELECT kiosk_id, epoch, seq,
               lead(seq) OVER (PARTITION BY kiosk_id, epoch ORDER BY seq) AS next
        FROM (SELECT DISTINCT kiosk_id, epoch, seq FROM records) d) t
    WHERE next > seq + 1
    UNION ALL
    SELECT kiosk_id, epoch, 1, min(seq) - 1 FROM records GROUP BY kiosk_id, epoch
    HAVING min(seq) > 1;
