-- The retention rules' numbers, defined once in the program (kiosk/core/retention.py) and
-- written here by the owner at each start (PgStorage.write_settings); the purge functions,
-- which the purge role calls, read them. A number not written yet deletes nothing early: a
-- comparison with NULL holds for no row.
CREATE TABLE settings (key TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL);

CREATE OR REPLACE FUNCTION kiosk_purge_records(p_chunk integer) RETURNS TABLE (retention text, n bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    WITH clock AS (
        SELECT extract(epoch FROM clock_timestamp())::double precision AS now,
               (SELECT value FROM settings WHERE key = 'hold_max_s') AS hold_max_s
    ),
    gone AS (
        DELETE FROM records WHERE (tableoid, ctid) IN (
            SELECT r.tableoid, r.ctid FROM records r, clock
            WHERE r.delete_after <= clock.now
            AND clock.hold_max_s IS NOT NULL
            AND NOT (r.captured_at > clock.now - clock.hold_max_s
                     AND EXISTS (SELECT 1 FROM held h WHERE h.record_id = r.record_id))
            LIMIT p_chunk)
        RETURNING records.retention)
    SELECT retention, count(*) FROM gone GROUP BY retention
$fn$;

CREATE OR REPLACE FUNCTION kiosk_purge_rest(p_normal_days integer)
RETURNS TABLE (batches bigint, risk bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    v_hold_max_s double precision := (SELECT value FROM settings WHERE key = 'hold_max_s');
    v_untagged_days double precision := (SELECT value FROM settings WHERE key = 'untagged_days');
    v_tombstone_s double precision := (SELECT value FROM settings WHERE key = 'tombstone_s');
    b bigint;
    floor_v bigint;
    r bigint;
BEGIN
    DELETE FROM batches WHERE received_at <= now_s - greatest(p_normal_days, 1) * 86400;
    GET DIAGNOSTICS b = ROW_COUNT;
    DELETE FROM held WHERE captured_at <= now_s - v_hold_max_s;
    DELETE FROM untagged_days WHERE day < floor(now_s / 86400) - v_untagged_days;
    WITH gone AS (DELETE FROM risk_statements WHERE expires_at <= now_s - v_tombstone_s RETURNING changed)
        SELECT count(*), max(changed) INTO r, floor_v FROM gone;
    IF floor_v IS NOT NULL THEN
        UPDATE meta SET value = greatest(value::bigint, floor_v)::text WHERE key = 'delta_floor';
    END IF;
    DELETE FROM tag_keys WHERE valid_to <= now_s;
    DELETE FROM exposure_lists WHERE expires_at <= now_s;
    -- a kiosk's last upload says someone checked in there before it: not past 28 days
    UPDATE kiosk_health SET last_upload_at = NULL
        WHERE last_upload_at <= now_s - greatest(p_normal_days, 1) * 86400;
    RETURN QUERY SELECT b, r;
END
$fn$;
