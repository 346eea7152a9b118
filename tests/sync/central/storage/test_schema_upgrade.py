"""A store made by the last release (schema 13, records with their class, key id and deletion
time in clear) upgraded in place by this one, on both backends: every record kept as it was,
no column that tells a significant record apart left, PostgreSQL's rows moved to partitions
by day only, a hold keeping its day (issue 33)."""

import uuid

from kiosk.core.timing import DAY
from sync.central.storage.migrations import load
from sync.central.storage.sqlite_backend import DB_NAME, SqliteStorage

T0 = 1_790_000_000 - 1_790_000_000 % DAY
OLD = 13  # migrations the last release applied


def old_rows():
    """Four records as schema 13 stored them: two classes, two days, one sealed with an older key."""
    out = []
    for i, (klass, day, fallback) in enumerate(
        (("normal", 0, False), ("significant", 0, False), ("normal", 1, True), ("significant", 1, False)), 1
    ):
        at = T0 + day * DAY + 600
        days = 28 if klass == "normal" else 90
        out.append(
            (str(uuid.UUID(int=i)), i, at, klass, at + days * DAY, f"kid-{klass}", bytes([i]) * 64, fallback)
        )
    return out


def check(storage):
    rows = storage.records_between(None, None, None)
    assert [(r["record_id"], r["sealed"], r["seal_fallback"]) for r in rows] == [
        (rid, sealed, fallback) for rid, _, _, _, _, _, sealed, fallback in old_rows()
    ]
    assert storage.held_days() == {int(T0 // DAY) + 1: True}
    assert storage.purge(now=T0 + 60 * DAY).records == 0  # a normal one's row stays: its key goes
    assert storage.purge(now=T0 + 91 * DAY).records == 2  # day 0, whatever the class


def test_sqlite_store_of_the_last_release_upgrades(tmp_path):
    from sqlite_utils import Database

    from sync.central.storage.sqlite_file import migrate

    db = Database(tmp_path / DB_NAME)
    migrate(db, load("sqlite")[:OLD])
    with db.conn:
        db.execute(
            "INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at) VALUES ('k1', 'v', x'00', 0)"
        )
        for rid, seq, at, klass, delete_after, kid, sealed, fallback in old_rows():
            db.execute(
                "INSERT INTO records (record_id, kiosk_id, seq, captured_at, clock_synced, retention, "
                "delete_after, seal_kid, sealed, batch_id, received_at, seal_fallback) "
                "VALUES (?, 'k1', ?, ?, 1, ?, ?, ?, ?, 'b', ?, ?)",
                [rid, seq, at, klass, delete_after, kid, sealed, at, int(fallback)],
            )
        db.execute(
            "INSERT INTO held (case_id, record_id, seal_kid, captured_at) "
            "VALUES ('OB-1', ?, 'kid-normal', ?)",
            [old_rows()[2][0], old_rows()[2][2]],
        )
    db.conn.close()
    storage = SqliteStorage.in_folder(tmp_path)
    try:
        columns = {r[0] for r in storage._q("SELECT name FROM pragma_table_info('records')")}
        assert not columns & {"retention", "delete_after", "seal_kid"}
        assert "seal_kid" not in {r[0] for r in storage._q("SELECT name FROM pragma_table_info('held')")}
        check(storage)
        # nor in the file's free pages or its WAL (secure_delete)
        for f in tmp_path.glob(DB_NAME + "*"):
            assert b"kid-significant" not in f.read_bytes() and b"kid-normal" not in f.read_bytes(), f.name
    finally:
        storage.close()


def test_postgresql_store_of_the_last_release_upgrades(pg_url):
    import psycopg

    from sync.central.storage.pg_backend import PgStorage, migrate

    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate(conn, load("postgresql")[:OLD])
        conn.execute(
            "INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at) VALUES ('k1', 'v', '\\x00', 0)"
        )
        for day in (0, 1):  # the last release's partitions, by class then day
            d = int(T0 // DAY) + day
            for klass in ("normal", "significant"):
                conn.execute(
                    f"CREATE TABLE records_{klass}_{d} PARTITION OF records_{klass} "
                    f"FOR VALUES FROM ({d * DAY}) TO ({(d + 1) * DAY})"
                )
        for rid, seq, at, klass, delete_after, kid, sealed, fallback in old_rows():
            conn.execute(
                "INSERT INTO records (record_id, kiosk_id, seq, captured_at, clock_synced, retention, "
                "delete_after, seal_kid, sealed, batch_id, received_at, seal_fallback) "
                "VALUES (%s, 'k1', %s, %s, true, %s, %s, %s, %s, 'b', %s, %s)",
                [rid, seq, at, klass, delete_after, kid, sealed, at, fallback],
            )
        conn.execute(
            "INSERT INTO held (case_id, record_id, seal_kid, captured_at) "
            "VALUES ('OB-1', %s, 'kid-normal', %s)",
            [old_rows()[2][0], old_rows()[2][2]],
        )
    storage = PgStorage(pg_url)
    try:
        columns = {
            r[0]
            for r in storage._q(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'records'"
            )
        }
        assert not columns & {"retention", "delete_after", "seal_kid"}
        tables = {r[0] for r in storage._q("SELECT relname FROM pg_class WHERE relname LIKE 'records%%'")}
        assert not {t for t in tables if "normal" in t or "significant" in t}, tables
        day = int(T0 // DAY)
        assert storage._q(f"SELECT count(*) FROM records_{day}")[0][0] == 2  # its day's partition
        check(storage)
    finally:
        storage.close()
