-- No sign of significance on the server (issue 33): a record's retention class, the key id
-- that sealed it (the public schedule names each key's class) and its class's deletion time
-- leave the server. Every row goes by the longest retention from its capture, whatever its
-- class; a normal record is unreadable from 28 days on, its key destroyed (`keys retire`).
-- The committee finds a record's key among the keys of its day. A hold keeps a day's keys
-- (and a record sealed with an older key, `seal_fallback`, the keys before it).
DROP INDEX records_delete_after;
ALTER TABLE records DROP COLUMN retention;
ALTER TABLE records DROP COLUMN delete_after;
ALTER TABLE records DROP COLUMN seal_kid;
ALTER TABLE held ADD COLUMN seal_fallback INTEGER NOT NULL DEFAULT 0;
UPDATE held SET seal_fallback = coalesce(
    (SELECT r.seal_fallback FROM records r WHERE r.record_id = held.record_id), 0);
ALTER TABLE held DROP COLUMN seal_kid;
CREATE INDEX records_captured_at ON records (captured_at);
