"""Opening SQLite the way both ends want it, and numbered migrations on PRAGMA user_version.

:func:`open_checked` is how a kiosk opens its own database: before SQLite touches the file,
a damaged one (not a database, failing ``quick_check``, empty, or a WAL that SQLite would
silently cut short) is moved aside with a timestamped name, never deleted (unsynced records
may be in it), and a fresh file takes its place.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from kiosk.store.walcheck import wal_file_damage

SIDE_FILES = ("-wal", "-shm", "-journal")


def open_db(path: str | Path | None, *, busy_timeout_ms: int = 5000) -> Database:
    """WAL, synchronous=FULL (a committed check-in survives a power cut), a busy timeout so
    a second process (the uploader) waits instead of failing. ``path=None``: in memory."""
    if path is None:
        db = Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        db.enable_wal()
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    _no_leftovers(db)
    return db


JOURNAL_SIZE_LIMIT = 1024 * 1024


def _no_leftovers(db: Database) -> None:
    """Deleted rows are overwritten, not just unlinked (set explicitly: not every SQLite
    build defaults to it), and the WAL is kept short (see :func:`truncate_wal`)."""
    db.execute("PRAGMA secure_delete = ON")
    db.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")


def truncate_wal(db: Database) -> tuple[int, int, int]:
    """After a purge: copy the WAL into the database (whose freed pages secure_delete has
    zeroed) and cut the WAL to zero bytes, so no copy of a deleted row stays in it.
    Returns SQLite's (busy, log frames, checkpointed frames)."""
    return tuple(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())


def _statements(script: str):
    """Split a migration into single statements (sqlite3.complete_statement knows triggers)."""
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
    """Apply migrations[user_version:] in order, all inside one ``BEGIN IMMEDIATE``: two
    processes opening a fresh file at once never both create the tables."""
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


# -- damaged files ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MovedAside:
    """A damaged database that was moved out of the way (and where it went)."""

    original: str
    moved_to: str
    reason: str
    at: float


def open_readonly(path: str | Path, *, busy_timeout_ms: int = 5000) -> Database:
    """For looking only (`kiosk doctor`): no schema change, no write. SQLite may still create
    the -wal and -shm files; see :func:`keep_owner`."""
    conn = sqlite3.connect(
        f"file:{Path(path).resolve()}?mode=ro",
        uri=True,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        check_same_thread=False,
    )
    db = Database(conn)
    db.execute("PRAGMA secure_delete = ON")
    return db


@contextmanager
def keep_owner(path: str | Path):
    """Side files (-wal, -shm) that appear while this block runs get the database file's
    owner, so a check run as root never leaves files the service user cannot write."""
    path = Path(path)
    before = {s for s in SIDE_FILES if path.with_name(path.name + s).exists()}
    try:
        yield
    finally:
        if os.geteuid() == 0 and path.exists():
            st = path.stat()
            for s in set(SIDE_FILES) - before:
                side = path.with_name(path.name + s)
                if side.exists():
                    os.chown(side, st.st_uid, st.st_gid)


def file_damage(path: Path, *, busy_timeout_ms: int = 5000, readonly: bool = False) -> str | None:
    """Why the database at ``path`` must not be used as it is, or None (also for no file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return "empty file (0 bytes): not the database it should be"
    damage = wal_file_damage(path.with_name(path.name + "-wal"))
    if damage:
        return damage
    try:
        conn = (
            open_readonly(path, busy_timeout_ms=busy_timeout_ms).conn
            if readonly
            else sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None)
        )
        try:
            result = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise
        return f"not a readable database ({e})"
    if [r[0] for r in result] != ["ok"]:
        return f"integrity check failed ({'; '.join(str(r[0]) for r in result[:3])})"
    return None


@contextmanager
def _file_lock(path: Path):
    """One opener at a time decides about (and moves) a damaged file: flock on path.lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def move_aside(path: Path, reason: str, *, now: float) -> MovedAside:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.rename(path, target)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.rename(side, target.with_name(target.name + suffix))
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return MovedAside(str(path), str(target), reason, now)


def purge_moved_aside(path: str | Path, *, now: float, after_days: float) -> list[Path]:
    """Delete the damaged databases moved aside from ``path`` once every record they can hold
    is past the longest retention (``after_days`` after the move: nothing in one was captured
    later). The file is overwritten before it is unlinked; it is not read (it is damaged).
    Returns what was deleted."""
    import calendar

    path = Path(path)
    gone = []
    for aside in sorted(path.parent.glob(f"{path.name}.damaged-*")):
        stamp = aside.name[len(path.name) + len(".damaged-") :][:16]
        try:
            moved_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            continue  # not one this module made
        if moved_at + after_days * 86_400 > now:
            continue
        try:
            size = aside.stat().st_size
            with open(aside, "r+b") as f:
                for _ in range(0, size, 1 << 20):
                    f.write(os.urandom(1 << 20))
                f.truncate(size)
                f.flush()
                os.fsync(f.fileno())
            aside.unlink()
        except FileNotFoundError:
            continue
        gone.append(aside)
    return gone


def open_checked(
    path: str | Path, *, now: float | None = None, busy_timeout_ms: int = 5000
) -> tuple[Database, MovedAside | None]:
    """Open the kiosk's own database, moving a damaged one aside first (see module doc)."""
    path = Path(path)
    moved = None
    with _file_lock(path):
        reason = file_damage(path, busy_timeout_ms=busy_timeout_ms)
        if reason:
            moved = move_aside(path, reason, now=time.time() if now is None else now)
        db = open_db(path, busy_timeout_ms=busy_timeout_ms)
    return db, moved
