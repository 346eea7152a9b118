"""The central server as an internet service: a real nginx (Debian's, with the shipped
config/nginx/kiosk-central.conf) on loopback with TLS, in front of two `serve` processes on
separate ports sharing a real PostgreSQL, as if on two machines."""

import socket
import ssl
import threading
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core import protocol
from kiosk.core.keys import load_ed25519_public, raw_public
from kiosk.store.checkins import CheckinStore
from kiosk.uploader import Uploader
from testkit import fill
from workbench.localserver import LocalServer
from workbench.nginxfront import NginxFront, make_private_ca, nginx_binary
from workbench.world import publish_manifest

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed here (scripts/setup --test installs it)"
)


@pytest.fixture
def front(tmp_path, pg_url, server_keys, authority):
    from sync.central.storage.pg_backend import PgStorage

    ca, cert, key = make_private_ca(tmp_path / "tls")
    s = PgStorage(pg_url)
    device = Ed25519PrivateKey.generate()
    kid = s.register_kiosk(venue="Market", public_key=raw_public(device.public_key()), now=0)
    publish_manifest(authority, s, now=time.time())
    s.close()
    a = LocalServer(tmp_path / "a", server_keys, database=pg_url).start()
    b = LocalServer(tmp_path / "b", server_keys, database=pg_url).start()
    nginx = NginxFront(tmp_path / "nginx", [a.port, b.port], cert=cert, key=key).start()
    try:
        yield {"nginx": nginx, "servers": (a, b), "ca": ca, "kid": kid, "device": device, "pg": pg_url}
    finally:
        nginx.stop()
        a.stop()
        b.stop()


def uploader(front, store, authority, tmp_path, **kw):
    return Uploader(
        store=store,
        server_url=front["nginx"].url,
        kiosk_id=front["kid"],
        device_key=front["device"],
        root_key=load_ed25519_public(authority / "root.pub"),
        bundle_file=tmp_path / "bundle.json",
        verify=str(front["ca"]),
        **kw,
    )


def held_on_server(pg_url, kid) -> int:
    from sync.central.storage.pg_backend import PgStorage

    s = PgStorage(pg_url)
    try:
        return len(s.record_ids(kid))
    finally:
        s.close()


def test_a_kiosk_syncs_over_tls_through_nginx_and_both_servers_answer(
    front, tmp_path, authority, sealing, make_pass, trusted
):
    store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="Market")
    fill(store, make_pass, trusted, 30)
    up = uploader(front, store, authority, tmp_path, batch_size=5)
    for _ in range(3):
        assert up.round().ok
    assert store.stats()["pending"] == 0 and held_on_server(front["pg"], front["kid"]) == 30
    for server in front["servers"]:  # nginx spread the requests over both
        text = requests.get(server.metrics_url, timeout=10).text
        assert f'kiosk="{front["kid"]}"' in text, server.url
    store.close()
    assert (
        requests.get(front["nginx"].url + "/metrics", verify=str(front["ca"]), timeout=10).status_code == 404
    )
    plain = requests.get(front["nginx"].url + "/healthz", verify=str(front["ca"]), timeout=10)
    assert plain.status_code == 200
    # the visitors' check page passes the front, read-only
    page = requests.get(front["nginx"].url + "/check/", verify=str(front["ca"]), timeout=10)
    assert page.status_code == 200 and "check.js" in page.text
    script = requests.get(front["nginx"].url + "/check/check.js", verify=str(front["ca"]), timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    posted = requests.post(front["nginx"].url + "/check/", data="VC1:x", verify=str(front["ca"]), timeout=10)
    assert posted.status_code == 403


def tls_socket(front) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(front["ca"]))
    raw = socket.create_connection(("127.0.0.1", front["nginx"].port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def answer_and_time(sock: ssl.SSLSocket, started: float) -> tuple[str, float]:
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    return data.decode(errors="replace"), time.monotonic() - started


def test_slow_headers_slow_bodies_and_large_bodies_are_stopped_at_the_front(front):
    """Strangers that never finish their headers, or send 1 KiB of a 4 MiB - 1 body and
    stop, are cut by nginx within its 10 s timeouts (the servers never see them); a body over
    4 MiB is refused at once; the servers still answer a kiosk meanwhile."""
    results: dict[str, tuple[str, float]] = {}

    def slow_headers(i):
        s = tls_socket(front)
        t = time.monotonic()
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Kiosk-Id: k-strang")
        results[f"headers{i}"] = answer_and_time(s, t)

    def slow_body(i):
        s = tls_socket(front)
        t = time.monotonic()
        s.sendall(
            "POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {protocol.MAX_BODY_BYTES - 1}\r\nContent-Encoding: gzip\r\n\r\n".encode()
            + b"\0" * 1024
        )
        results[f"body{i}"] = answer_and_time(s, t)

    threads = [threading.Thread(target=f, args=(i,)) for i in range(5) for f in (slow_headers, slow_body)]
    for t in threads:
        t.start()
    time.sleep(1)
    assert (
        requests.get(front["nginx"].url + "/healthz", verify=str(front["ca"]), timeout=10).status_code == 200
    )
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 10
    for name, (answer, took) in results.items():
        assert took < 13, (name, took)
        if name.startswith("body"):
            assert answer == "" or "408" in answer.split("\r\n", 1)[0], answer[:100]
    big = requests.post(
        front["nginx"].url + protocol.UPLOAD_PATH,
        data=b"\0" * (protocol.MAX_BODY_BYTES + 1),
        verify=str(front["ca"]),
        timeout=30,
    )
    assert big.status_code == 413
    for server in front["servers"]:  # none of these reached a server
        assert "k-strang" not in server.log_file.read_text()


def test_one_client_is_held_to_its_request_rate(front):
    session = requests.Session()
    codes = [
        session.get(front["nginx"].url + "/healthz", verify=str(front["ca"]), timeout=10).status_code
        for _ in range(60)
    ]
    assert codes.count(200) >= 20 and codes.count(429) > 0, codes


def test_kiosks_behind_one_address_are_each_held_to_their_own_rate(front):
    """Many kiosks behind one NAT share an address: each is held to its own rate (by its
    kiosk id), so one address's kiosks together are not refused as a flood."""
    session = requests.Session()
    codes = [
        session.get(
            front["nginx"].url + "/healthz",
            headers={"X-Kiosk-Id": f"k-nat-{i % 6}"},
            verify=str(front["ca"]),
            timeout=10,
        ).status_code
        for i in range(60)
    ]
    assert codes.count(429) == 0, codes  # six kiosks, ten requests each: within each one's burst
    flood = [
        session.get(
            front["nginx"].url + "/healthz",
            headers={"X-Kiosk-Id": "k-nat-0"},
            verify=str(front["ca"]),
            timeout=10,
        ).status_code
        for _ in range(60)
    ]
    assert flood.count(429) > 0, flood  # but one kiosk's flood is still one kiosk's


def test_a_server_killed_mid_upload_behind_nginx_loses_no_record(
    front, tmp_path, authority, sealing, make_pass, trusted
):
    store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="Market")
    fill(store, make_pass, trusted, 1500)
    up = uploader(front, store, authority, tmp_path, batch_size=50)
    a, _ = front["servers"]
    killer = threading.Timer(0.3, a.kill)  # SIGKILL, mid-stream
    killer.start()
    deadline = time.monotonic() + 120
    while store.stats()["pending"] and time.monotonic() < deadline:
        up.round()
    killer.join()
    stats = store.stats()
    assert (stats["pending"], stats["set_aside"]) == (0, 0)
    assert held_on_server(front["pg"], front["kid"]) == 1500  # every record, once
    store.close()


def test_a_kiosk_enrols_and_updates_over_tls_through_nginx_on_postgresql(front, tmp_path, authority):
    """The fleet's two journeys through the front, on PostgreSQL: a kiosk enrols with a token
    (kiosk_enrol, as the ingest role would), then installs a signed release."""
    from sync.central.storage.pg_backend import PgStorage
    from sync.central.tokenissuing import issue
    from sync.central.tufrepo import publish
    from testkit import build_release, run_bin
    from workbench.world import kiosk_config_text

    s = PgStorage(front["pg"])
    try:
        token = issue(authority, s, venue="Market", expires_at=time.time() + 3600, now=time.time())
    finally:
        s.close()
    cfg = tmp_path / "kiosk" / "kiosk.toml"
    text = kiosk_config_text(
        authority,
        tmp_path / "kiosk" / "kiosk.db",
        keys=[f'root_key = "{authority / "root.pub"}"'],
        sync=[f'server_url = "{front["nginx"].url}"', f'ca_bundle = "{front["ca"]}"'],
        update=["quiet_s = 0.0"],
    )
    cfg.write_text(text.replace('venue_id = "venue-test"', 'venue_id = "Market"'))
    enrolled = run_bin("kiosk", "enrol", "--config", cfg, token.code.text)
    assert "enrolled: kiosk " + token.token.kiosk_id in enrolled.stdout
    release = build_release(tmp_path, "0.2.0", change="through the front")
    s = PgStorage(front["pg"])
    try:
        publish(authority, s, release, now=time.time())
    finally:
        s.close()
    done = run_bin("kiosk", "update", "--config", cfg, timeout=300)
    assert done.stdout.strip() == "installed 0.2.0: from 0.1.0; healthy"
