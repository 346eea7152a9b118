-- The exposure list the committee published last (member-signed: keyed hashes of pass
-- refs, levels, advice, expiries; no venue, time or case), served at /check. Only the
-- newest is kept, and none past its last entry's expiry (kiosk_purge_rest).
CREATE TABLE exposure_lists (
    version BIGINT PRIMARY KEY,
    doc TEXT NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
-- The latest health each kiosk reported (signed by its device key: versions, bundle age,
-- pending, clock, disk, last fault, epoch, uptime; nothing a visitor did), when it was last
-- seen and last uploaded, and its clock's distance from the server's; and the fleet's state
-- each hour, for `kiosk-central report`.
CREATE TABLE kiosk_health (
    kiosk_id TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL,
    last_upload_at DOUBLE PRECISION,
    skew_s DOUBLE PRECISION NOT NULL,
    summary TEXT,
    summary_at DOUBLE PRECISION
);
CREATE TABLE fleet_history (at DOUBLE PRECISION PRIMARY KEY, counts TEXT NOT NULL);
CREATE OR REPLACE FUNCTION kiosk_purge_rest(p_normal_days integer)
RETURNS TABLE (batches bigint, risk bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    b bigint;
    floor_v bigint;
    r bigint;
BEGIN
    DELETE FROM batches WHERE received_at <= now_s - greatest(p_normal_days, 1) * 86400;
    GET DIAGNOSTICS b = ROW_COUNT;
    DELETE FROM held WHERE captured_at <= now_s - 90 * 86400;
    DELETE FROM untagged_days WHERE day < floor(now_s / 86400) - 91;
    WITH gone AS (DELETE FROM risk_statements WHERE expires_at <= now_s - 30 * 86400 RETURNING changed)
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
REVOKE ALL ON FUNCTION kiosk_purge_rest(integer) FROM PUBLIC;
