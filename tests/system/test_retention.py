"""Deletion that holds: per-period sealing keys and their retirement, retention the server
enforces, purges at their boundaries on both sides (a clock passed in), no leftovers in the
raw bytes of a database, its WAL or shm, and sealed records of one size."""

import base64
import json
import re
import sqlite3
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.core.decision import Policy, RiskList, decide
from kiosk.core.keys import init_authority_keys
from kiosk.core.reasons import Reason
from kiosk.core.seal import open_sealed
from kiosk.core.sealkeys import Sealer, covered_until
from kiosk.core.timing import DAY
from kiosk.store.checkins import CheckinStore, Retention
from kiosk.store.sqlitedb import open_db
from sync.central import keyring
from sync.central.committee.audit import member_id as committee_member_id
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import BIN, NOW
from workbench.world import period_keys, seeded_committee_keys

T0 = 1_790_000_000 - 1_790_000_000 % DAY  # a UTC midnight


@pytest.fixture
def committee(tmp_path):
    d = tmp_path / "committee"
    init_authority_keys(d)
    seeded_committee_keys(d, now=T0 + 3600, ahead=10)
    return d


def decision(make_pass, trusted, level, pid=b"\x42" * 16):
    return decide(
        make_pass(level, pass_id=pid), trusted=trusted, risk_list=RiskList(), policy=Policy(), now=NOW
    )


# -- key periods -----------------------------------------------------------------------------------
def test_rotate_makes_a_key_per_day_and_class_ahead_and_is_idempotent(committee):
    periods = keyring.public_periods(committee)
    assert len(periods) == 20
    assert {k.klass for k in periods} == {"normal", "significant"}
    first = min(periods, key=lambda k: (k.valid_from, k.klass))
    assert first.valid_from == T0 and first.valid_to == T0 + DAY
    for k in periods:
        days = 28 if k.klass == "normal" else 90
        assert k.destroy_after == k.valid_to + days * DAY
        private = keyring.private_path(committee, k.kid)
        assert private.stat().st_mode & 0o777 == 0o600
    assert keyring.rotate(committee, now=T0 + 7200, ahead_periods=10) == []  # nothing new
    assert len(keyring.rotate(committee, now=T0 + 3 * DAY, ahead_periods=10)) == 6  # 3 days on
    assert covered_until(keyring.public_periods(committee), T0 + 3600) == T0 + 13 * DAY


def test_sealing_picks_the_key_of_capture_time_and_class_and_marks_a_fallback(committee):
    periods = keyring.public_periods(committee)
    sealer = Sealer(fallback=None, periods=lambda: periods)
    for day in (0, 4, 9):
        for klass in ("normal", "significant"):
            key, fell_back = sealer.key_for(klass, T0 + day * DAY + 5)
            want = next(k for k in periods if k.klass == klass and k.valid_from == T0 + day * DAY)
            assert (key.kid, fell_back) == (want.kid, False)
    key, fell_back = sealer.key_for("normal", T0 + 30 * DAY)  # offline past its keys
    newest = max((k for k in periods if k.klass == "normal"), key=lambda k: k.valid_to)
    assert (key.kid, fell_back) == (newest.kid, True)
    assert covered_until(periods, T0 + 30 * DAY) is None


def test_the_kiosk_seals_each_record_to_its_period_and_class(tmp_path, committee, make_pass, trusted):
    periods = keyring.public_periods(committee)
    store = CheckinStore(open_db(None), sealing=Sealer(fallback=None, periods=lambda: periods), venue_id="v")
    rows = []
    for day, level in ((0, 0), (1, 3), (2, 1), (25, 0)):
        rid = store.record(decision(make_pass, trusted, level), now=T0 + day * DAY + 60, clock_synced=True)
        rows.append(
            store.db.execute(
                "SELECT seal_kid, retention, seal_fallback, sealed FROM checkins WHERE record_id = ?", [rid]
            ).fetchone()
            + (rid,)
        )
    by_kid = {k.kid: k for k in periods}
    for (kid, retention, fallback, sealed, rid), day in zip(rows, (0, 1, 2, 25)):
        if day < 10:
            assert fallback == 0 and by_kid[kid].klass == retention
            assert by_kid[kid].valid_from == T0 + day * DAY
        else:
            assert fallback == 1  # no key covers day 25
        private = period_keys(committee)[kid]
        assert open_sealed(sealed, private, record_id=rid)["venue"] == "v"
    assert store.stats()["seal_fallback"] == 1


PEM = re.compile(rb"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", re.S)


def every_private_key_on_disk(*folders):
    """Every PEM private key in any file below the folders: what a thief of them all holds."""
    from cryptography.hazmat.primitives import serialization

    keys = []
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file():
                for pem in PEM.findall(path.read_bytes()):
                    try:
                        keys.append(serialization.load_pem_private_key(pem, password=None))
                    except (ValueError, TypeError):
                        pass
    return keys


def test_after_retire_nothing_on_disk_opens_a_retired_periods_records(
    tmp_path, committee, make_pass, trusted
):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    periods = keyring.public_periods(committee)
    kiosk_dir, server_dir = tmp_path / "kiosk", tmp_path / "server"
    store = CheckinStore.open(
        kiosk_dir / "k.db", sealing=Sealer(fallback=None, periods=lambda: periods), venue_id="v"
    )
    old_ids = [
        store.record(decision(make_pass, trusted, 0), now=T0 + 60 + i, clock_synced=True) for i in range(5)
    ]  # day 0, normal
    keep_ids = [
        store.record(decision(make_pass, trusted, 3), now=T0 + 60 + i, clock_synced=True) for i in range(3)
    ]  # day 0, significant
    server = SqliteStorage.in_folder(server_dir)
    kid = server.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    rows = [{**r, "sealed": base64.b64decode(r["sealed"])} for r in store.pending(100)]
    server.ingest(kid, str(uuid.uuid4()), rows, now=T0 + 100)
    backup = tmp_path / "backup"  # a copy taken meanwhile
    backup.mkdir()
    for p in list(kiosk_dir.iterdir()) + list(server_dir.iterdir()):
        (backup / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    sealed = {r["record_id"]: r["sealed"] for r in rows}

    destroyed, kept = keyring.retire(committee, now=T0 + DAY + 28 * DAY)  # normal day 0 is due
    assert [(k.klass, k.valid_from) for k in destroyed] == [("normal", T0)] and kept == []
    assert not keyring.private_path(committee, destroyed[0].kid).exists()
    assert keyring.retire(committee, now=T0 + DAY + 28 * DAY) == ([], [])  # once

    # The worst case: a thief of every folder and backup, and of two members' keys too.
    keys = [
        k
        for k in every_private_key_on_disk(committee, kiosk_dir, server_dir, backup)
        if isinstance(k, X25519PrivateKey)
    ]
    assert keys == []  # no private sealing key anywhere in clear (no static one, periods wrapped)
    keys = list(period_keys(committee).values())
    assert len(keys) == 19  # the period keys not retired, unwrapped by two members

    def opens(rid):
        for k in keys:
            if isinstance(k, X25519PrivateKey):
                try:
                    open_sealed(sealed[rid], k, record_id=rid)
                    return True
                except Exception:
                    pass
        return False

    assert not any(opens(rid) for rid in old_ids)  # shredded, everywhere
    assert all(opens(rid) for rid in keep_ids)  # the significant ones: 90 days
    store.close()
    server.close()


def test_keys_rotate_and_retire_from_the_command_line(tmp_path):
    """The committee's own order: keys, a store with two members, their shares, the periods,
    and retire with both members' keys; rotate and retire refuse before that."""
    import subprocess

    from testkit import BIN, committee_with_a_case

    def run(*args, check=True):
        r = subprocess.run([BIN / args[0], *map(str, args[1:])], capture_output=True, text=True, timeout=60)
        assert not check or r.returncode == 0, r.stdout + r.stderr
        return r

    d, data = tmp_path / "k", tmp_path / "central"
    init_authority_keys(d)
    early = run("kiosk-central", "keys", "rotate", "--keys", d, "--ahead", "14", check=False)
    assert early.returncode == 3 and "no committee wrap key yet" in early.stderr
    assert "Traceback" not in early.stderr
    alice, bob = committee_with_a_case(run, tmp_path, data, "OB-1")
    shared = run("kiosk-central", "keys", "share", "--keys", d, "--data", data, "--member-key", alice)
    assert "one share each for 2 members (Alice, Bob)" in shared.stdout
    r = run("kiosk-central", "keys", "rotate", "--keys", d, "--ahead", "14")
    assert "made 28 sealing key pairs" in r.stdout and "covered until" in r.stdout
    assert not list((d / "periods").glob("sealing-*.key"))  # none in clear
    retire = ["kiosk-central", "keys", "retire", "--keys", d, "--data", data, "--member-key", alice]
    alone = run(*retire, check=False)
    assert alone.returncode == 2 and "two committee members" in alone.stderr
    r = run(*retire, "--member-key", bob)
    assert r.stdout.strip().splitlines()[-1] == "0 private sealing keys destroyed"


# -- retention the server enforces -------------------------------------------------------------------
def server_record(i, captured_at, retention="normal", delete_after=1e300):
    return {
        "record_id": str(uuid.UUID(int=i)),
        "seq": i,
        "captured_at": captured_at,
        "clock_synced": True,
        "retention": retention,
        "delete_after": delete_after,
        "seal_kid": "k",
        "sealed": b"s" * 64,
    }


def test_the_server_keeps_no_class_and_purges_every_record_at_90_days():
    """What an older kiosk says of a record's class and deletion time is not kept; every row
    goes 90 days after capture, whatever its class (a normal one unreadable from 28 days on:
    `keys retire`)."""
    s = SqliteStorage(None)
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    s.ingest(kid, str(uuid.uuid4()), [server_record(1, T0), server_record(2, T0, "significant")], now=T0)
    columns = {r[1] for r in s.db.execute("PRAGMA table_info(records)").fetchall()}
    assert not columns & {"retention", "delete_after", "seal_kid"}
    assert s.purge(now=T0 + 28 * DAY).records == 0
    assert s.purge(now=T0 + 90 * DAY - 1).records == 0
    assert s.purge(now=T0 + 90 * DAY).records == 2
    s.close()


def test_the_server_refuses_a_far_future_or_too_old_capture_and_infinite_numbers(tmp_path, authority):
    import gzip
    import json

    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol
    from kiosk.core.keys import raw_public
    from sync.central.keyring import server_keys_folder
    from workbench.localserver import LocalServer

    keys = server_keys_folder(authority, tmp_path / "keys")  # as `keys server` makes it
    device = Ed25519PrivateKey.generate()
    with LocalServer(tmp_path / "c", keys) as server:
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="v", public_key=raw_public(device.public_key()), now=0)
        admin.close()
        now = time.time()

        def post(captured_at, delete_after=1.0, raw=None):
            rec = {
                **server_record(7, captured_at, delete_after=delete_after),
                "sealed": base64.b64encode(b"s" * 64).decode(),
            }
            body = raw or json.dumps({"batch_id": str(uuid.uuid4()), "records": [rec]}).encode()
            body = gzip.compress(body)
            h = protocol.sign_request(
                device,
                kiosk_id=kid,
                method="POST",
                path=protocol.UPLOAD_PATH,
                timestamp=int(time.time()),
                body=body,
            )
            return requests.post(
                server.url + protocol.UPLOAD_PATH,
                data=body,
                timeout=10,
                headers={**h, "Content-Encoding": "gzip"},
            )

        ahead = post(now + 5 * 365 * DAY)
        assert ahead.status_code == 400 and ahead.json()["error"] == "bad_capture_time"
        assert "ahead of the server's clock" in ahead.json()["detail"]
        old = post(now - 91 * DAY)
        assert old.status_code == 400 and old.json()["error"] == "bad_capture_time"
        body = json.dumps(
            {
                "batch_id": str(uuid.uuid4()),
                "records": [{**server_record(8, now), "sealed": base64.b64encode(b"s" * 64).decode()}],
            }
        )
        for bad in ("Infinity", "NaN", "1e999"):
            r = post(0, raw=body.replace('"delete_after": 1e+300', f'"delete_after": {bad}').encode())
            assert r.status_code == 400, (bad, r.text)
        ok = post(now - 60, delete_after=10 * 365 * DAY + now)  # ten years declared
        assert ok.status_code == 200
        admin = SqliteStorage.in_folder(server.data_dir)
        assert admin.db.execute("SELECT count(*) FROM records").fetchone()[0] == 1
        assert admin.purge(now=now - 60 + 90 * DAY).records == 1  # the server's 90 days, not the say
        admin.close()


def test_kiosk_central_purge_prints_what_it_deleted(tmp_path):
    import subprocess

    from testkit import BIN

    s = SqliteStorage.in_folder(tmp_path / "c")
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    now = time.time()
    s.ingest(
        kid,
        str(uuid.uuid4()),
        [
            server_record(1, now - 91 * DAY),
            server_record(2, now - 90 * DAY - 60, "significant"),
            server_record(3, now - 89 * DAY),
            server_record(4, now - 60),
        ],
        now=now - 29 * DAY,
    )
    s.add_statement("expired-long-ago", "a statement", expires_at=now - 31 * DAY, now=now - 40 * DAY)
    s.close()
    r = subprocess.run(
        [BIN / "kiosk-central", "purge", "--data", tmp_path / "c"], capture_output=True, text=True
    )
    assert r.stdout.strip() == (
        "purged 2 records (past the longest retention from capture), 1 batches, 1 expired risk entries"
    )


# -- the kiosk's own purge, at its boundaries, offline -----------------------------------------------
def test_kiosk_purge_boundaries_with_a_clock_passed_in(sealing, make_pass, trusted):
    store = CheckinStore(
        open_db(None), sealing=sealing, venue_id="v", retention=Retention(synced_grace_s=3600)
    )
    normal = store.record(decision(make_pass, trusted, 0), now=T0, clock_synced=True)
    significant = store.record(decision(make_pass, trusted, 3), now=T0, clock_synced=True)
    synced = store.record(decision(make_pass, trusted, 0), now=T0, clock_synced=True)
    store.mark_synced([synced], now=T0 + 50)  # a receipt: deletes nothing by itself
    seq = store.db.execute("SELECT seq FROM checkins WHERE record_id = ?", [synced]).fetchone()[0]
    store.confirm({"epoch": store.epoch, "high": seq, "gaps": []}, now=T0 + 100)  # a bundle: held

    def left():
        return {r[0] for r in store.db.execute("SELECT record_id FROM checkins")}

    assert store.purge(now=T0 + 100 + 3599) == 0 and synced in left()
    assert store.purge(now=T0 + 100 + 3600) == 1 and synced not in left()  # the grace
    assert store.purge(now=T0 + 27 * DAY + 23 * 3600) == 0  # 27 d 23 h kept
    assert store.purge(now=T0 + 28 * DAY) == 1 and left() == {significant}  # 28 d gone
    assert store.purge(now=T0 + 89 * DAY + 23 * 3600) == 0  # 89 d 23 h kept
    assert store.purge(now=T0 + 90 * DAY) == 1 and left() == set()  # 90 d gone
    assert normal not in left()


# -- no leftovers ---------------------------------------------------------------------------------
def raw_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


def test_kiosk_purge_leaves_no_byte_of_a_purged_record_while_another_connection_is_open(
    tmp_path, sealing, make_pass, trusted
):
    db = tmp_path / "k.db"
    store = CheckinStore.open(db, sealing=sealing, venue_id="v")
    assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    ids = [store.record(decision(make_pass, trusted, 0), now=T0 + i, clock_synced=True) for i in range(50)]
    keep = store.record(decision(make_pass, trusted, 3), now=T0 + 60, clock_synced=True)
    blobs = dict(store.db.execute("SELECT record_id, sealed FROM checkins").fetchall())
    other = sqlite3.connect(db)  # the sync service, say: holds it open
    other.execute("SELECT count(*) FROM checkins").fetchone()
    raw = raw_bytes(db)
    assert ids[0].encode() in raw and blobs[ids[0]][:32] in raw  # the search can find them
    assert store.purge(now=T0 + 28 * DAY + 100) == 50
    raw = raw_bytes(db)
    for rid in ids:
        assert rid.encode() not in raw and blobs[rid][:32] not in raw
    assert keep.encode() in raw
    assert (db.parent / "k.db-wal").stat().st_size == 0  # truncated
    other.close()
    store.close()


def test_server_purge_leaves_no_byte_of_a_purged_record(tmp_path):
    s = SqliteStorage.in_folder(tmp_path)
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    recs = [server_record(i, T0, "normal") for i in range(1, 200)]
    for r in recs:
        r["sealed"] = uuid.uuid4().bytes * 4
    s.ingest(kid, str(uuid.uuid4()), recs, now=T0)
    other = sqlite3.connect(tmp_path / "central.db")
    other.execute("SELECT count(*) FROM records").fetchone()
    db = tmp_path / "central.db"
    assert recs[5]["sealed"] in raw_bytes(db)
    assert s.purge(now=T0 + 90 * DAY).records == 199
    raw = raw_bytes(db)
    for r in recs:
        assert r["record_id"].encode() not in raw and r["sealed"] not in raw
    other.close()
    s.close()


# -- less metadata ---------------------------------------------------------------------------------
def test_every_sealed_record_has_the_same_length_whatever_was_decided(
    sealing, make_pass, trusted, committee_key
):
    from kiosk.core.decision import Decision
    from kiosk.core.reasons import Outcome

    store = CheckinStore(open_db(None), sealing=sealing, venue_id="venue-with-a-long-name-" * 2)
    listed = decide(
        make_pass(1),
        trusted=trusted,
        risk_list=RiskList(
            levels={__import__("kiosk.core.passes").core.passes.pass_ref(bytes(range(1, 17))): 3}
        ),
        policy=Policy(),
        now=NOW,
    )
    assert listed.reason is Reason.RISK_LIST
    decisions = [decision(make_pass, trusted, level) for level in range(4)] + [listed]
    decisions.append(Decision(Outcome.DENY, Reason.RISK_LEVEL, 3, decisions[3].claims))
    ids = [store.record(d, now=NOW, clock_synced=True) for d in decisions]
    rows = store.db.execute("SELECT record_id, length(sealed), sealed FROM checkins").fetchall()
    assert len({n for _, n, _ in rows}) == 1, [n for _, n, _ in rows]
    for rid, _, blob in rows:
        assert open_sealed(blob, committee_key, record_id=rid)["pass_id"] in (
            d.claims.pass_id for d in decisions
        )
    assert len(ids) == 6


def test_doctor_says_how_far_ahead_the_sealing_keys_cover(tmp_path):
    """A real server hands out period keys; after one sync the kiosk seals with them and
    doctor prints the coverage (and WARNs when it is short)."""
    import subprocess

    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from gpiozero.pins.mock import MockFactory

    from kiosk import config
    from kiosk.adapters.frames import ArraySource
    from kiosk.compose import build_app
    from kiosk.core.keys import raw_public, write_private
    from sync.central.issuing import issue_pass
    from testkit import BIN
    from workbench.localserver import LocalServer
    from workbench.render import camera_frame
    from workbench.world import kiosk_config_text

    committee = tmp_path / "committee"
    init_authority_keys(committee)
    seeded_committee_keys(committee, now=time.time(), ahead=30)
    from sync.central.keyring import server_keys_folder

    server_keys = server_keys_folder(committee, tmp_path / "server-keys")  # as `keys server` makes it
    device = Ed25519PrivateKey.generate()
    write_private(tmp_path / "device.key", device)
    with LocalServer(tmp_path / "central", server_keys) as server:
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="v", public_key=raw_public(device.public_key()), now=0)
        from workbench.world import publish_manifest

        publish_manifest(committee, admin, now=time.time())  # the periods kiosks seal to
        admin.close()
        cfg = tmp_path / "kiosk.toml"
        cfg.write_text(
            kiosk_config_text(
                committee,
                tmp_path / "state" / "k.db",
                keys=[
                    f'root_key = "{committee / "root.pub"}"',
                    f'device_key = "{tmp_path / "device.key"}"',
                ],
                sync=[f'server_url = "{server.url}"', f'kiosk_id = "{kid}"'],
            )
        )
        assert subprocess.run([BIN / "kiosk", "sync", "--config", cfg], capture_output=True).returncode == 0
    d = subprocess.run(
        [BIN / "kiosk", "doctor", "--config", cfg, "--no-camera"], capture_output=True, text=True
    )
    line = next(x for x in d.stdout.splitlines() if "key periods" in x)
    assert line.startswith("ok") and "sealing keys cover until" in line and "days ahead" in line
    secure = next(x for x in d.stdout.splitlines() if "secure del" in x)
    assert secure.startswith("ok")
    # The kiosk seals with today's period key of the record's class.
    c = config.load(cfg)
    app = build_app(c, source=ArraySource([]), pin_factory=MockFactory())
    text, _ = issue_pass(committee, risk=0)
    app.step(camera_frame(text, np.random.default_rng(1), code_px=220))
    (kid_used,) = app.store.db.execute("SELECT seal_kid FROM checkins").fetchone()
    today = [
        k
        for k in keyring.public_periods(committee)
        if k.klass == "normal" and k.valid_from <= time.time() < k.valid_to
    ]
    assert kid_used == today[0].kid
    app.store.close()
    app.signal.close()
    # Short coverage is a warning.
    import kiosk.doctor as doctor

    store = CheckinStore.open_readonly(open_db(c.kiosk.database))
    check, bundle = doctor.check_bundle(c, store, time.time())
    assert doctor.check_sealing(bundle, store, time.time() + 20 * DAY, cfg=c).status == "ok"
    short = doctor.check_sealing(bundle, store, time.time() + 25 * DAY, cfg=c)  # within 7 days
    assert short.status == "warn" and "within the 7-day margin" in short.detail
    assert doctor.check_sealing(bundle, store, time.time() + 40 * DAY, cfg=c).status == "FAIL"
    # No periods at all (none installed, no bundle): nothing can be recorded, a FAIL.
    none = doctor.check_sealing(
        None, store, time.time(), cfg=replace(c, keys=replace(c.keys, sealing_periods=""))
    )
    assert none.status == "FAIL" and "nothing can be recorded" in none.detail


def test_serve_closes_its_storage_on_sigterm(tmp_path, authority):
    """A clean stop checkpoints and removes the WAL: nothing is left only in a side file."""
    from sync.central.keyring import server_keys_folder
    from workbench.localserver import LocalServer

    keys = server_keys_folder(authority, tmp_path / "keys")  # as `keys server` makes it
    server = LocalServer(tmp_path / "c", keys).start()
    admin = SqliteStorage.in_folder(server.data_dir)
    admin.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    admin.close()
    assert (tmp_path / "c" / "central.db-wal").exists()  # the server holds it open
    server.stop()  # SIGTERM
    assert server.log_file.read_text().count("Traceback") == 0
    assert not (tmp_path / "c" / "central.db-wal").exists()


def test_records_of_an_open_case_are_kept_until_it_closes_never_past_90_days():
    """A case holds the records its readings touched, not its whole window: the others in
    the window go at their own time; the held ones until the case closes, never past 90 days.
    (A server keeping records 60 days: with the default 90, no hold outlasts a row.)"""
    from sync.central.committee import members as committee
    from sync.central.storage.interface import ServerRetention
    from workbench.world import members

    s = SqliteStorage(None, retention=ServerRetention(significant_days=60))
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    inside = [server_record(i, T0 + i) for i in (1, 3, 4)]
    s.ingest(kid, str(uuid.uuid4()), [*inside, server_record(2, T0 + 5 * DAY)], now=T0)
    a, b = members()
    committee.found_committee(s, [("a", a), ("b", b)], now=T0)
    committee.open_case(
        s, key=b, case_id="OB-3", reason="cluster in the window", from_ts=T0 - DAY, to_ts=T0 + DAY, now=T0
    )
    committee.approve_case(s, key=a, case_id="OB-3", now=T0)
    # A reading of record 1 alone (as a trace touches only the records around a visit).
    committee.authorise_read(
        s,
        key=a,
        second=b,
        case_id="OB-3",
        action="read",
        from_ts=None,
        to_ts=None,
        detail={},
        touched=lambda x, y: [r for r in s.records_between(kid, x, y) if r["seq"] == 1],
        now=T0,
    )
    assert s.held_count("OB-3") == 1
    assert s.purge(now=T0 + 65 * DAY).records == 3  # 3 and 4 in the window, 2 outside: not held
    assert s.record_ids(kid) == [str(uuid.UUID(int=1))]
    assert s.purge(now=T0 + 90 * DAY + 2).records == 1  # never past 90 days from capture
    # Held again, then the case closes: the hold ends and the purge takes it.
    s.ingest(kid, str(uuid.uuid4()), [server_record(5, T0 + 3600)], now=T0 + 3600)
    s.hold_records("OB-3", s.records_between(kid, None, None))
    assert s.purge(now=T0 + 61 * DAY).records == 0
    committee.close_case(s, key=b, case_id="OB-3", now=T0 + 62 * DAY)
    assert s.held_count() == 0
    assert s.purge(now=T0 + 62 * DAY).records == 1
    s.close()


def test_retire_keeps_the_periods_an_open_case_holds_and_logs_both(tmp_path, witness_file):
    """The keys of a day holding a record an open case touched are kept past their retention
    (never past 90 days after the period); the others of the case's window are not. The
    server knows the held record's day, not its key. `keys retire` needs two members' keys,
    prints what it kept and why, and logs both members."""
    import shutil

    from kiosk.core.keys import write_private
    from kiosk.core.sealkeys import Sealer
    from workbench.world import approved_case, seeded_authority
    from workbench.world import committee as make_committee

    keys = seeded_authority(tmp_path / "committee")
    start = time.time() - 40 * DAY
    start -= start % DAY
    seeded_committee_keys(keys, now=start, ahead=3)
    s = SqliteStorage.in_folder(tmp_path / "central")
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    sealer = Sealer(fallback=None, periods=lambda: keyring.public_periods(keys))
    key, _ = sealer.key_for("normal", start + 3600)  # a record of the first of those days
    record = server_record(1, start + 3600)
    s.ingest(kid, str(uuid.uuid4()), [record], now=start + 7200)
    alice, bob = make_committee(s, now=time.time())
    approved_case(s, alice, bob, now=time.time(), days_back=41)  # its window covers those days
    from sync.central.committee.members import authorise_read

    authorise_read(  # a reading by both: it holds what it touched, and logs it
        s,
        key=alice,
        second=bob,
        case_id="OB-TEST-1",
        action="read",
        from_ts=None,
        to_ts=None,
        detail={},
        touched=lambda a, b: s.records_between(kid, a, b),
        now=time.time(),
    )
    s.close()
    write_private(tmp_path / "alice.key", alice)
    write_private(tmp_path / "bob.key", bob)
    spare = tmp_path / "spare-keys"
    shutil.copytree(keys, spare)
    base = [BIN / "kiosk-central", "keys", "retire", "--keys", keys, "--data", tmp_path / "central"]
    r = subprocess.run(base + ["--member-key", tmp_path / "alice.key"], capture_output=True, text=True)
    assert r.returncode == 2 and "--member-key twice" in r.stderr  # one member alone: nothing
    r = subprocess.run(
        base + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "bob.key"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "kept: period" in r.stdout and "an open case holds records it may have sealed" in r.stdout
    assert "2 private sealing keys destroyed" in r.stdout  # the two other normal days of the window
    s = SqliteStorage.in_folder(tmp_path / "central")
    last = json.loads(s.audit_entries()[-1][0])
    s.close()
    assert last["action"] == "keys_retire" and len(last["detail"]["kept_for_cases"]) == 1
    assert last["detail"]["with"] == committee_member_id(bob.public_key())  # both members logged
    # Without the case (no holds), the same keys are due and destroyed.
    destroyed, kept = keyring.retire(spare, now=time.time())
    assert len(destroyed) == 3 and kept == []
