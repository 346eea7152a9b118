"""One storage test suite, run against both backends: SQLite (a real file) and PostgreSQL
(a real server the tests start: tests/pgserver.py). Everything the server and the committee
commands rely on is a method of the storage; each behaves the same on both."""

import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.keys import load_ed25519_public
from kiosk.core.timing import DAY
from sync.central.committee import members as committee
from sync.central.storage.interface import RecordIdConflict
from sync.central.storage.sqlite_backend import SqliteStorage
from workbench.world import publish_manifest

T0 = 1_790_000_000 - 1_790_000_000 % DAY


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteStorage.in_folder(tmp_path)
    else:
        from sync.central.storage.pg_backend import PgStorage

        s = PgStorage(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def rec(i, captured_at=T0, *, seq=None, epoch=0, tag=None, fallback=False):
    return {
        "record_id": str(uuid.UUID(int=i)),
        "seq": seq or i,
        "epoch": epoch,
        "captured_at": captured_at,
        "clock_synced": True,
        "sealed": bytes([i % 256]) * 64,
        "seal_fallback": fallback,
        "tag": tag,
    }


def test_kiosks_register_revoke_and_one_active_registration_per_key(storage):
    kid = storage.register_kiosk(venue="Market", public_key=b"a" * 32, now=1, tag_public=b"t" * 32)
    with pytest.raises(ValueError, match="already registered"):
        storage.register_kiosk(venue="Market", public_key=b"a" * 32, now=2)
    k = storage.kiosk(kid)
    assert (k.venue, k.public_key, k.tag_public, k.revoked_at) == ("Market", b"a" * 32, b"t" * 32, None)
    assert storage.revoke_kiosk(kid, now=3) and not storage.revoke_kiosk(kid, now=4)
    again = storage.register_kiosk(venue="Market", public_key=b"a" * 32, now=5)
    assert [k.kiosk_id for k in storage.kiosks()] == [kid, again]
    assert storage.kiosk("k-none") is None


def test_ingest_is_idempotent_per_kiosk_and_refuses_another_kiosks_ids(storage):
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    b = storage.register_kiosk(venue="B", public_key=b"b" * 32, now=0)
    first = storage.ingest(a, str(uuid.uuid4()), [rec(1), rec(2), rec(2)], now=T0)
    assert first.accepted == [rec(1)["record_id"], rec(2)["record_id"]] and first.duplicates == []
    again = storage.ingest(a, str(uuid.uuid4()), [rec(2), rec(3)], now=T0)
    assert again.accepted == [rec(3)["record_id"]] and again.duplicates == [rec(2)["record_id"]]
    with pytest.raises(RecordIdConflict):
        storage.ingest(b, str(uuid.uuid4()), [rec(1), rec(9)], now=T0)
    assert storage.record_ids(b) == []  # nothing of that batch stored
    assert storage.record_ids(a) == [rec(i)["record_id"] for i in (1, 2, 3)]


def test_every_row_goes_by_the_longest_retention_whatever_a_kiosk_says_of_its_class(storage):
    """The server keeps no class, no key id and no deletion time (issue 33): an older kiosk's
    say is dropped, and every row goes the longest retention after its capture."""
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    said = {"retention": "normal", "delete_after": 1.0, "seal_kid": "k"}  # an older kiosk's
    storage.ingest(a, str(uuid.uuid4()), [{**rec(1), **said}, rec(2), rec(3, T0 + 5 * DAY)], now=T0)
    columns = {
        str(r[0])
        for r in storage._q(
            "SELECT name FROM pragma_table_info('records')"
            if isinstance(storage, SqliteStorage)
            else "SELECT column_name FROM information_schema.columns WHERE table_name = 'records'"
        )
    }
    assert not columns & {"retention", "delete_after", "seal_kid"}, columns
    assert storage.purge(now=T0 + 28 * DAY).records == 0  # a normal one too: its key goes, not its row
    assert storage.purge(now=T0 + 90 * DAY - 1).records == 0
    assert storage.purge(now=T0 + 90 * DAY).records == 2
    assert storage.record_ids(a) == [rec(3)["record_id"]]
    assert storage.purge(now=T0 + 95 * DAY).records == 1


def test_a_case_holds_what_it_touched_by_day_while_rows_would_go(tmp_path):
    """With rows kept less long than a hold may last (a server keeping 60 days), a case keeps
    only what its trace or opening touched (record 1, not record 4 beside it) until it closes;
    `keys retire` learns the held days, and which of them hold a record sealed with an older key."""
    from sync.central.storage.interface import ServerRetention

    storage = SqliteStorage.in_folder(tmp_path, retention=ServerRetention(significant_days=60))
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    storage.ingest(a, str(uuid.uuid4()), [rec(1), rec(4), rec(5, T0 + 2 * DAY, fallback=True)], now=T0)
    storage.hold_records("OB-1", storage.records_between(a, T0, T0 + 1)[:1])
    storage.hold_records("OB-2", storage.records_between(a, T0 + 2 * DAY, T0 + 3 * DAY))
    day = int(T0 // DAY)
    assert storage.held_days() == {day: False, day + 2: True} and storage.held_count("OB-1") == 1
    assert storage.purge(now=T0 + 60 * DAY).records == 1  # record 4 went; record 1 is held
    assert storage.release_holds("OB-1") == 1  # the case closed
    assert storage.purge(now=T0 + 60 * DAY).records == 1
    storage.close()


def test_a_hold_never_outlasts_the_longest_retention(storage):
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    storage.ingest(a, str(uuid.uuid4()), [rec(1)], now=T0)
    storage.hold_records("OB-1", [rec(1)])
    assert storage.purge(now=T0 + 90 * DAY - 1).records == 0
    assert storage.purge(now=T0 + 90 * DAY).records == 1 and storage.held_count() == 0


def test_sequence_gaps_epochs_and_reused_numbers(storage):
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    storage.ingest(a, str(uuid.uuid4()), [rec(i, seq=s) for i, s in ((1, 1), (2, 2), (3, 5), (4, 8))], now=T0)
    assert storage.gaps(a) == [(3, 4), (6, 7)]
    storage.ingest(a, str(uuid.uuid4()), [rec(10, seq=2, epoch=7), rec(11, seq=2, epoch=7)], now=T0)
    assert storage.epochs(a) == [(0, 4, 1, 8, 0), (7, 2, 2, 2, 1)]
    assert storage.gaps(a) == [(1, 1)] and storage.gaps(a, 0) == [(3, 4), (6, 7)]


def test_time_ordered_ids_are_found_in_their_day_and_another_kiosks_is_refused(storage):
    from kiosk.core.recordids import time_ordered_id

    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    b = storage.register_kiosk(venue="B", public_key=b"b" * 32, now=0)
    r = {**rec(1), "record_id": time_ordered_id(T0 + 5), "captured_at": T0 + 5}
    assert storage.ingest(a, str(uuid.uuid4()), [r], now=T0).accepted == [r["record_id"]]
    again = storage.ingest(a, str(uuid.uuid4()), [r], now=T0)
    assert again.duplicates == [r["record_id"]] and again.accepted == []
    with pytest.raises(RecordIdConflict):
        storage.ingest(b, str(uuid.uuid4()), [{**r, "seq": 1}], now=T0)
    # A record of another day in the same batch: both days are looked in.
    r2 = {**rec(2), "record_id": time_ordered_id(T0 + 3 * DAY), "captured_at": T0 + 3 * DAY}
    with pytest.raises(RecordIdConflict):
        storage.ingest(b, str(uuid.uuid4()), [r2, {**r, "seq": 2}], now=T0)
    assert storage.record_ids(b) == []


def test_the_sequence_summary_status_reads_is_kept_by_ingest_and_outlives_the_purge(storage):
    from sync.central.fleet import status_lines

    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    storage.ingest(a, str(uuid.uuid4()), [rec(i, seq=s) for i, s in ((1, 1), (2, 2), (3, 5))], now=T0)
    # Next batch: a duplicate (not counted again), a number reused under a new record id
    # (in an earlier batch), one within the batch itself, a new high, a new epoch.
    storage.ingest(
        a,
        str(uuid.uuid4()),
        [rec(1, seq=1), rec(4, seq=2), rec(5, seq=8), rec(6, seq=8), rec(7, seq=9, epoch=2)],
        now=T0,
    )
    (e0, e2) = storage.sequence_summary()
    assert (e0.epoch, e0.received, e0.distinct_seq, e0.low, e0.high) == (0, 6, 4, 1, 8)
    assert (e0.missing, e0.reused) == (4, 2) and (e2.missing, e2.reused) == (8, 0)
    lines = list(status_lines(storage, now=T0))
    assert lines[0].startswith(
        f"{a}  A  active  records 7  epochs 2: the kiosk's database was reset 1 time(s)"
    )
    assert "  UNTAGGED 7: records without a search tag (trace cannot find them)" in lines[0]
    assert lines[0].endswith("ATTENTION: never seen; 12 missing records; sequence numbers reused")
    assert lines[1] == "  epoch 0: 6 records, seq 1-8, missing seq: 3-4, 6-7  REUSED seq: 2"
    assert lines[2] == "  epoch 2: 1 records, seq 9-9, missing seq: 1-8"
    # Purged records were received: they do not become missing, and the counts stay.
    storage.purge(now=T0 + 90 * DAY)
    assert storage.record_ids(a) == []
    assert storage.sequence_summary() == [e0, e2]
    assert list(status_lines(storage, now=T0))[1] == lines[1]
    assert storage.gaps(a, 0) == [(3, 4), (6, 7)]
    # A late record (a set-aside one retried) closes its number: the run splits.
    storage.ingest(a, str(uuid.uuid4()), [rec(8, seq=3, captured_at=T0 + 29 * DAY)], now=T0 + 29 * DAY)
    assert storage.gaps(a, 0) == [(4, 4), (6, 7)]
    storage.ingest(
        a,
        str(uuid.uuid4()),
        [
            rec(9, seq=4, captured_at=T0 + 29 * DAY),
            rec(11, seq=6, captured_at=T0 + 29 * DAY),
            rec(12, seq=7, captured_at=T0 + 29 * DAY),
        ],
        now=T0 + 29 * DAY,
    )
    assert storage.gaps(a, 0) == [] and storage.sequence_gaps(a) == [(a, 2, 1, 8)]


def test_records_between_and_by_tag(storage):
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    b = storage.register_kiosk(venue="B", public_key=b"b" * 32, now=0)
    # (in clear, only 5-minute buckets: these three are in three of them)
    storage.ingest(a, str(uuid.uuid4()), [rec(1, T0, tag="aa" * 16), rec(2, T0 + 660)], now=T0)
    storage.ingest(b, str(uuid.uuid4()), [rec(3, T0 + 330, tag="bb" * 16)], now=T0)
    rows = storage.records_between(a, T0, T0 + 661)
    assert [r["record_id"] for r in rows] == [rec(1)["record_id"], rec(2)["record_id"]]
    assert rows[0]["sealed"] == rec(1)["sealed"] and rows[0]["kiosk_id"] == a
    assert [r["captured_at"] for r in rows] == [T0, T0 + 600]  # the buckets, not 660
    assert [r["record_id"] for r in storage.records_between(None, T0 + 10, None)] == [
        rec(3)["record_id"],
        rec(2)["record_id"],
    ]
    tagged = storage.records_by_tags({(T0, T0 + DAY): ["bb" * 16, "cc" * 16]}, T0, T0 + DAY)
    assert storage.records_by_tags({(T0 + DAY, T0 + 2 * DAY): ["bb" * 16, "cc" * 16]}, T0, T0 + 3 * DAY) == []
    assert [r["kiosk_id"] for r in tagged] == [b]
    assert storage.untagged_between(T0, T0 + DAY) == 1


def test_risk_statements_versions_and_expiry(storage):
    """The storage keeps member-signed statements as they are (kiosks verify them); whole
    lists leave out the expired, the purge deletes them once kiosks no longer need them."""
    from kiosk.core.retention import TOMBSTONE_DAYS

    v0 = storage.risk_version()
    v1 = storage.add_statement("s1", '{"doc": 1}', expires_at=T0 + DAY, now=T0)
    assert v1 == v0 + 1
    assert storage.statements(now=T0) == (v1, ['{"doc": 1}'])
    assert storage.statements(now=T0 + DAY) == (v1, [])  # expired: not in a whole list
    assert storage.purge(now=T0 + DAY).risk_entries == 0  # kept for kiosks catching up
    assert storage.purge(now=T0 + (TOMBSTONE_DAYS + 2) * DAY).risk_entries == 1
    with pytest.raises(Exception):  # noqa: B017 -- a statement id is kept once
        storage.add_statement("s2", "x", expires_at=T0 + DAY, now=T0)
        storage.add_statement("s2", "y", expires_at=T0 + DAY, now=T0)


def test_manifests_only_go_forward_and_kiosks_heads_only_go_up(storage):
    assert storage.latest_manifest() is None
    storage.put_manifest(1, "m1", now=T0)
    storage.put_manifest(2, "m2", now=T0)
    with pytest.raises(ValueError, match="not newer"):
        storage.put_manifest(2, "forged", now=T0)
    assert storage.latest_manifest() == (2, "m2")
    k = storage.register_kiosk(venue="v", public_key=b"w" * 32, now=0)
    storage.report_head(k, 5, "a" * 64, now=T0)
    storage.report_head(k, 3, "b" * 64, now=T0)  # lower: ignored
    assert storage.witnessed_heads() == [(k, 5, "a" * 64, T0)]


def test_only_the_newest_exposure_list_is_kept_and_none_past_its_expiry(storage):
    assert storage.latest_exposure_list(now=T0) is None
    storage.put_exposure_list(1, "l1", expires_at=T0 + 10 * DAY, now=T0)
    storage.put_exposure_list(2, "l2", expires_at=T0 + 5 * DAY, now=T0)
    with pytest.raises(ValueError, match="not newer"):
        storage.put_exposure_list(2, "forged", expires_at=T0 + DAY, now=T0)
    assert storage.latest_exposure_list(now=T0) == (2, "l2")
    assert storage._q("SELECT count(*) FROM exposure_lists")[0][0] == 1  # the older one is gone
    assert storage.latest_exposure_list(now=T0 + 6 * DAY) is None  # not served past its expiry
    storage.purge(now=T0 + 6 * DAY)
    assert storage._q("SELECT count(*) FROM exposure_lists")[0][0] == 0  # nor kept


def test_a_kiosks_health_and_last_upload_are_kept_and_the_upload_time_not_past_28_days(storage):
    k = storage.register_kiosk(venue="v", public_key=b"h" * 32, now=0)
    storage.record_seen(k, now=T0, skew_s=3.0, summary='{"pending": 1}', upload=True)
    storage.record_seen(k, now=T0 + 60, skew_s=-1.0, summary=None, upload=False)  # no health: kept
    seen = storage.kiosks_seen()[k]
    assert (seen.seen_at, seen.last_upload_at, seen.skew_s, seen.summary, seen.summary_at) == (
        T0 + 60,
        T0,
        -1.0,
        '{"pending": 1}',
        T0,
    )
    older = '{"pending": 9}'  # made before the one held (a replayed request): changes nothing
    storage.record_seen(k, now=T0 + 90, skew_s=0.0, summary=older, upload=False, summary_at=T0 - 30)
    assert storage.kiosks_seen()[k].summary == '{"pending": 1}'
    storage.record_seen(
        k, now=T0 + 120, skew_s=0.0, summary='{"pending": 0}', upload=False, summary_at=T0 + 100
    )
    assert (storage.kiosks_seen()[k].summary, storage.kiosks_seen()[k].summary_at) == (
        '{"pending": 0}',
        T0 + 100,
    )
    storage.add_fleet_snapshot(T0, '{"ok": 1}')
    assert storage.fleet_history(since=T0 - 1) == [(T0, '{"ok": 1}')]
    storage.purge(now=T0 + 29 * DAY)
    assert storage.kiosks_seen()[k].last_upload_at is None  # when someone last checked in there
    assert storage.kiosks_seen()[k].seen_at == T0 + 120


def test_tag_keys_per_kiosk_and_their_end(storage):
    a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
    rows = [(a, T0, T0 + DAY, b"s1", "d1"), (a, T0 + DAY, T0 + 2 * DAY, b"s2", "d2")]
    assert storage.put_tag_keys(rows) == 2
    assert storage.put_tag_keys(rows[:1]) == 0
    assert storage.tag_key_docs(a, T0 + DAY) == ["d2"]
    assert storage.tag_keys_for(a, T0 + DAY) == [(T0 + DAY, T0 + 2 * DAY, b"s2")]
    storage.purge(now=T0 + DAY)
    assert storage.tag_keys_for(a, 0) == [(T0 + DAY, T0 + 2 * DAY, b"s2")]


def test_the_audit_log_and_reads_verify_on_both(storage):
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    committee.found_member(storage, name="a", key=a, now=1)
    committee.found_member(storage, name="b", key=b, now=2)
    committee.open_case(
        storage, key=b, case_id="OB-1", reason="backend parity case", from_ts=0, to_ts=10, now=3
    )
    committee.approve_case(storage, key=a, case_id="OB-1", now=4)
    assert storage.audit_length() == 4 and storage.audit_head_doc()["seq"] == 4
    state = committee.state_of(storage)
    assert state.count == 4 and state.usable_case("OB-1")
    rid = storage.log_read(reader="a", case_id="OB-1", kiosk_id=None, from_ts=0, to_ts=10, records=0, now=5)
    assert storage.reads()[0]["read_id"] == rid


def test_a_kiosk_central_command_on_postgresql(pg_url, tmp_path):
    """--database works where --data does: register, status, purge."""
    import subprocess

    from kiosk.core.keys import write_public
    from testkit import BIN

    write_public(tmp_path / "d.pub", Ed25519PrivateKey.generate().public_key())
    run = lambda *a: subprocess.run(
        [str(BIN / "kiosk-central"), *map(str, a)],  # noqa: E731
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run("init", "--database", pg_url).returncode == 0  # the store, made on purpose
    kid = run(
        "register-kiosk", "--database", pg_url, "--venue", "Hall", "--public-key", tmp_path / "d.pub"
    ).stdout.strip()
    assert kid.startswith("k-")
    assert f"{kid}  Hall  active  records 0" in run("status", "--database", pg_url).stdout
    assert run("purge", "--database", pg_url).stdout.startswith("purged 0 records")
    bad = run("status", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert bad.returncode == 2 and "cannot use the PostgreSQL database" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_serve_on_postgresql_takes_a_real_kiosks_upload(
    pg_url, tmp_path, server_keys, sealing, make_pass, trusted, authority
):
    from kiosk.core.keys import raw_public
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from sync.central.storage.pg_backend import PgStorage
    from testkit import fill
    from workbench.localserver import LocalServer

    device = Ed25519PrivateKey.generate()
    admin = PgStorage(pg_url)
    kid = admin.register_kiosk(venue="v", public_key=raw_public(device.public_key()), now=0)
    publish_manifest(authority, admin, now=time.time())
    store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v")
    ids = fill(store, make_pass, trusted, 1200)
    with LocalServer(tmp_path / "log", server_keys, database=pg_url) as server:
        up = Uploader(
            store=store,
            server_url=server.url,
            kiosk_id=kid,
            device_key=device,
            batch_size=500,
            root_key=load_ed25519_public(authority / "root.pub"),
            bundle_file=tmp_path / "b.json",
        )
        result = up.round()
    assert result.ok and result.accepted == 1200 and store.stats()["pending"] == 0
    assert set(admin.record_ids(kid)) == set(ids) and admin.gaps(kid) == []
    admin.close()
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_with_several_workers_on_either_backend(
    backend, request, tmp_path, server_keys, sealing, make_pass, trusted, authority
):
    """`serve --workers 3`: the uploads land once each, whichever process answers."""
    import threading

    from kiosk.core.keys import raw_public
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from testkit import fill
    from workbench.localserver import LocalServer

    db = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    devices = [Ed25519PrivateKey.generate() for _ in range(4)]
    with LocalServer(tmp_path / "c", server_keys, database=db, workers=3) as server:
        if db:
            from sync.central.storage.pg_backend import PgStorage

            admin = PgStorage(db)
        else:
            admin = SqliteStorage.in_folder(tmp_path / "c")
        kids = [
            admin.register_kiosk(venue=f"v{i}", public_key=raw_public(d.public_key()), now=0)
            for i, d in enumerate(devices)
        ]
        publish_manifest(authority, admin, now=time.time())
        stores = [
            CheckinStore.open(tmp_path / f"k{i}.db", sealing=sealing, venue_id=f"v{i}") for i in range(4)
        ]
        ids = [fill(s, make_pass, trusted, 400) for s in stores]
        results = [None] * 4

        def up(i):
            results[i] = Uploader(
                store=stores[i],
                server_url=server.url,
                kiosk_id=kids[i],
                device_key=devices[i],
                batch_size=50,
                root_key=load_ed25519_public(authority / "root.pub"),
                bundle_file=tmp_path / f"b{i}.json",
            ).round()

        threads = [threading.Thread(target=up, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert all(r.ok and r.accepted == 400 for r in results), results
        for kid, want in zip(kids, ids):
            assert sorted(admin.record_ids(kid)) == sorted(want)
        admin.close()
        for s in stores:
            s.close()
        log = server.log_file.read_text()
    assert "with 3 workers" in log and log.count("Application startup complete") == 3


def test_risk_deltas(storage):
    from kiosk.core.retention import TOMBSTONE_DAYS

    v1 = storage.add_statement("a", "doc-a", expires_at=T0 + DAY, now=T0)
    v2 = storage.add_statement("b", "doc-b", expires_at=T0 + 5 * DAY, now=T0)
    assert storage.statements(now=T0, since=v1) == (v2, ["doc-b"])
    assert storage.statements(now=T0, since=v2) == (v2, [])
    assert storage.statements(now=T0, since=v2 + 5) is None  # ahead of the server: whole
    storage.purge(now=T0 + (TOMBSTONE_DAYS + 2) * DAY)
    assert storage.statements(now=T0, since=v1 - 1) is None  # it missed one that is gone: whole
    assert storage.statements(now=T0, since=v1) == (v2, ["doc-b"])


def test_postgresql_roles_ingest_purge_and_committee_may_do_only_their_part(pg_url, pg_server):
    """db-roles, then a login user in each role: ingest stores a batch but cannot delete or
    read the audit log; purge deletes but cannot insert; the committee reads and logs."""
    import subprocess

    import psycopg

    from sync.central.storage.pg_backend import PgStorage
    from testkit import BIN

    r = subprocess.run(
        [BIN / "kiosk-central", "db-roles", "--database", pg_url], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "kiosk_ingest:" in r.stdout, r.stderr
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for user, role in (
            ("u_ingest", "kiosk_ingest"),
            ("u_purge", "kiosk_purge"),
            ("u_committee", "kiosk_committee"),
        ):
            conn.execute(f"CREATE USER {user} IN ROLE {role}")
    url = lambda user: f"postgresql://{user}@127.0.0.1:{pg_server.port}/{db}"  # noqa: E731
    owner = PgStorage(pg_url)
    kid = owner.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    owner.close()
    ingest = PgStorage(url("u_ingest"))
    old = time.time() - 95 * DAY  # the purge role goes by the database's clock: past 90 days
    assert ingest.ingest(kid, str(uuid.uuid4()), [rec(1, old)], now=old).accepted == [rec(1)["record_id"]]
    ingest.statements(now=T0)
    ingest.latest_manifest()
    ingest.report_head(kid, 1, "c" * 64, now=T0)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ingest._q("DELETE FROM records")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ingest.audit_entries()
    ingest.close()
    purge = PgStorage(url("u_purge"))
    assert purge.purge(now=time.time()).records == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        purge.ingest(kid, str(uuid.uuid4()), [rec(2)], now=T0)
    purge.close()
    member = Ed25519PrivateKey.generate()
    board = PgStorage(url("u_committee"))
    committee.add_member(board, name="m", public_key=member.public_key(), key=None, now=1, bootstrap=True)
    assert committee.state_of(board).count == 1
    board.log_read(reader="m", case_id="C", kiosk_id=None, from_ts=0, to_ts=1, records=0, now=2)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        board._q("DELETE FROM audit")
    board.close()


def test_postgresql_retention_drops_whole_day_partitions(pg_url):
    """Records land in their day's partition (by day only: the server knows no class), made
    ahead by the server; a purge drops the days that are wholly past retention (no dead rows),
    keeps a day an open case holds, and still deletes row by row what sits in the default
    partition. (A server keeping rows 60 days, so that a hold outlasts them.)"""
    import time as _t

    from sync.central.storage.interface import ServerRetention
    from sync.central.storage.pg_backend import PgStorage

    PgStorage(pg_url).close()  # a server keeping 90 days made the days' partitions
    s = PgStorage(pg_url, retention=ServerRetention(significant_days=60))
    now = _t.time()
    today = int(now // DAY)

    def parts():
        return {
            r[0]
            for r in s._q(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p "
                "ON p.oid = i.inhparent WHERE p.relname = 'records'"
            )
        }

    assert {f"records_{today + 7}", f"records_{today - 91}", "records_default"} <= parts()
    assert not {p for p in parts() if "normal" in p or "significant" in p}
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    old_day, held_day = today - 70, today - 65  # both past 60 days, one held by a case
    s.ingest(
        kid,
        str(uuid.uuid4()),
        [rec(i, (old_day + 0.5) * DAY) for i in range(1, 6)]
        + [rec(i, (held_day + 0.5) * DAY) for i in range(6, 9)]
        + [rec(9, (today - 200) * DAY + 1)],
        now=now,
    )  # too old for any day partition
    assert s._q(f"SELECT count(*) FROM records_{old_day}")[0][0] == 5
    assert s._q("SELECT count(*) FROM records_default")[0][0] == 1
    s.hold_records("OB-1", [rec(i, (held_day + 0.5) * DAY) for i in range(6, 9)])  # a trace touched them
    result = s.purge(now=now)
    assert result.records == 6  # 5 by dropping a day, 1 row
    assert f"records_{old_day}" not in parts()  # gone whole: no dead rows
    assert f"records_{held_day}" in parts()  # the case's day is kept
    assert len(s.record_ids(kid)) == 3
    s.close()


def test_a_day_left_detached_by_an_interrupted_purge_is_dropped_by_the_next(pg_url):
    import psycopg

    from sync.central.storage.pg_backend import PgStorage

    storage = PgStorage(pg_url)
    try:
        storage.ensure_partitions(now=T0)
        a = storage.register_kiosk(venue="A", public_key=b"a" * 32, now=0)
        storage.ingest(a, str(uuid.uuid4()), [rec(1)], now=T0)
        day = f"records_{int(T0 // DAY)}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE records DETACH PARTITION {day}")  # then "crash"
            assert conn.execute("SELECT count(*) FROM " + day).fetchone()[0] == 1
        storage.purge(now=T0 + 91 * DAY)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass(%s)", [day]).fetchone()[0] is None
    finally:
        storage.close()


def test_first_batches_of_an_epoch_arriving_together_leave_no_false_gap(storage):
    """Two batches of a new epoch (numbers 1-50 and 51-100) stored at the same moment from
    two threads (a barrier), ten times: neither counts the other's numbers as missing."""
    import threading

    for trial in range(10):
        kid = storage.register_kiosk(venue=f"v{trial}", public_key=bytes([trial]) * 32, now=0)
        halves = [
            [rec(1000 * trial + s, seq=s, epoch=5) for s in range(1, 51)],
            [rec(1000 * trial + s, seq=s, epoch=5) for s in range(51, 101)],
        ]
        barrier, errors = threading.Barrier(2), []

        def send(rows, barrier=barrier, kid=kid, errors=errors):
            try:
                barrier.wait()
                storage.ingest(kid, str(uuid.uuid4()), rows, now=T0)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=send, args=(h,)) for h in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert storage.gaps(kid, 5) == [], f"trial {trial}: a false gap"
        (summary,) = [s for s in storage.sequence_summary() if s.kiosk_id == kid]
        assert (summary.received, summary.distinct_seq, summary.low, summary.high) == (100, 100, 1, 100)


def test_the_duplicate_probe_uses_the_record_id_index_whatever_the_statistics(pg_url):
    """A fresh day partition, its statistics taken when it was empty, then filled: the
    probe ingest runs for a batch's ids still goes by record id (EXPLAIN), never by time."""
    import psycopg

    from sync.central.storage.pg_backend import DUPLICATE_PROBE, PROBE_PLAN, PgStorage

    s = PgStorage(pg_url)
    now = time.time()
    kid = s.register_kiosk(venue="v", public_key=b"e" * 32, now=0)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE records")  # while the day is empty: the stale statistics
    rows = [rec(i, now - 60 - i % 3000, seq=i) for i in range(1, 20_001)]
    s.ingest(kid, str(uuid.uuid4()), rows, now=now)
    ids = [str(uuid.UUID(int=i)) for i in range(1, 501)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.transaction():  # as ingest runs it
            conn.execute("SELECT " + PROBE_PLAN)
            probe = [",".join(ids), now - 3700, now]
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + DUPLICATE_PROBE, probe))
            found = conn.execute(DUPLICATE_PROBE, probe).fetchall()
    s.close()
    assert len(found) == 500
    # Each day partition of the window (one, or two past midnight) is probed per id by an
    # index on the id.
    lines = [line.strip() for line in plan.splitlines()]
    scans = [i for i, x in enumerate(lines) if "Scan" in x and "records_" in x and "_20" in x]
    assert len(scans) in (1, 2) and "Nested Loop" in lines[0], lines[:3]
    for i in scans:
        assert "Seq Scan" not in lines[i] and lines[i + 1].startswith("Index Cond: ((record_id = u.id)"), (
            lines[i : i + 2]
        )


def test_an_enrolment_token_registers_one_kiosk_once(storage):
    """Both backends: the token's kiosk id, its sealed tag keys moved to the kiosk, the same
    device asking again gets its id, any other is refused; expired and unknown tokens too.
    (PostgreSQL goes through kiosk_enrol, by the database's own clock.)"""
    import time

    from sync.central.storage.rows import EnrolmentToken, TagKeyRow

    now = time.time()
    day = now - now % 86400
    tok = EnrolmentToken("a" * 32, "k-" + "1" * 16, "cafe-1", now, now + 86400, '{"doc": 1}', None)
    keys = [
        TagKeyRow(tok.kiosk_id, day, day + 86400, b"sealed-today", "doc-today"),
        TagKeyRow(tok.kiosk_id, day - 86400, day, b"sealed-yesterday", "doc-yesterday"),  # over
    ]
    storage.put_enrolment_token(tok, keys)
    gone = EnrolmentToken("b" * 32, "k-" + "2" * 16, "cafe-2", now - 9e5, now - 1, "{}", None)
    storage.put_enrolment_token(gone, [])
    assert storage.enrolment_token("a" * 32) == tok
    assert (
        storage.enrol_kiosk("c" * 32, public_key=b"d" * 32, tag_public=b"t" * 32, now=now).outcome
        == "unknown"
    )
    assert (
        storage.enrol_kiosk("b" * 32, public_key=b"d" * 32, tag_public=b"t" * 32, now=now).outcome
        == "expired"
    )
    done = storage.enrol_kiosk("a" * 32, public_key=b"d" * 32, tag_public=b"t" * 32, now=now)
    assert (done.outcome, done.kiosk_id) == ("ok", tok.kiosk_id)
    k = storage.kiosk(tok.kiosk_id)
    assert k is not None and (k.venue, k.public_key, k.tag_public) == ("cafe-1", b"d" * 32, b"t" * 32)
    assert storage.tag_key_docs(tok.kiosk_id, now) == ["doc-today"]
    again = storage.enrol_kiosk("a" * 32, public_key=b"d" * 32, tag_public=b"t" * 32, now=now + 5)
    assert (again.outcome, again.kiosk_id) == ("ok", tok.kiosk_id)
    assert (
        storage.enrol_kiosk("a" * 32, public_key=b"e" * 32, tag_public=b"t" * 32, now=now).outcome == "used"
    )
    used = storage.enrolment_token("a" * 32)
    assert used is not None and used.used_at is not None
    assert [t.token for t in storage.enrolment_tokens()] == ["b" * 32, "a" * 32]


def test_a_days_tag_keys_leave_the_server_when_the_day_is_over(storage):
    """`serve` deletes them every minute (on PostgreSQL as the ingest role, through
    kiosk_drop_spent_tag_keys, by the database's clock), not at the daily purge."""
    import time

    from sync.central.storage.rows import TagKeyRow

    now = time.time()
    kid = storage.register_kiosk(venue="v", public_key=b"k" * 32, now=now, tag_public=b"t" * 32)
    storage.put_tag_keys(
        [
            TagKeyRow(kid, now - 86400 - 5, now - 5, b"yesterday", "doc-yesterday"),
            TagKeyRow(kid, now - 5, now + 86400, b"today", "doc-today"),
        ]
    )
    assert storage.drop_spent_tag_keys(now=now) == 1
    assert [k.sealed for k in storage.tag_keys_for(kid, now - 86400)] == [b"today"]


def test_the_same_record_ids_from_two_kiosks_at_once_are_one_kiosks_and_refused_to_the_other(storage):
    """Two kiosks send batches with the same record ids at the same moment (a barrier), ten
    times: each id is stored once, for one of them; the other is refused (never told its copy
    is a duplicate it holds), whichever order the database settles on."""
    import threading

    for trial in range(10):
        kids = [
            storage.register_kiosk(venue=f"v{trial}{k}", public_key=bytes([trial, k]) * 16, now=0)
            for k in (0, 1)
        ]
        batch = [rec(100_000 * (trial + 1) + i, seq=i) for i in range(1, 201)]
        barrier, results = threading.Barrier(2), {}

        def send(kid, barrier=barrier, results=results, batch=batch):
            barrier.wait()
            try:
                results[kid] = storage.ingest(kid, str(uuid.uuid4()), batch, now=T0)
            except RecordIdConflict as e:
                results[kid] = e

        threads = [threading.Thread(target=send, args=(k,)) for k in kids]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        stored = [k for k in kids if not isinstance(results[k], RecordIdConflict)]
        assert len(stored) == 1, results
        assert len(results[stored[0]].accepted) == 200
        assert storage.record_ids([k for k in kids if k not in stored][0]) == []
