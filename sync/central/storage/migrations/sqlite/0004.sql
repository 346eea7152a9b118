-- Risk-list entries expire; purge deletes them (and what kiosks download omits them).
ALTER TABLE risk ADD COLUMN expires_at REAL;
CREATE INDEX risk_expires_at ON risk (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX batches_received_at ON batches (received_at);
-- The kiosk had no period key covering the capture time and sealed to its newest.
ALTER TABLE records ADD COLUMN seal_fallback INTEGER NOT NULL DEFAULT 0;
