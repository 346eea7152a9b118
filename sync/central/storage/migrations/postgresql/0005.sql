-- Least privilege in the database itself (sync/central/storage/roles.py). The purge
-- role deletes only through these functions, by the database's own clock: what is past
-- its deletion time and not held, never earlier (it may not pass a time of its own).
CREATE FUNCTION kiosk_purge_records(p_chunk integer) RETURNS TABLE (retention text, n bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS now),
    gone AS (
        DELETE FROM records WHERE (tableoid, ctid) IN (
            SELECT r.tableoid, r.ctid FROM records r, clock
            WHERE r.delete_after <= clock.now
            AND NOT (r.captured_at > clock.now - 90 * 86400
                     AND EXISTS (SELECT 1 FROM held h WHERE h.record_id = r.record_id))
            LIMIT p_chunk)
        RETURNING records.retention)
    SELECT retention, count(*) FROM gone GROUP BY retention
$fn$;
CREATE FUNCTION kiosk_purge_rest(p_normal_days integer) RETURNS TABLE (batches bigint, risk bigint)
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
    RETURN QUERY SELECT b, r;
END
$fn$;
-- The committee's log, and the risk list with it: appended only here, each entry after
-- the last (its seq and prev), and a risk statement only with its own risk_change entry,
-- in the same transaction; the log's length and head kept with them.
CREATE FUNCTION kiosk_audit_append(
    p_seq bigint, p_entry text, p_hash text, p_signature text, p_head text,
    p_statement_id text DEFAULT NULL, p_doc text DEFAULT NULL, p_expires double precision DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    last_seq bigint;
    last_hash text;
    e jsonb := p_entry::jsonb;
    v bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(418581342580);
    SELECT seq, hash INTO last_seq, last_hash FROM audit ORDER BY seq DESC LIMIT 1;
    IF p_seq <> coalesce(last_seq, 0) + 1 OR (e ->> 'seq')::bigint <> p_seq
       OR (e ->> 'prev') <> coalesce(last_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'audit entry % does not follow the end of the log', p_seq;
    END IF;
    INSERT INTO audit (seq, entry, hash, signature) VALUES (p_seq, p_entry, p_hash, p_signature);
    INSERT INTO meta (key, value) VALUES ('audit_length', p_seq::text)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    IF p_head IS NOT NULL THEN
        INSERT INTO meta (key, value) VALUES ('audit_head', p_head)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    END IF;
    IF p_statement_id IS NOT NULL THEN
        IF (e ->> 'action') <> 'risk_change' OR (e -> 'detail' ->> 'statement') <> p_statement_id THEN
            RAISE EXCEPTION 'a risk statement is kept only with its own risk_change entry';
        END IF;
        UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'risk_version'
            RETURNING value::bigint INTO v;
        INSERT INTO risk_statements (statement_id, changed, expires_at, doc)
            VALUES (p_statement_id, v, p_expires, p_doc);
    END IF;
    RETURN v;
END
$fn$;
-- Ingest keeps the aggregates status reads; it may only move them forward: counts never
-- fall, a kiosk's numbers are never forgotten, and a run of missing numbers goes only
-- when every number in it arrived (or a smaller run still covers it).
CREATE FUNCTION kiosk_summary_forward() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.kiosk_id <> OLD.kiosk_id OR NEW.epoch <> OLD.epoch OR NEW.received < OLD.received
       OR NEW.distinct_seq < OLD.distinct_seq OR NEW.high < OLD.high OR NEW.low > OLD.low THEN
        RAISE EXCEPTION 'sequence_summary only moves forward';
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER sequence_summary_forward BEFORE UPDATE ON sequence_summary
    FOR EACH ROW EXECUTE FUNCTION kiosk_summary_forward();
CREATE FUNCTION kiosk_untagged_forward() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.kiosk_id <> OLD.kiosk_id OR NEW.day <> OLD.day OR NEW.records < OLD.records THEN
        RAISE EXCEPTION 'untagged_days only moves forward';
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER untagged_days_forward BEFORE UPDATE ON untagged_days
    FOR EACH ROW EXECUTE FUNCTION kiosk_untagged_forward();
CREATE FUNCTION kiosk_gap_closed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    arrived bigint;
    still bigint;
BEGIN
    SELECT count(DISTINCT seq) INTO arrived FROM records
        WHERE kiosk_id = OLD.kiosk_id AND epoch = OLD.epoch AND seq BETWEEN OLD.low AND OLD.high;
    SELECT coalesce(sum(least(g.high, OLD.high) - greatest(g.low, OLD.low) + 1), 0) INTO still
        FROM sequence_gaps g WHERE g.kiosk_id = OLD.kiosk_id AND g.epoch = OLD.epoch
        AND g.low <= OLD.high AND g.high >= OLD.low;
    IF arrived + still < OLD.high - OLD.low + 1 THEN
        RAISE EXCEPTION 'missing numbers % to % of kiosk % did not arrive',
            OLD.low, OLD.high, OLD.kiosk_id;
    END IF;
    RETURN NULL;
END
$fn$;
CREATE CONSTRAINT TRIGGER sequence_gaps_closed AFTER DELETE ON sequence_gaps
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kiosk_gap_closed();
REVOKE ALL ON FUNCTION kiosk_purge_records(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION kiosk_purge_rest(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION kiosk_audit_append(bigint, text, text, text, text, text, text, double precision)
    FROM PUBLIC;
