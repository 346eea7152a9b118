-- What the server keeps of an upload (issue 33): that it came, and on which day; not how many
-- records it held, nor when its newest was made, nor the time of day (every round of a
-- kiosk uploads now, an empty batch when nobody came; the fleet's upload lag comes from the
-- kiosks' signed health). The last upload, to the day.
ALTER TABLE batches DROP COLUMN records;
ALTER TABLE batches DROP COLUMN newest_capture;
UPDATE batches SET received_at = floor(received_at / 86400) * 86400;
UPDATE kiosk_health SET last_upload_at = floor(last_upload_at / 86400) * 86400
    WHERE last_upload_at IS NOT NULL;
