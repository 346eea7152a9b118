-- A kiosk whose database was reset (moved aside when damaged) starts a new sequence
-- epoch; sequence numbers are per (kiosk, epoch). Records from before epochs: 0.
ALTER TABLE records ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX records_kiosk_epoch_seq ON records (kiosk_id, epoch, seq);
