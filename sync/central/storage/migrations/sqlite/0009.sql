-- The exposure list the committee published last (member-signed: keyed hashes of pass
-- refs, levels, advice, expiries; no venue, time or case), served at /check. Only the
-- newest is kept, and none past its last entry's expiry.
CREATE TABLE exposure_lists (
    version INTEGER PRIMARY KEY,
    doc TEXT NOT NULL,
    published_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
-- The latest health each kiosk reported (signed by its device key: versions, bundle age,
-- pending, clock, disk, last fault, epoch, uptime; nothing a visitor did), when it was last
-- seen and last uploaded, and its clock's distance from the server's; and the fleet's state
-- each hour, for `kiosk-central report`.
CREATE TABLE kiosk_health (
    kiosk_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL,
    last_upload_at REAL,
    skew_s REAL NOT NULL,
    summary TEXT,
    summary_at REAL
);
CREATE TABLE fleet_history (at REAL PRIMARY KEY, counts TEXT NOT NULL);
