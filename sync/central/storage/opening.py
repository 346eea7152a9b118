"""Opening the authority's store: the one way every command, the server and the tools open it.

PostgreSQL at a URL, or SQLite in a folder. Only `init` makes a store, and only its own folder
(the folder above must exist); anything else given a folder or database that holds no store is
refused, naming the path and `init`: a mistyped path must never become a new, empty world.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.core.faults import UsageError
from sync.central.storage.interface import ServerRetention, Storage


def open_storage(
    *,
    data: str | Path | None = None,
    database: str | None = None,
    retention: ServerRetention | None = None,
    read_database: str | None = None,
    readonly: bool = False,
    create: bool = False,
) -> Storage:
    """PostgreSQL at ``database`` (a URL), else SQLite in the folder ``data``.
    ``read_database``: a streaming replica of ``database`` the committee's reads of records and
    aggregates go to. ``readonly``: nothing is migrated or written (the commands that only
    look). ``create``: make the store (`init`); without it, a store must be there already."""
    retention = retention or ServerRetention()
    if read_database and not database:
        raise UsageError("--read-database is a replica of --database URL (PostgreSQL only)")
    if database:
        from sync.central.storage.pg_backend import PgStorage

        if not create:
            require_schema(database)
        return PgStorage(database, retention=retention, read_url=read_database, readonly=readonly)
    if data is None:
        raise UsageError("no storage given: --data DIR or --database URL")
    from sync.central.storage.sqlite_backend import SqliteStorage

    check_folder(Path(data), create=create)
    return SqliteStorage.in_folder(Path(data), retention=retention, readonly=readonly)


def check_folder(folder: Path, *, create: bool = False) -> None:
    """A store's folder as given by --data: one holding central.db (or, with ``create``, one
    to make in a folder that exists)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--data {folder}: not a folder (a store is a folder holding central.db)")
    if create and not folder.exists():
        if not folder.parent.is_dir():
            raise UsageError(
                f"--data {folder}: the folder {folder.parent} does not exist (init makes the store's "
                "own folder, never the folders above it: check the path)"
            )
        folder.mkdir(mode=0o750)
    db = folder / "central.db"
    if db.exists() and not db.is_file():
        raise UsageError(f"--data {folder}: {db} is not a file (a folder where the store's database belongs)")
    if not create and not db.exists():
        raise UsageError(
            f"--data {folder}: no store here (no central.db): check the path, or create one with "
            f"`kiosk-central init --data {folder}`"
        )


def require_schema(url: str) -> None:
    """A PostgreSQL database `init` (or a server) set up; else refused, naming `init`."""
    import psycopg

    from sync.central.storage.pg_backend import redacted

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            held = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot use the PostgreSQL database ({redacted(url)}): {first}") from None
    if not held or held[0] is None:
        raise UsageError(
            f"--database {redacted(url)}: no store in this database: check the URL, or create one with "
            "`kiosk-central init --database URL`"
        )
