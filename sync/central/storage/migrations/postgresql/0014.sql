-- No sign of significance on the server (issue 33): a record's retention class, the key id
-- that sealed it (the public schedule names each key's class) and its class's deletion time
-- leave the server. The records are partitioned by capture day only (records_<days since
-- 1970>, made ahead by the server, and a default) and every row goes by the longest retention
-- from its capture, whatever its class; a normal record is unreadable from 28 days on, its key
-- destroyed (`keys retire`). The committee finds a record's key among the keys of its day.
-- A hold keeps a day's keys (a record sealed with an older key, `seal_fallback`, the keys
-- before it too). The rows move once, here; the old tables (and their files) are dropped.
CREATE TABLE records_new (
    record_id UUID NOT NULL,
    kiosk_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    captured_at DOUBLE PRECISION NOT NULL,
    clock_synced BOOLEAN NOT NULL,
    sealed BYTEA NOT NULL,
    batch_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    seal_fallback BOOLEAN NOT NULL DEFAULT false,
    tag TEXT,
    PRIMARY KEY (record_id, captured_at)
) PARTITION BY RANGE (captured_at);
CREATE TABLE records_default PARTITION OF records_new DEFAULT;
DO $$
DECLARE d bigint;
BEGIN
    FOR d IN SELECT DISTINCT floor(captured_at / 86400)::bigint FROM records LOOP
        EXECUTE format('CREATE TABLE records_%s PARTITION OF records_new FOR VALUES FROM (%s) TO (%s)',
                       d, d * 86400, (d + 1) * 86400);
    END LOOP;
END $$;
INSERT INTO records_new (record_id, kiosk_id, seq, epoch, captured_at, clock_synced, sealed,
                         batch_id, received_at, seal_fallback, tag)
    SELECT record_id, kiosk_id, seq, epoch, captured_at, clock_synced, sealed,
           batch_id, received_at, seal_fallback, tag FROM records;
DROP TABLE records CASCADE;
ALTER TABLE records_new RENAME TO records;
ALTER TABLE records RENAME CONSTRAINT records_new_pkey TO records_pkey;
CREATE INDEX records_record_id ON records (record_id);
CREATE INDEX records_kiosk_epoch_seq ON records (kiosk_id, epoch, seq);
CREATE INDEX records_kiosk_captured ON records (kiosk_id, captured_at);
CREATE INDEX records_tag ON records (tag) WHERE tag IS NOT NULL;
ALTER TABLE held ADD COLUMN seal_fallback BOOLEAN NOT NULL DEFAULT false;
UPDATE held h SET seal_fallback = r.seal_fallback FROM records r
    WHERE r.record_id = h.record_id AND r.seal_fallback;
ALTER TABLE held DROP COLUMN seal_kid;
-- The purge role's way: rows past the longest retention from capture (the settings'
-- record_max_s, written by the owner), unless an open case holds them.
DROP FUNCTION kiosk_purge_records(integer);
CREATE FUNCTION kiosk_purge_records(p_chunk integer) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    WITH clock AS (
        SELECT extract(epoch FROM clock_timestamp())::double precision AS now,
               (SELECT value FROM settings WHERE key = 'hold_max_s') AS hold_max_s,
               (SELECT value FROM settings WHERE key = 'record_max_s') AS record_max_s
    ),
    gone AS (
        DELETE FROM records WHERE (tableoid, ctid) IN (
            SELECT r.tableoid, r.ctid FROM records r, clock
            WHERE r.captured_at <= clock.now - clock.record_max_s
            AND clock.hold_max_s IS NOT NULL
            AND NOT (r.captured_at > clock.now - clock.hold_max_s
                     AND EXISTS (SELECT 1 FROM held h WHERE h.record_id = r.record_id))
            LIMIT p_chunk)
        RETURNING 1)
    SELECT count(*) FROM gone
$fn$;
REVOKE ALL ON FUNCTION kiosk_purge_records(integer) FROM PUBLIC;
