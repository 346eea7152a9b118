"""How the authority opens its SQLite file: WAL, synchronous=FULL, deleted rows overwritten,
the WAL kept short, and numbered migrations on ``PRAGMA user_version`` applied under one
write lock. (The kiosk opens its own file in :mod:`kiosk.store.sqlitedb`, which also moves
a damaged file aside; the server's file is never moved: a damaged one is an operator's call.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

JOURNAL_SIZE_LIMIT = 1024 * 1024


def open_db(path: str | Path | None, *, busy_timeout_ms: int = 5000) -> Database:
    """``path=None``: in memory (tests)."""
    if path is None:
        db = Database(memory=True)
    else:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        db.enable_wal()
    for pragma in (
        "synchronous = FULL",
        "foreign_keys = ON",
        "secure_delete = ON",
        f"journal_size_limit = {JOURNAL_SIZE_LIMIT}",
    ):
        db.execute(f"PRAGMA {pragma}")
    return db


def open_readonly(path: str | Path, *, busy_timeout_ms: int = 5000) -> Database:
    """For the commands that only look: SQLite's read-only mode, so nothing is written (no
    migration, no WAL switch); a user who may only read the files can use it."""
    conn = sqlite3.connect(
        f"file:{Path(path).resolve()}?mode=ro",
        uri=True,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    db = Database(conn)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA query_only = ON")
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here, not later
    return db


def truncate_wal(db: Database) -> tuple[int, int, int]:
    """After a purge: checkpoint and cut the WAL to zero bytes, so no copy of a deleted row
    stays in it. Returns SQLite's (busy, log frames, checkpointed frames)."""
    busy, frames, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(busy), int(frames), int(done)


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip() and buf.strip() != ";":
        raise ValueError(f"incomplete SQL statement in a migration: {buf.strip()[:60]!r}")


def migrate(db: Database, migrations: list[str]) -> int:
    """Apply ``migrations[user_version:]`` inside one ``BEGIN IMMEDIATE``."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > len(migrations):
            raise RuntimeError(
                f"database schema version {current} is newer than this program "
                f"({len(migrations)}): refusing to run on it"
            )
        for number, sql in enumerate(migrations[current:], start=current + 1):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(migrations)
