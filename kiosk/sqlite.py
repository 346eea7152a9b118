"""Opening SQLite the way both ends want it, and numbered migrations on PRAGMA user_version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database


def open_db(path: str | Path | None, *, busy_timeout_ms: int = 5000) -> Database:
    """WAL, synchronous=FULL (a committed check-in survives a power cut), a busy timeout so
    a second process (the uploader) waits instead of failing. ``path=None``: in memory."""
    if path is None:
        db = Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        db = Database(conn)
        db.enable_wal()
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    return db


def migrate(db: Database, migrations: list[str]) -> int:
    """Apply migrations[user_version:] in order, each in its own transaction."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > len(migrations):
        raise RuntimeError(f"database schema version {current} is newer than this program "
                           f"({len(migrations)}): refusing to run on it")
    for number, sql in enumerate(migrations[current:], start=current + 1):
        db.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(migrations)
