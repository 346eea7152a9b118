"""Both ends of the wire against each other: the real `kiosk-central serve` in its own
process on 127.0.0.1, the real uploader with requests, real SQLite files on both sides.
Faults come from a TCP proxy between them (tests/faultproxy.py) and from killing the
server process; no request is mocked."""

import base64
import gzip
import json
import subprocess
import threading
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core import protocol
from kiosk.core.bundle import verify_bundle
from kiosk.core.keys import ROOT_PUB, load_ed25519_public
from kiosk.core.keys import raw_public as raw
from kiosk.store.checkins import CheckinStore
from kiosk.uploader import Backoff, Uploader
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import NOW, fill, make_uploader
from workbench.faultproxy import FaultProxy
from workbench.localserver import LocalServer
from workbench.world import raise_risk, trusted_world, with_storage


@pytest.fixture
def central(tmp_path, server_keys, authority):
    """The real server, its store holding what the committee's machine publishes: a committee
    of two, an approved case, and the root-signed manifest kiosks trust."""
    with LocalServer(tmp_path / "central", server_keys) as server:
        admin = with_storage(server.data_dir)
        server.alice, server.bob = trusted_world(admin, authority, now=time.time())
        admin.close()
        yield server


@pytest.fixture
def device_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def kiosk_id(central, device_key):
    admin = SqliteStorage.in_folder(central.data_dir)
    kid = admin.register_kiosk(venue="v1", public_key=raw(device_key.public_key()), now=time.time())
    admin.close()
    return kid


def server_ids(central, kiosk_id=None):
    s = SqliteStorage.in_folder(central.data_dir)
    try:
        return s.record_ids(kiosk_id)
    finally:
        s.close()


@pytest.fixture
def kiosk_store(tmp_path, sealing):
    store = CheckinStore.open(tmp_path / "kiosk.db", sealing=sealing, venue_id="v1")
    yield store
    store.close()


def run_until_drained(uploader, *, timeout_s=240, backoff=Backoff(0.01, 0.2)):
    stop = threading.Event()
    rounds = []

    def on_round(result):
        rounds.append(result)
        if result.ok and result.pending == 0:
            stop.set()

    t = threading.Thread(
        target=uploader.loop,
        args=(stop,),
        kwargs=dict(interval_s=0.05, backoff=backoff, on_round=on_round, upload_every_s=0.05),
    )
    t.start()
    t.join(timeout_s)
    stop.set()
    t.join(30)
    return rounds


# -- exactly once, under faults -----------------------------------------------------------------------
@pytest.mark.slow  # a whole run: in the full suite, not the fast lane
def test_ten_thousand_records_arrive_exactly_once_under_faults(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    ids = fill(kiosk_store, make_pass, trusted, 10_000)
    proxy = FaultProxy(
        central.port,
        stall_s=1.5,
        faults={"reset": 0.08, "error503": 0.08, "stall": 0.04, "drop_answer": 0.10, "late_answer": 0.04},
    )
    proxy.forced = ["drop_answer", "late_answer", "error503", "stall", "reset"]  # each at least once
    uploader = make_uploader(
        kiosk_store, proxy.url, kiosk_id, device_key, authority, tmp_path, batch_size=200, timeout_s=1.0
    )

    killer_done = threading.Event()

    def kill_and_restart():
        # Mid-upload: SIGKILL the server (no clean shutdown), bring it back on the same port.
        while kiosk_store.stats()["synced"] < 3000:
            time.sleep(0.05)
        central.kill()
        time.sleep(1.0)
        central.start()
        killer_done.set()

    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    rounds = run_until_drained(uploader)
    killer.join(60)
    proxy.close()

    assert killer_done.is_set(), "the server was never killed mid-upload"
    for mode in ("pass", "reset", "error503", "stall", "drop_answer", "late_answer"):
        assert proxy.counts[mode] >= 1, proxy.counts
    assert any(not r.ok for r in rounds), "no fault reached the uploader"
    on_server = server_ids(central, kiosk_id)
    assert len(on_server) == 10_000 and set(on_server) == set(ids)
    admin = SqliteStorage.in_folder(central.data_dir)
    assert admin.gaps(kiosk_id) == []
    dup = admin.db.execute("SELECT count(*) FROM records GROUP BY record_id HAVING count(*) > 1").fetchall()
    admin.close()
    assert dup == []
    stats = kiosk_store.stats()
    assert stats["pending"] == 0 and stats["synced"] == 10_000 and stats["set_aside"] == 0
    # Dropped answers mean the server saw some records twice and said so.
    assert sum(r.duplicates for r in rounds) > 0


def test_offline_for_weeks_then_everything_drains_in_capture_order(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    central.stop()  # no network for weeks
    start = time.time() - 20 * 86_400
    ids = fill(kiosk_store, make_pass, trusted, 1200, start=start)
    uploader = make_uploader(
        kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path, batch_size=100, timeout_s=1.0
    )
    for _ in range(3):
        result = uploader.round()
        assert not result.ok and result.pending == 1200 and result.accepted == 0
    central.start()
    rounds = run_until_drained(uploader)
    assert rounds[-1].ok and rounds[-1].pending == 0
    admin = SqliteStorage.in_folder(central.data_dir)
    arrived = [r[0] for r in admin.db.execute("SELECT record_id FROM records ORDER BY rowid")]
    seqs = [r[0] for r in admin.db.execute("SELECT seq FROM records ORDER BY rowid")]
    admin.close()
    assert arrived == ids  # oldest first, none missing
    assert seqs == sorted(seqs)


# -- a malformed record is set aside, the rest go through ---------------------------------------------
def test_a_record_the_server_refuses_is_set_aside_and_the_batch_still_lands(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    ids = fill(kiosk_store, make_pass, trusted, 50)
    bad = ids[17]
    with kiosk_store.db.conn:  # e.g. a row damaged on the SD card
        kiosk_store.db.execute("UPDATE checkins SET tag = ? WHERE record_id = ?", ["x" * 100, bad])
    uploader = make_uploader(
        kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path, batch_size=50
    )
    result = uploader.round()
    assert result.ok and result.accepted == 49 and result.set_aside == 1 and result.pending == 0
    assert set(server_ids(central, kiosk_id)) == set(ids) - {bad}
    row = kiosk_store.db.execute(
        "SELECT set_aside_reason, synced_at FROM checkins WHERE record_id = ?", [bad]
    ).fetchone()
    assert row[0].startswith("HTTP 400 malformed") and row[1] is None  # kept, not dropped
    assert kiosk_store.stats()["set_aside"] == 1
    again = uploader.round()  # not retried forever
    assert again.ok and again.accepted == 0 and again.set_aside == 0


def test_server_down_leaves_everything_queued(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    fill(kiosk_store, make_pass, trusted, 10)
    proxy = FaultProxy(central.port, faults={"error503": 1.0})
    uploader = make_uploader(kiosk_store, proxy.url, kiosk_id, device_key, authority, tmp_path)
    result = uploader.round()
    proxy.close()
    assert not result.ok and "503" in result.error and result.retry_after == 0
    assert result.pending == 10 and server_ids(central) == []
    assert kiosk_store.get_state("last_sync_error").endswith("HTTP 503")


def test_a_revoked_kiosk_keeps_its_records_and_says_why(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    fill(kiosk_store, make_pass, trusted, 5)
    admin = SqliteStorage.in_folder(central.data_dir)
    admin.revoke_kiosk(kiosk_id, now=time.time())
    admin.close()
    result = make_uploader(kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path).round()
    assert not result.ok and "403 revoked" in result.error
    assert result.pending == 5 and result.set_aside == 0


def test_a_kiosk_clock_far_off_is_corrected_from_the_server(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    """A Pi has no RTC: after a power cut with no NTP its clock can be days off."""
    fill(kiosk_store, make_pass, trusted, 5)
    uploader = make_uploader(
        kiosk_store,
        central.url,
        kiosk_id,
        device_key,
        authority,
        tmp_path,
        clock=lambda: time.time() - 3 * 86_400,
    )
    result = uploader.round()
    assert result.ok and result.accepted == 5
    assert abs(uploader.clock_offset - 3 * 86_400) < 60


# -- every rejection path: a 4xx and nothing stored ---------------------------------------------------
def record(i=1, **over):
    r = {
        "record_id": str(uuid.uuid4()),
        "seq": i,
        "captured_at": 1.0 * NOW,
        "clock_synced": True,
        "retention": "normal",
        "delete_after": NOW + 28 * 86400.0,
        "seal_kid": "abcd",
        "sealed": base64.b64encode(b"x" * 80).decode(),
    }
    r.update(over)
    return r


def post(url, key, kiosk_id, body, *, ts=None, path=protocol.UPLOAD_PATH, headers=None, sign_body=None):
    h = protocol.sign_request(
        key,
        kiosk_id=kiosk_id,
        method="POST",
        path=path,
        timestamp=int(ts if ts is not None else time.time()),
        body=body if sign_body is None else sign_body,
    )
    h.update({"Content-Type": "application/json", "Content-Encoding": "gzip", **(headers or {})})
    return requests.post(url + path, data=body, headers=h, timeout=10)


def gz(obj) -> bytes:
    return gzip.compress(json.dumps(obj).encode())


REJECTIONS = {
    "unknown kiosk": (401, "unknown_kiosk"),
    "revoked kiosk": (403, "revoked"),
    "bad signature": (401, "bad_signature"),
    "another kiosk's key": (401, "bad_signature"),
    "no signature headers": (401, "bad_signature"),
    "stale timestamp": (401, "stale_timestamp"),
    "oversized body": (413, "too_large"),
    "gzip bomb": (413, "too_large"),
    "too many records": (413, "too_large"),
    "not gzip": (400, "malformed"),
    "not json": (400, "malformed"),
    "missing field": (400, "malformed"),
    "extra field": (400, "malformed"),
    "bad record id": (400, "malformed"),
    "bad base64": (400, "malformed"),
    "wrong type": (400, "malformed"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_each_rejection_is_a_4xx_and_stores_nothing(case, central, kiosk_id, device_key):
    url, key, kid = central.url, device_key, kiosk_id
    good = {"batch_id": str(uuid.uuid4()), "records": [record(1), record(2)]}
    if case == "unknown kiosk":
        r = post(url, key, "k-0000000000000000", gz(good))
    elif case == "revoked kiosk":
        admin = SqliteStorage.in_folder(central.data_dir)
        admin.revoke_kiosk(kid, now=time.time())
        admin.close()
        r = post(url, key, kid, gz(good))
    elif case == "bad signature":
        r = post(url, key, kid, gz(good), sign_body=gz({**good, "batch_id": str(uuid.uuid4())}))
    elif case == "another kiosk's key":
        r = post(url, Ed25519PrivateKey.generate(), kid, gz(good))
    elif case == "no signature headers":
        r = requests.post(
            url + protocol.UPLOAD_PATH, data=gz(good), timeout=10, headers={"Content-Encoding": "gzip"}
        )
    elif case == "stale timestamp":
        r = post(url, key, kid, gz(good), ts=time.time() - 3600)
        assert abs(r.json()["server_time"] - time.time()) < 60
    elif case == "oversized body":
        import os

        r = post(url, key, kid, os.urandom(protocol.MAX_BODY_BYTES + 10))
    elif case == "gzip bomb":
        r = post(url, key, kid, gzip.compress(b" " * (protocol.MAX_JSON_BYTES + 1000), 9))
    elif case == "too many records":
        r = post(
            url,
            key,
            kid,
            gz(
                {
                    "batch_id": str(uuid.uuid4()),
                    "records": [record(i + 1) for i in range(protocol.MAX_RECORDS + 1)],
                }
            ),
        )
    elif case == "not gzip":
        r = post(url, key, kid, json.dumps(good).encode())
    elif case == "not json":
        r = post(url, key, kid, gzip.compress(b"{not json"))
    elif case == "missing field":
        rec = record(2)
        del rec["sealed"]
        r = post(url, key, kid, gz({**good, "records": [record(1), rec]}))
    elif case == "extra field":
        r = post(url, key, kid, gz({**good, "records": [record(1), record(2, pass_id="ab" * 16)]}))
    elif case == "bad record id":
        r = post(url, key, kid, gz({**good, "records": [record(1, record_id="1 OR 1=1")]}))
    elif case == "bad base64":
        r = post(url, key, kid, gz({**good, "records": [record(1), record(2, sealed="!!not base64!!")]}))
    elif case == "wrong type":
        r = post(url, key, kid, gz({**good, "records": [record(1, seq="1")]}))
    status, code = REJECTIONS[case]
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert r.json()["detail"]
    assert server_ids(central) == []
    admin = SqliteStorage.in_folder(central.data_dir)
    assert admin.db.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
    admin.close()


def test_a_round_with_nothing_to_send_uploads_an_empty_batch_that_looks_like_any_other(
    central, kiosk_id, device_key, authority
):
    """Every round uploads, so that an upload says nothing about whether anybody came: an
    empty batch is padded to the same size as a batch with records, answered with a receipt
    of the same size, and stores nothing."""
    empty = protocol.encode_batch(str(uuid.uuid4()), [])
    some = protocol.encode_batch(str(uuid.uuid4()), [record(1), record(2)])
    assert protocol.bucket_size(len(empty)) == protocol.bucket_size(len(some)) == protocol.MIN_BUCKET
    answers = []
    for body in (empty, some):
        r = post(central.url, device_key, kiosk_id, body)
        assert r.status_code == 200, r.text
        answers.append(r)
    assert len(answers[0].content) == len(answers[1].content)  # the answers alike, to the byte
    assert answers[0].json()["accepted"] == [] and answers[0].json()["receipt"]
    assert len(server_ids(central)) == 2  # the empty one stored nothing


def test_the_same_batch_or_record_again_is_stored_once(central, kiosk_id, device_key, authority):
    recs = [record(1), record(2), record(3)]
    batch = {"batch_id": str(uuid.uuid4()), "records": recs}
    first = post(central.url, device_key, kiosk_id, gz(batch)).json()
    again = post(central.url, device_key, kiosk_id, gz(batch)).json()
    ids = [r["record_id"] for r in recs]
    receipts = [first.pop("receipt"), again.pop("receipt")]  # signed by the manifest's receipt key
    first.pop("padding"), again.pop("padding")  # fills the answer to its size bucket
    assert first == {"batch_id": batch["batch_id"], "accepted": ids, "duplicates": []}
    assert again == {"batch_id": batch["batch_id"], "accepted": [], "duplicates": ids}
    from kiosk.core.bundle import verify_receipt
    from kiosk.core.keys import RECEIPT_PUB

    receipt_key = load_ed25519_public(authority / RECEIPT_PUB)  # the manifest names it
    for r in receipts:
        assert sorted(
            verify_receipt(r, [receipt_key], kiosk_id=kiosk_id, batch_id=batch["batch_id"])
        ) == sorted(ids)
    mixed = {"batch_id": str(uuid.uuid4()), "records": [recs[1], record(4)]}
    answer = post(central.url, device_key, kiosk_id, gz(mixed)).json()
    assert answer["accepted"] == [mixed["records"][1]["record_id"]] and answer["duplicates"] == [ids[1]]
    assert sorted(server_ids(central)) == sorted(ids + [mixed["records"][1]["record_id"]])


def test_the_server_reports_gaps_in_a_kiosks_sequence(central, kiosk_id, device_key):
    post(
        central.url,
        device_key,
        kiosk_id,
        gz({"batch_id": str(uuid.uuid4()), "records": [record(i) for i in (3, 4, 7, 10)]}),
    )
    admin = SqliteStorage.in_folder(central.data_dir)
    assert admin.gaps(kiosk_id) == [(1, 2), (5, 6), (8, 9)]
    admin.close()


def test_openapi_describes_upload_and_bundle(central):
    spec = requests.get(central.url + "/openapi.json", timeout=10).json()
    assert {"/v1/batches", "/v1/bundle"} <= set(spec["paths"])
    body = spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"batch_id", "records"}
    assert "sealed" in spec["components"]["schemas"]["Record"]["properties"]


# -- the bundle -------------------------------------------------------------------------------------------
def test_bundle_etag_risk_list_and_a_tampered_bundle_refused_with_the_old_one_kept(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority
):
    root = load_ed25519_public(authority / ROOT_PUB)
    proxy = FaultProxy(central.port)
    uploader = make_uploader(kiosk_store, proxy.url, kiosk_id, device_key, authority, tmp_path)
    assert uploader.fetch_bundle().startswith("updated to version 1: first bundle: manifest ")
    held = (tmp_path / "bundle.json").read_bytes()
    b1 = verify_bundle(held, root, kiosk_id=kiosk_id)
    assert b1.risk_list.levels == {} and b1.policy.deny_level == 3 and set(b1.issuers) == set(trusted)
    assert uploader.fetch_bundle() == "unchanged (version 1)"  # one small 304

    pass_id = bytes(range(16))
    admin = SqliteStorage.in_folder(central.data_dir)
    raise_risk(admin, central.alice, [pass_id], 3, now=time.time())
    admin.close()
    proxy.forced = ["tamper"]  # one byte of the payload changed on the way
    result = uploader.fetch_bundle()
    assert result.startswith("refused (") and "kept version 1" in result
    assert (tmp_path / "bundle.json").read_bytes() == held  # the old one kept
    assert kiosk_store.get_state("bundle_version") == "1"
    assert proxy.counts["tamper"] == 1

    assert (
        uploader.fetch_bundle() == "updated to version 2: risk list +1 -0 entries, 0 changed level (1 in all)"
    )
    from kiosk.core.bundle import chain_docs, verify_chain

    data = (tmp_path / "bundle.json").read_bytes()
    assert len(chain_docs(data)) == 2  # the whole list, then a one-entry delta
    assert verify_bundle(chain_docs(data)[1], root).risk_since == 1
    b2 = verify_chain(data, root, kiosk_id=kiosk_id)
    assert b2.risk_list.level_for(pass_id, now=time.time()) == 3
    assert pass_id.hex() not in (tmp_path / "bundle.json").read_text()  # refs, not pass ids
    proxy.close()


def test_a_bundle_signed_by_another_key_is_refused(
    tmp_path, central, kiosk_id, device_key, kiosk_store, authority
):
    from kiosk.core.keys import init_authority_keys

    impostor = tmp_path / "impostor"
    init_authority_keys(impostor)
    from sync.central.keyring import server_keys_folder

    with LocalServer(tmp_path / "impostor-data", server_keys_folder(impostor, tmp_path / "ik")) as fake:
        admin = SqliteStorage.in_folder(fake.data_dir)
        kid = admin.register_kiosk(venue="v", public_key=raw(device_key.public_key()), now=time.time())
        trusted_world(admin, impostor, now=time.time())  # a manifest its own root signed
        admin.close()
        uploader = make_uploader(kiosk_store, fake.url, kid, device_key, authority, tmp_path)
        assert uploader.fetch_bundle().startswith("refused (manifest refused")
    assert not (tmp_path / "bundle.json").exists()


# -- TLS -------------------------------------------------------------------------------------------------
def make_private_ca(folder):
    from workbench.nginxfront import make_private_ca as made

    return made(folder)


def test_tls_is_verified_by_default_and_a_private_ca_bundle_is_accepted(
    tmp_path, authority, server_keys, device_key, kiosk_store, make_pass, trusted
):
    ca, cert, key = make_private_ca(tmp_path)
    with LocalServer(tmp_path / "central", server_keys, tls=(cert, key), ca_bundle=ca) as server:
        assert server.url.startswith("https://")
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="v", public_key=raw(device_key.public_key()), now=time.time())
        trusted_world(admin, authority, now=time.time())
        admin.close()
        fill(kiosk_store, make_pass, trusted, 3)
        unverified = make_uploader(kiosk_store, server.url, kid, device_key, authority, tmp_path).round()
        assert not unverified.ok and unverified.error.startswith("TLS:") and unverified.pending == 3
        ok = make_uploader(
            kiosk_store, server.url, kid, device_key, authority, tmp_path, verify=str(ca)
        ).round()
        assert ok.ok and ok.accepted == 3 and ok.pending == 0


def test_several_kiosks_upload_at_once_and_each_record_lands_once(
    tmp_path, central, authority, sealing, make_pass, trusted
):
    admin = SqliteStorage.in_folder(central.data_dir)
    kiosks = []
    for i in range(4):
        key = Ed25519PrivateKey.generate()
        kid = admin.register_kiosk(venue=f"v{i}", public_key=raw(key.public_key()), now=time.time())
        store = CheckinStore.open(tmp_path / f"k{i}.db", sealing=sealing, venue_id=f"v{i}")
        kiosks.append((kid, key, store, fill(store, make_pass, trusted, 600)))
    admin.close()
    results = {}

    def go(kid, key, store):
        up = Uploader(
            store=store,
            server_url=central.url,
            kiosk_id=kid,
            device_key=key,
            root_key=load_ed25519_public(authority / ROOT_PUB),
            bundle_file=tmp_path / f"{kid}.json",
            batch_size=50,
        )
        results[kid] = up.round()

    threads = [threading.Thread(target=go, args=k[:3]) for k in kiosks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for kid, _key, store, ids in kiosks:
        assert results[kid].ok and results[kid].accepted == 600
        assert server_ids(central, kid) == ids  # each kiosk's own, in its order
        store.close()


def test_the_server_purges_by_its_own_retention_not_the_kiosks_say():
    """An older kiosk still says a class and a deletion time: neither is kept; every row goes
    the longest retention (90 days) after its capture."""
    storage = SqliteStorage(None)
    kid = storage.register_kiosk(venue="v", public_key=b"\0" * 32, now=0)
    old, fresh = record(1, delete_after=1e300), record(2, delete_after=1.0)  # the kiosk's say
    old["captured_at"], fresh["captured_at"] = 1000.0, 3000.0
    for r in (old, fresh):
        r["sealed"] = base64.b64decode(r["sealed"])
    storage.ingest(kid, str(uuid.uuid4()), [old, fresh], now=0)
    assert storage.purge(now=1000 + 28 * 86_400).records == 0
    assert storage.purge(now=1000 + 90 * 86_400).records == 1
    assert storage.record_ids(kid) == [fresh["record_id"]]
    storage.close()


def test_a_committee_reading_is_logged_first_and_shredded_keys_open_nothing(
    tmp_path, committee_key, sealing, make_pass, trusted
):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.seal import SealingKey
    from sync.central.committee import members as committee
    from sync.central.committee.audit import AuditError
    from sync.central.committee.reading import open_records

    held = {sealing.kid: committee_key}  # what two members unwrap: the keys not yet retired
    storage = SqliteStorage(None)
    kid = storage.register_kiosk(venue="v", public_key=b"\0" * 32, now=0)
    old_period = SealingKey.of(X25519PrivateKey.generate().public_key())  # its key destroyed since
    for key, n in ((sealing, 3), (old_period, 2)):
        store = CheckinStore(open_db_memory(), sealing=key, venue_id="v")
        fill(store, make_pass, trusted, n, start=100)
        rows = store.pending(100)
        for r in rows:
            r["sealed"] = base64.b64decode(r["sealed"])
        storage.ingest(kid, str(uuid.uuid4()), rows, now=0)
    nurse, doctor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    committee.found_committee(storage, [("nurse", nurse), ("doctor", doctor)], now=1)
    committee.open_case(  # the doctor opens; the nurse, the other founder, approves
        storage, key=doctor, case_id="OB-1", reason="a cluster at the market", from_ts=0, to_ts=1000, now=3
    )
    with pytest.raises(AuditError, match="not approved"):
        open_records(storage, held, case_id="OB-1", member_key=nurse, second_key=doctor, now=4)
    committee.approve_case(storage, key=nurse, case_id="OB-1", now=4)
    reading = open_records(storage, held, case_id="OB-1", member_key=nurse, second_key=doctor, now=5)
    assert len(reading.records) == 3 and reading.unopenable == 2
    assert {r["venue"] for r in reading.records} == {"v"}
    assert storage.reads() == [
        {
            "read_id": 1,
            "read_at": 5,
            "reader": "nurse + doctor",
            "case_id": "OB-1",
            "kiosk_id": None,
            "from_ts": 0,
            "to_ts": 1000,
            "records": 5,
            "kind": "read",
        }
    ]
    with pytest.raises(AuditError, match="cannot reach outside"):
        open_records(
            storage, held, case_id="OB-1", member_key=nurse, second_key=doctor, from_ts=0, to_ts=5000, now=6
        )
    assert len(storage.reads()) == 1
    last = committee.state_of(storage)
    assert last.count == 5 and json.loads(storage.audit_entries()[-1][0])["detail"]["records"] == 5


def open_db_memory():
    from kiosk.store.sqlitedb import open_db

    return open_db(None)


# -- trust rooted offline, end to end ------------------------------------------------------------------
def test_kiosks_report_the_audit_head_and_verify_catches_a_tail_cut_below_it(
    tmp_path, central, kiosk_id, device_key, kiosk_store, make_pass, trusted, authority, monkeypatch
):
    """A kiosk keeps the highest audit head its bundles carried and reports it; after the
    tail is cut (with the recorded length forged too, and on a member machine that never saw
    the head), `audit verify` still fails: the kiosk saw an entry the log no longer has."""
    from testkit import BIN

    fill(kiosk_store, make_pass, trusted, 3)
    up = make_uploader(kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path)
    admin = with_storage(central.data_dir)
    raise_risk(admin, central.alice, [b"\x09" * 16], 3, now=time.time())  # a signed entry: the head
    head = admin.audit_head_doc()
    admin.close()
    assert up.round().ok and up.round().ok  # the second round reports what the first fetched
    assert kiosk_store.get_state("audit_head_seen") == f"{head['seq']}:{head['hash']}"
    db = __import__("sqlite3").connect(central.data_dir / "central.db")
    db.execute("DELETE FROM audit WHERE seq = ?", [head["seq"]])
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_length'", [str(head["seq"] - 1)])
    db.commit()
    db.close()
    monkeypatch.setenv("KIOSK_CENTRAL_WITNESS", str(tmp_path / "another-machine.json"))
    r = subprocess.run(
        [BIN / "kiosk-central", "audit", "verify", "--data", central.data_dir], capture_output=True, text=True
    )
    assert r.returncode == 1 and f"kiosk {kiosk_id} saw entry {head['seq']}" in r.stderr, r.stderr


def test_the_root_names_its_successor_and_kiosks_follow_it(
    tmp_path, central, kiosk_id, device_key, kiosk_store, authority
):
    """The manual's succession, step by step: the old root names its successor, the successor is
    promoted (tag keys signed again, a manifest of its own); the kiosk follows it (the proof
    kept in its database), keeps a refusal in force throughout, and takes nothing the old
    root signs afterwards."""
    import shutil

    from kiosk.core.keys import ROOT_KEY, load_ed25519_private
    from kiosk.core.manifest import manifest_payload, sign_manifest
    from kiosk.trust import TrustKey
    from sync.central.manifests import publish
    from sync.central.succession import make_successor, promote
    from workbench.world import raise_risk

    committee = tmp_path / "committee"
    shutil.copytree(authority, committee)
    old_root = load_ed25519_private(committee / ROOT_KEY)
    up = make_uploader(kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path)
    assert up.fetch_bundle().startswith("updated")
    admin = with_storage(central.data_dir)
    refused = b"\x42" * 16
    raise_risk(admin, central.alice, [refused], 3, now=time.time())
    assert up.fetch_bundle().startswith("updated") and up.trust.held().risk_list.level_for(refused) == 3

    successor = make_successor(committee)
    publish(committee, admin, now=time.time(), next_root=successor)
    assert up.fetch_bundle().startswith("updated")
    assert json.loads(kiosk_store.get_state(TrustKey.SUCCESSION.value))  # the proof, kept
    assert up.trust.held().risk_list.level_for(refused) == 3  # nothing dropped at the hand-over
    promote(committee, admin, now=time.time())
    v = publish(committee, admin, now=time.time())
    assert up.fetch_bundle().startswith("updated") and up._held_bundle().manifest_version == v
    assert up.trust.held().risk_list.level_for(refused) == 3
    assert up.round().ok  # uploads and receipts go on under the new root
    # A manifest the old root signs now (a thief of it, writing into the store) is refused.
    forged = manifest_payload(
        version=v + 1, issued_at=time.time(), issuer_keys=[load_ed25519_public(authority / "issuer.pub")]
    )
    admin.put_manifest(v + 1, sign_manifest(forged, old_root).decode(), now=time.time())
    up.fetch_bundle()  # the server does not relay it (it does not verify); a kiosk would refuse it
    assert up._held_bundle().manifest_version == v and up.trust.held().risk_list.level_for(refused) == 3
    admin.close()


def test_upload_sizes_on_the_wire_do_not_give_the_number_of_check_ins(
    tmp_path, central, kiosk_id, device_key, authority, sealing, make_pass, trusted
):
    """What a network observer sees of an upload and its answer (TLS hides the rest): the
    sizes, which are padded to buckets. 1 and 40 check-ins look the same; so do their answers."""
    seen = {}
    for n in (1, 40):
        store = CheckinStore.open(tmp_path / f"k{n}.db", sealing=sealing, venue_id="v1")
        fill(store, make_pass, trusted, n)
        records = store.pending(100)
        body = protocol.encode_batch(
            str(uuid.uuid4()),
            [{k: r[k] for k in protocol.RECORD_FIELDS} for r in records],
        )
        answer = post(central.url, device_key, kiosk_id, body, headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200 and len(answer.json()["accepted"]) == n
        seen[n] = (len(body), len(answer.content))
        store.close()
    assert protocol.MIN_BUCKET - 8 <= seen[1][0] <= protocol.MIN_BUCKET
    assert abs(seen[1][0] - seen[40][0]) <= 8  # the same bucket, within a few random bytes
    assert seen[1][1] == seen[40][1] == protocol.MIN_BUCKET  # answers: exactly the bucket
    big = protocol.encode_batch(str(uuid.uuid4()), [record(i) for i in range(1, 3000)])
    assert len(big) > protocol.MIN_BUCKET and protocol.bucket_size(len(big)) - 8 <= len(big)


def test_every_round_uploads_even_with_nothing_to_send(
    central, kiosk_store, kiosk_id, device_key, authority, tmp_path
):
    """A round with nobody at the door looks like one with somebody: it uploads too (an
    empty batch, padded alike), so neither the network nor the server's upload time tells."""
    from sync.central.storage.sqlite_backend import SqliteStorage

    uploader = make_uploader(kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path)
    first = uploader.round()  # the bundle first (its manifest names the receipt key)
    assert first.ok, first.error
    admin = SqliteStorage.in_folder(central.data_dir)
    try:
        before = admin.kiosk_heard(kiosk_id)["last_upload_at"]
        time.sleep(0.05)
        assert uploader.round().ok and kiosk_store.stats()["records"] == 0
        after = admin.kiosk_heard(kiosk_id)["last_upload_at"]
    finally:
        admin.close()
    assert after is not None and (before is None or after >= before)


def test_the_sync_service_uploads_on_a_fixed_schedule_not_when_someone_comes(
    central, kiosk_store, kiosk_id, device_key, authority, tmp_path, make_pass, trusted
):
    """Rounds every interval (the bundle, the health); an upload once a slot only, at its first
    round, whatever came between: its time says nothing about when anybody came."""
    uploader = make_uploader(kiosk_store, central.url, kiosk_id, device_key, authority, tmp_path)
    posts: list[str] = []
    request = uploader.session.request

    def counting(method, url, **kw):
        if method == "POST":
            posts.append(url)
        return request(method, url, **kw)

    uploader.session.request = counting  # type: ignore[method-assign]
    stop, rounds = threading.Event(), []

    def on_round(result):
        rounds.append(result)
        if len(rounds) == 2:
            fill(kiosk_store, make_pass, trusted, 3)  # somebody came after the slot's upload
        if len(rounds) >= 5:
            stop.set()

    uploader.loop(stop, interval_s=0.01, backoff=Backoff(0.01, 0.1), on_round=on_round, upload_every_s=3600)
    assert all(r.ok for r in rounds) and len(posts) == 1  # the slot's one upload (empty here)
    assert kiosk_store.stats()["pending"] == 3  # they wait for the next slot's upload
