"""Input the server must answer with a 4xx, never a 500 or a silent acceptance, and record
ids that belong to another kiosk: the real server process on 127.0.0.1, raw requests."""

import base64
import gzip
import json
import subprocess
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core import protocol
from kiosk.core.keys import load_ed25519_public, raw_public
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import BIN
from workbench.localserver import LocalServer
from workbench.world import publish_manifest


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_keys, authority):
    tmp = tmp_path_factory.mktemp("hardening")
    with LocalServer(tmp / "central", server_keys) as srv:
        s = SqliteStorage.in_folder(srv.data_dir)
        keys = [Ed25519PrivateKey.generate() for _ in range(2)]
        kids = [
            s.register_kiosk(venue=f"v{i}", public_key=raw_public(k.public_key()), now=0)
            for i, k in enumerate(keys)
        ]
        publish_manifest(authority, s, now=time.time())
        s.close()
        yield srv, list(zip(kids, keys))


def batch(*records):
    return json.dumps({"batch_id": str(uuid.uuid4()), "records": list(records)}).encode()


def record(**over):
    r = {
        "record_id": str(uuid.uuid4()),
        "seq": 1,
        "captured_at": time.time() - 5,
        "clock_synced": True,
        "retention": "normal",
        "delete_after": 1,
        "seal_kid": "k",
        "sealed": base64.b64encode(b"x" * 64).decode(),
    }
    return {**r, **over}


def post(srv, kiosk, body: bytes, *, ts=None):
    kid, key = kiosk
    h = protocol.sign_request(
        key, kiosk_id=kid, method="POST", path=protocol.UPLOAD_PATH, timestamp=int(time.time()), body=body
    )
    if ts is not None:
        h["X-Timestamp"] = ts
    return requests.post(
        srv.url + protocol.UPLOAD_PATH, data=body, timeout=10, headers={**h, "Content-Encoding": "gzip"}
    )


@pytest.mark.parametrize("ts", ["²", "9" * 5000, "-1", "1e9", "17.5"])
def test_odd_timestamps_are_a_401_not_a_500(server, ts):
    srv, kiosks = server
    r = post(srv, kiosks[0], gzip.compress(batch(record())), ts=ts)
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"


@pytest.mark.parametrize("seq", [2**63, -1, 0])
def test_out_of_range_sequence_numbers_are_a_400(server, seq):
    srv, kiosks = server
    r = post(srv, kiosks[0], gzip.compress(batch(record(seq=seq))))
    assert r.status_code == 400 and r.json()["error"] == "malformed"


@pytest.mark.parametrize("extra", [b"trailing", "second member"])
def test_gzip_with_trailing_data_or_a_second_member_is_refused(server, extra):
    srv, kiosks = server
    body = gzip.compress(batch(record()))
    body += gzip.compress(batch(record())) if extra == "second member" else extra
    r = post(srv, kiosks[0], body)
    assert r.status_code == 400 and "after the gzip member" in r.json()["detail"]


def test_another_kiosks_record_ids_are_refused_and_its_records_are_not_marked_synced(
    server, tmp_path, sealing, make_pass, trusted, authority
):
    """A kiosk that uploads the victim's record ids first: the victim is told so (409,
    coded), sets those records aside (reported by doctor) and never marks them synced."""
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from testkit import fill

    srv, kiosks = server
    victim = CheckinStore.open(tmp_path / "victim.db", sealing=sealing, venue_id="v0")
    ids = fill(victim, make_pass, trusted, 6)
    stolen = [r for r in victim.pending(10)[:2]]
    r = post(srv, kiosks[1], gzip.compress(batch(*stolen)))  # the attacker, first
    assert r.status_code == 200
    up = Uploader(
        store=victim,
        server_url=srv.url,
        kiosk_id=kiosks[0][0],
        device_key=kiosks[0][1],
        root_key=load_ed25519_public(authority / "root.pub"),
        bundle_file=tmp_path / "bundle.json",
    )
    result = up.round()
    stats = victim.stats()
    assert (result.accepted, stats["synced"], stats["set_aside"]) == (4, 4, 2)
    reasons = victim.set_aside_reasons()
    assert sum(reasons.values()) == 2 and all("record_id_conflict" in r for r in reasons)
    victim.close()
    assert len(ids) == 6


def test_status_reports_a_reused_sequence_number(tmp_path):
    s = SqliteStorage.in_folder(tmp_path / "c")
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    now = time.time()
    for rid in (1, 2):  # the same seq under two record ids
        r = record(record_id=str(uuid.UUID(int=rid)), captured_at=now)
        r["sealed"] = b"x" * 64
        s.ingest(kid, str(uuid.uuid4()), [r], now=now)
    s.close()
    out = subprocess.run(
        [BIN / "kiosk-central", "status", "--data", tmp_path / "c"], capture_output=True, text=True
    ).stdout
    assert "REUSED seq: 1" in out


def test_metrics_listen_apart_count_ingest_and_rejections_and_give_no_check_in_time(server):
    srv, kiosks = server
    assert post(srv, kiosks[0], gzip.compress(batch(record(), record()))).status_code == 200
    post(srv, kiosks[0], gzip.compress(batch(record())), ts="x")
    assert requests.get(srv.url + "/metrics", timeout=10).status_code == 404  # not where kiosks reach
    text = requests.get(srv.metrics_url, timeout=10).text
    assert "kiosk_central_records_accepted_total" in text and "kiosk_central_batches_total" in text
    assert 'kiosk_central_requests_rejected_total{reason="bad_signature"}' in text
    # Per kiosk: only the hour it was last seen; no upload time, no lag.
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("kiosk_central_kiosk_last_seen_hour_timestamp") and f'kiosk="{kiosks[0][0]}"' in x
    )
    assert float(line.split()[-1]) % 3600 == 0
    assert "upload_lag" not in text and "last_upload" not in text
    assert 'kiosk_central_kiosks_seen{within="1h"} ' in text
    health = requests.get(srv.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_a_stranger_is_refused_before_its_body_is_read(server):
    """Signed headers first: an unknown kiosk's 4 MiB - 1 body is never read (the answer
    comes while the body is still being sent), and a body that is not the signed one is
    refused."""
    import socket

    srv, kiosks = server
    port = int(srv.url.rsplit(":", 1)[1])
    body_size = protocol.MAX_BODY_BYTES - 1
    head = (
        f"POST {protocol.UPLOAD_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {body_size}\r\nX-Kiosk-Id: k-stranger\r\n"
        f"X-Timestamp: {int(time.time())}\r\nX-Signature: AAAA\r\nX-Content-SHA256: {'0' * 64}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"\0" * 1024)  # a first kilobyte, then nothing more
        answer = ""
        while "unknown_kiosk" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 401") and "unknown_kiosk" in answer
    # A kiosk's signature over one digest, and another body: refused.
    kid, key = kiosks[0]
    body = gzip.compress(batch(record()))
    h = protocol.sign_request(
        key, kiosk_id=kid, method="POST", path=protocol.UPLOAD_PATH, timestamp=int(time.time()), body=body
    )
    r = requests.post(
        srv.url + protocol.UPLOAD_PATH,
        data=gzip.compress(batch(record())),
        headers={**h, "Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 401 and "does not match its signed" in r.json()["detail"]
    no_digest = {k: v for k, v in h.items() if k != protocol.DIGEST_HEADER}
    r = requests.post(
        srv.url + protocol.UPLOAD_PATH,
        data=body,
        headers={**no_digest, "Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 401 and protocol.DIGEST_HEADER in r.json()["detail"]


def test_a_record_sent_again_under_new_batch_ids_adds_no_receipt(server):
    srv, kiosks = server

    def receipts() -> int:
        s = SqliteStorage.in_folder(srv.data_dir)
        try:
            return int(s._q("SELECT count(*) FROM batches WHERE kiosk_id = ?", [kiosks[1][0]])[0][0])
        finally:
            s.close()

    before = receipts()
    rec = record()
    for _ in range(5):
        assert post(srv, kiosks[1], gzip.compress(batch(rec))).status_code == 200
    assert receipts() == before + 1


def test_openapi_lists_every_status_each_path_answers(server):
    """Every answer the server gives in these tests is in its OpenAPI description."""
    srv, kiosks = server
    spec = requests.get(srv.url + "/openapi.json", timeout=10).json()
    documented = {path: set(ops[next(iter(ops))]["responses"]) for path, ops in spec["paths"].items()}
    seen = {
        "/v1/batches": {
            post(srv, kiosks[0], gzip.compress(batch(record()))).status_code,
            post(srv, kiosks[0], gzip.compress(batch(record(seq=0)))).status_code,
            post(srv, kiosks[0], gzip.compress(batch(record())), ts="x").status_code,
            post(srv, kiosks[0], b"\0" * (protocol.MAX_BODY_BYTES + 1)).status_code,
        },
        "/healthz": {requests.get(srv.url + "/healthz", timeout=10).status_code},
    }
    kid, key = kiosks[0]
    h = protocol.sign_request(
        key, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH, timestamp=int(time.time()), body=b""
    )
    first = requests.get(srv.url + protocol.BUNDLE_PATH, headers=h, timeout=10)
    again = requests.get(
        srv.url + protocol.BUNDLE_PATH, timeout=10, headers={**h, "If-None-Match": first.headers["ETag"]}
    )
    seen["/v1/bundle"] = {
        first.status_code,
        again.status_code,
        requests.get(srv.url + protocol.BUNDLE_PATH, timeout=10).status_code,
    }
    assert seen["/v1/batches"] == {200, 400, 401, 413}
    assert seen["/v1/bundle"] == {200, 304, 401}
    for path, codes in seen.items():
        assert {str(c) for c in codes} <= documented[path], (path, codes, documented[path])
    assert {"401", "403", "409"} <= documented["/v1/batches"] and "403" in documented["/v1/bundle"]
    assert "ErrorBody" in spec["components"]["schemas"]


def test_a_time_ordered_id_whose_time_is_not_its_capture_time_is_refused(server):
    """It would otherwise be looked up in the wrong day's partition (PostgreSQL), where
    another kiosk's record with that id is not."""
    from kiosk.core.recordids import time_ordered_id

    srv, kiosks = server
    now = time.time()
    r = post(
        srv,
        kiosks[0],
        gzip.compress(batch(record(record_id=time_ordered_id(now - 7200), captured_at=now - 5))),
    )
    assert r.status_code == 400 and "record_id" in r.json()["detail"]
    ok = post(
        srv, kiosks[0], gzip.compress(batch(record(record_id=time_ordered_id(now - 5), captured_at=now - 5)))
    )
    assert ok.status_code == 200


def test_serve_itself_cuts_a_client_whose_headers_are_late(tmp_path, server_keys):
    """Straight to `serve` (no nginx in front): a connection that sends nothing, or its headers
    a byte at a time, is closed once its headers are late (--header-timeout); a prompt client
    on the same server is answered."""
    import socket

    from workbench.localserver import LocalServer

    with LocalServer(tmp_path / "c", server_keys, extra=("--header-timeout", "1")) as srv:
        port = srv.port
        silent = socket.create_connection(("127.0.0.1", port), timeout=2)
        slow = socket.create_connection(("127.0.0.1", port), timeout=2)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for conn in (silent, slow):
            got = b"?"
            while got and time.monotonic() - started < 15:
                if conn is slow and time.monotonic() - started < 8:
                    try:
                        conn.sendall(b"X")  # a byte now and then, never the end of the headers
                    except OSError:
                        break
                try:
                    got = conn.recv(1024)
                except TimeoutError:
                    got = b"?"
                except OSError:
                    break
            conn.close()
        assert time.monotonic() - started < 9  # cut at the deadline, not when the client gave up
        assert requests.get(srv.url + "/healthz", timeout=10).status_code == 200
