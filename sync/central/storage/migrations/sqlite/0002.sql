CREATE TABLE reads (                      -- every opening of sealed records, for the audit
    read_id INTEGER PRIMARY KEY AUTOINCREMENT,
    read_at REAL NOT NULL,
    reader TEXT NOT NULL,
    case_id TEXT NOT NULL,
    kiosk_id TEXT,
    from_ts REAL,
    to_ts REAL,
    records INTEGER NOT NULL
);
