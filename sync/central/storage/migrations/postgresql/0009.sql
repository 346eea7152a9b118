-- Enrolment tokens the committee made (issue 32): the root-signed document (its lookup, the
-- kiosk id it gives, the venue, the expiry, the code's public keys; never the code), the
-- search-tag keys sealed to the code's key (root-signed docs, JSON; emptied when the token
-- is used or expires), and when and by which device key it was used (one use).
CREATE TABLE enrolment_tokens (
    token TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL UNIQUE,
    venue TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    doc TEXT NOT NULL,
    tag_docs TEXT NOT NULL,
    used_at DOUBLE PRECISION,
    device_key BYTEA
);

-- The purge role's share: a token past its expiry keeps no sealed key, and its row goes
-- 90 days after (by the database's own clock, like the other purge functions).
CREATE OR REPLACE FUNCTION kiosk_purge_enrolment() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    gone bigint;
BEGIN
    UPDATE enrolment_tokens SET tag_docs = '[]' WHERE expires_at <= now_s AND tag_docs <> '[]';
    DELETE FROM enrolment_tokens WHERE expires_at <= now_s - 90 * 86400;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$fn$;

-- The one way the ingest role registers a kiosk: by a token the committee made, once, not
-- past its expiry (the server checked the code's signature first). 'ok:KIOSK_ID' (also for
-- the same device asking again), or 'unknown:', 'used:', 'expired:', 'key_in_use:'.
CREATE OR REPLACE FUNCTION kiosk_enrol(p_token text, p_device bytea, p_tag bytea) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    t enrolment_tokens%ROWTYPE;
BEGIN
    SELECT * INTO t FROM enrolment_tokens WHERE token = p_token FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'unknown:';
    END IF;
    IF t.used_at IS NOT NULL THEN
        IF t.device_key = p_device THEN
            RETURN 'ok:' || t.kiosk_id;
        END IF;
        RETURN 'used:';
    END IF;
    IF t.expires_at <= now_s THEN
        RETURN 'expired:';
    END IF;
    IF EXISTS (SELECT 1 FROM kiosks WHERE public_key = p_device AND revoked_at IS NULL) THEN
        RETURN 'key_in_use:';
    END IF;
    INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at, tag_public)
        VALUES (t.kiosk_id, t.venue, p_device, now_s, p_tag);
    INSERT INTO tag_keys (kiosk_id, valid_from, valid_to, sealed, doc)
        SELECT t.kiosk_id, (k->>'valid_from')::double precision, (k->>'valid_to')::double precision,
               decode(k->>'sealed', 'base64'), k->>'doc'
        FROM jsonb_array_elements(t.tag_docs::jsonb) AS k
        WHERE (k->>'valid_to')::double precision > now_s
        ON CONFLICT DO NOTHING;
    UPDATE enrolment_tokens SET used_at = now_s, device_key = p_device, tag_docs = '[]'
        WHERE token = p_token;
    RETURN 'ok:' || t.kiosk_id;
END
$fn$;
