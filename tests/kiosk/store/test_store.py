"""The store on real SQLite files: sealing, retention, the queue, migrations."""

import sqlite3
import uuid

import pytest

from kiosk.core.decision import Policy, RiskList, decide
from kiosk.core.reasons import Reason
from kiosk.core.seal import open_sealed
from kiosk.core.timing import DAY
from kiosk.store.checkins import MIGRATIONS, CheckinStore, Retention
from kiosk.store.sqlitedb import migrate, open_db
from testkit import NOW

PID = bytes.fromhex("c0ffee00112233445566778899aabbcc")


@pytest.fixture
def decision_for(make_pass, trusted):
    def d(level, pid=PID):
        return decide(
            make_pass(level, pass_id=pid), trusted=trusted, risk_list=RiskList(), policy=Policy(), now=NOW
        )

    return d


def test_raw_database_bytes_hold_no_pass_id_and_the_committee_opens_a_record(
    tmp_path, sealing, committee_key, decision_for
):
    path = tmp_path / "k.db"
    store = CheckinStore.open(path, sealing=sealing, venue_id="venue-secret-name")
    rid = store.record(decision_for(3), now=NOW + 123.456, clock_synced=True)
    for level in (0, 1, 2):
        store.record(decision_for(level), now=NOW, clock_synced=False)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # db, -wal and -shm files
    for needle in (PID, PID.hex().encode(), b"venue-secret-name", b"deny", b"risk_level"):
        assert needle not in raw
    store.close()
    conn = sqlite3.connect(path)
    seal_kid, sealed = conn.execute(
        "SELECT seal_kid, sealed FROM checkins WHERE record_id = ?", [rid]
    ).fetchone()
    assert seal_kid == sealing.kid
    opened = open_sealed(sealed, committee_key, record_id=rid)
    assert opened == {
        "pass_id": PID,
        "risk_level": 3,
        "decision": "deny",
        "reason": "risk_level",
        "venue": "venue-secret-name",
        "at": NOW + 123.456,  # the exact time, sealed
    }
    # in clear: the 5-minute bucket only, and a random id that says nothing of when
    captured_at, delete_after = conn.execute(
        "SELECT captured_at, delete_after FROM checkins WHERE record_id = ?", [rid]
    ).fetchone()
    assert captured_at == NOW + 123.456 - (NOW + 123.456) % 300 and delete_after % 300 == 0
    assert uuid.UUID(rid).version == 4
    with pytest.raises(Exception):  # noqa: B017 -- any failure to open; bound to its record id: cannot be moved to another
        open_sealed(sealed, committee_key, record_id="another-record")


def test_retention_class_fixed_at_capture(sealing, decision_for):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    for level in range(4):
        store.record(decision_for(level), now=NOW, clock_synced=True)
    rows = store.db.execute(
        "SELECT retention, delete_after - captured_at FROM checkins ORDER BY seq"
    ).fetchall()
    assert rows == [
        ("normal", 28 * DAY),
        ("normal", 28 * DAY),
        ("significant", 90 * DAY),
        ("significant", 90 * DAY),
    ]


def test_purge_deletes_past_retention_and_synced_records(sealing, decision_for):
    store = CheckinStore(
        open_db(None), sealing=sealing, venue_id="v", retention=Retention(synced_grace_s=3600)
    )
    normal = store.record(decision_for(0), now=NOW, clock_synced=True)
    significant = store.record(decision_for(3), now=NOW, clock_synced=True)
    synced = store.record(decision_for(1), now=NOW, clock_synced=True)
    store.mark_synced([synced], now=NOW + 10)
    store.count_invalid(Reason.EXPIRED, now=NOW)
    assert store.purge(now=NOW + 3700) == 0  # a receipt alone deletes nothing
    seq = store.db.execute("SELECT seq FROM checkins WHERE record_id = ?", [synced]).fetchone()[0]
    other = {"epoch": store.epoch + 1, "high": seq, "gaps": []}  # another database of this kiosk
    assert store.confirm(other, now=NOW + 20)[0] == 0
    hole = {"epoch": store.epoch, "high": seq, "gaps": [[seq, seq]]}  # the server lacks it
    assert store.confirm(hole, now=NOW + 20)[0] == 0
    held = {"epoch": store.epoch, "high": seq, "gaps": []}  # a bundle says the server holds it
    assert store.confirm(held, now=NOW + 20) == (1, 0)
    assert store.purge(now=NOW + 3000) == 0
    assert store.purge(now=NOW + 3700) == 1  # the confirmed one, after the grace
    lost = store.record(decision_for(1, pid=b"\x44" * 16), now=NOW, clock_synced=True)
    store.mark_synced([lost], now=NOW + 10)  # a receipt, but the server never stored it
    assert store.confirm(None, now=NOW + 30, sent_before=NOW + 20) == (0, 1)  # queued again
    assert lost in [r["record_id"] for r in store.pending(10)]
    store.mark_synced([lost], now=NOW + 40)  # sent again, stored, and confirmed this time
    last = store.db.execute("SELECT seq FROM checkins WHERE record_id = ?", [lost]).fetchone()[0]
    assert store.confirm({"epoch": store.epoch, "high": last, "gaps": []}, now=NOW + 50) == (1, 0)
    assert store.purge(now=NOW + 3700) == 1
    bucket = NOW - NOW % 300  # retention runs from the time kept in clear: its 5-minute bucket
    assert store.purge(now=bucket + 28 * DAY - 1) == 0
    assert store.purge(now=bucket + 28 * DAY) == 1  # the normal one
    left = [r[0] for r in store.db.execute("SELECT record_id FROM checkins")]
    assert left == [significant]
    assert store.purge(now=bucket + 90 * DAY) == 1
    assert store.stats()["records"] == 0
    assert store.stats()["invalid_scans"] == 1  # counts (no text) are kept by day ...
    store.purge(now=NOW + 91 * DAY)
    assert store.stats()["invalid_scans"] == 0  # ... for the significant retention
    assert normal not in left


def test_sequence_never_reused_after_purge(sealing, decision_for):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    for _ in range(3):
        store.record(decision_for(0), now=NOW, clock_synced=True)
    store.purge(now=NOW + 29 * DAY)
    store.record(decision_for(0), now=NOW + 29 * DAY, clock_synced=True)
    assert store.pending(10)[0]["seq"] == 4


def test_queue_order_sync_and_set_aside(sealing, decision_for):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    ids = [store.record(decision_for(i % 3), now=NOW + i, clock_synced=True) for i in range(7)]
    batch = store.pending(3)
    assert [r["record_id"] for r in batch] == ids[:3]
    assert [r["seq"] for r in batch] == [1, 2, 3]
    assert store.mark_synced(ids[:3], now=NOW) == 3
    assert store.mark_synced(ids[:3], now=NOW) == 0  # idempotent
    assert store.set_aside(ids[3:4], reason="422 malformed", now=NOW) == 1
    assert [r["record_id"] for r in store.pending(10)] == ids[4:]
    s = store.stats()
    assert (s["pending"], s["synced"], s["set_aside"]) == (3, 3, 1)


def test_invalid_scans_are_counted_without_their_text(sealing):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    for _ in range(3):
        store.count_invalid(Reason.BAD_SIGNATURE, now=NOW)
    store.count_invalid(Reason.NOT_A_PASS, now=NOW)
    rows = dict(store.db.execute("SELECT reason, count FROM invalid_scans").fetchall())
    assert rows == {"bad_signature": 3, "not_a_pass": 1}
    assert store.stats()["records"] == 0


def test_only_admitted_or_refused_scans_are_recorded(sealing, trusted):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    bad = decide("nonsense", trusted=trusted, risk_list=RiskList(), policy=Policy(), now=NOW)
    with pytest.raises(ValueError):
        store.record(bad, now=NOW, clock_synced=True)


def test_wal_full_sync_and_migrations(tmp_path, sealing):
    path = tmp_path / "m.db"
    store = CheckinStore.open(path, sealing=sealing, venue_id="v")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store.close()
    again = CheckinStore.open(path, sealing=sealing, venue_id="v")  # re-opening: no-op
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    again.db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(again.db, MIGRATIONS)
