-- A day's search-tag keys leave the server when the day is over (issue 33), not at the daily
-- purge: `serve` calls this every minute, as the ingest role, which deletes nothing else.
CREATE OR REPLACE FUNCTION kiosk_drop_spent_tag_keys() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM tag_keys WHERE valid_to <= extract(epoch FROM clock_timestamp());
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$fn$;
