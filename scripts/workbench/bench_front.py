"""The central server as an internet service, measured (`scripts/bench --only-front`): a real
PostgreSQL, two `serve` processes behind a real nginx with the shipped configuration, side
by side with the raw limits (a batched INSERT ... ON CONFLICT and COPY into the same
partitioned table). CPU is read from /proc for the processes that do the work."""

from __future__ import annotations

import base64
import gzip
import json
import multiprocessing
import os
import socket
import ssl
import statistics
import threading
import time
import uuid
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(*roots: int) -> list[int]:
    kids, out, todo = _children(), [], list(roots)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def postmaster(pg) -> int:
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def _rows(n: int, now: float, *, seq0: int = 1):
    from kiosk.core.recordids import time_ordered_id

    blob = b"\x5a" * 208
    return [
        (time_ordered_id(now - 60 - i * 0.001), seq0 + i, now - 60 - i * 0.001, blob, os.urandom(16))
        for i in range(n)
    ]


def bench_raw(t, url: str, kid: str, pg, *, records: int) -> dict[str, float]:
    """The limits: a batched INSERT ... ON CONFLICT (500 rows a statement, as one upload) and
    COPY, into the same partitioned table, from this process."""
    import psycopg

    out = {}
    now = time.time()
    for label in ("INSERT ... ON CONFLICT", "COPY"):
        rows = _rows(records, now)
        pids = tree(postmaster(pg)) + [os.getpid()]
        c0, t0 = cpu_s(pids), time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            if label == "COPY":
                with conn.cursor().copy(
                    "COPY records (record_id, kiosk_id, seq, epoch, captured_at, clock_synced, "
                    "sealed, batch_id, received_at, seal_fallback, tag) FROM STDIN"
                ) as cp:
                    for rid, seq, at, blob, tag in rows:
                        cp.write_row(
                            (
                                rid,
                                kid,
                                seq + 10**9,
                                3,
                                at,
                                True,
                                blob,
                                "b",
                                now,
                                False,
                                tag,
                            )
                        )
            else:
                for i in range(0, records, 500):
                    part = rows[i : i + 500]
                    conn.execute(
                        "INSERT INTO records (record_id, kiosk_id, seq, epoch, captured_at, clock_synced, "
                        "sealed, batch_id, received_at, seal_fallback, tag) SELECT u.rid, %s, u.seq, 2, "
                        "u.cap, true, u.sealed, 'b', %s, false, u.tag FROM unnest(%s::uuid[], %s::bigint[], "
                        "%s::float8[], %s::bytea[], %s::bytea[]) AS u(rid, seq, cap, sealed, tag) "
                        "ON CONFLICT DO NOTHING",
                        [
                            kid,
                            now,
                            *map(list, zip(*[(r[0], r[1], r[2], r[3], r[4]) for r in part], strict=True)),
                        ],
                    )
        took, cpu = time.perf_counter() - t0, cpu_s(tree(postmaster(pg)) + [os.getpid()]) - c0
        out[label] = records / took
        t.add(
            f"raw {label} into records, {records:,} rows",
            f"{records / took:,.0f} rec/s",
            f"{cpu / records * 1e6:.0f} us CPU a record (PostgreSQL + client)",
        )
    return out


def from_address(source: str):
    """A requests session whose connections come from ``source`` (any 127.x.y.z works on
    Linux): each simulated kiosk is its own client to nginx's per-address limits."""
    import requests
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (source, 0)
            super().init_poolmanager(*args, **kwargs)

    s = requests.Session()
    s.mount("https://", Adapter())
    s.mount("http://", Adapter())
    return s


class Poller:
    def __init__(self, url, kid, device, ca):
        ctx = multiprocessing.get_context("fork")
        self.stop, self.back = ctx.Event(), ctx.Queue()
        from workbench.bench_central import _poll_bundle  # the same poller, verifying the private CA

        self.proc = ctx.Process(
            target=_poll_bundle, args=(url, kid, device.private_bytes_raw(), self.stop, self.back, ca)
        )

    def __enter__(self):
        self.proc.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.polls = self.back.get(timeout=60)
        self.proc.join()

    def p99_ms(self) -> float:
        return sorted(self.polls)[int(0.99 * (len(self.polls) - 1))] * 1000 if self.polls else float("nan")


def bench_front(
    t,
    work: Path,
    keys_dir: Path,
    *,
    kiosks: int = 200,
    batches: int = 3,
    raw_records: int = 300_000,
    metrics_receipts: int = 1_000_000,
    slow: int = 150,
    scrapers: int = 12,
) -> None:
    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol
    from kiosk.core.keys import raw_public
    from kiosk.core.recordids import time_ordered_id
    from sync.central.keyring import server_keys_folder
    from sync.central.manifests import publish
    from sync.central.storage.pg_backend import PgStorage
    from workbench.localserver import LocalServer
    from workbench.nginxfront import NginxFront, make_private_ca, nginx_binary
    from workbench.pgserver import PgServer, server_binaries

    if server_binaries() is None or nginx_binary() is None:
        t.add("front figures skipped: needs Debian's postgresql and nginx", "")
        return
    pg = PgServer().start()
    try:
        url = pg.fresh_database()
        admin = PgStorage(url)
        devices = [Ed25519PrivateKey.generate() for _ in range(kiosks)]
        kids = [
            admin.register_kiosk(venue=f"v{i}", public_key=raw_public(d.public_key()), now=0)
            for i, d in enumerate(devices)
        ]
        publish(keys_dir, admin, now=time.time())
        raw = bench_raw(t, url, kids[0], pg, records=raw_records)
        ca, cert, key = make_private_ca(work / "front-tls")
        server_keys = server_keys_folder(keys_dir, work / "front-keys")
        a = LocalServer(work / "front-a", server_keys, database=url).start()
        b = LocalServer(work / "front-b", server_keys, database=url).start()
        nginx = NginxFront(work / "front-nginx", [a.port, b.port], cert=cert, key=key).start()
        servers = lambda: tree(a.proc.pid, b.proc.pid)  # noqa: E731
        try:
            with Poller(nginx.url, kids[0], devices[0], str(ca)) as idle:
                time.sleep(5)
            t.add(
                "bundle poll through nginx, idle: p99",
                f"{idle.p99_ms():.0f} ms",
                f"p50 {statistics.median(idle.polls) * 1000:.0f} ms",
            )

            blob = base64.b64encode(b"\x5a" * 208).decode()

            def body(i, j):
                now = time.time()
                recs = [
                    {
                        "record_id": time_ordered_id(now - 60),
                        "seq": j * 500 + n + 1,
                        "epoch": 1,
                        "captured_at": now - 60,
                        "clock_synced": True,
                        "sealed": blob,
                        "tag": os.urandom(16).hex(),
                    }
                    for n in range(500)
                ]
                return gzip.compress(json.dumps({"batch_id": str(uuid.uuid4()), "records": recs}).encode(), 5)

            bodies = {(i, j): body(i, j) for i in range(kiosks) for j in range(batches)}
            errors: list[str] = []

            def kiosk(i):
                s = from_address(f"127.0.{1 + i // 250}.{1 + i % 250}")  # each kiosk its own address
                for j in range(batches):
                    h = protocol.sign_request(
                        devices[i],
                        kiosk_id=kids[i],
                        method="POST",
                        path=protocol.UPLOAD_PATH,
                        timestamp=int(time.time()),
                        body=bodies[(i, j)],
                    )
                    for _ in range(20):  # over the per-client rate (all from 127.0.0.1 here): again
                        r = s.post(
                            nginx.url + protocol.UPLOAD_PATH,
                            data=bodies[(i, j)],
                            verify=str(ca),
                            timeout=120,
                            headers={**h, "Content-Encoding": "gzip"},
                        )
                        if r.status_code != 429:
                            break
                        time.sleep(0.2)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:80]}")
                        print("  upload error:", errors[-1], flush=True) if len(errors) <= 3 else None

            pids = servers() + tree(nginx.proc.pid) + tree(postmaster(pg))
            c0, t0 = cpu_s(pids), time.perf_counter()
            with Poller(nginx.url, kids[0], devices[0], str(ca)) as busy:
                threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(kiosks)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
            took = time.perf_counter() - t0
            n = kiosks * batches * 500
            cpu = cpu_s(servers() + tree(nginx.proc.pid) + tree(postmaster(pg))) - c0
            limit = raw["INSERT ... ON CONFLICT"]
            t.add(
                f"ingest through nginx + 2 servers, {kiosks} kiosks, {n:,} records",
                f"{n / took:,.0f} rec/s",
                f"{n / took / limit:.2f}x the raw INSERT (goal >= 0.8x); {cpu / n * 1e6:.0f} us CPU a record "
                f"(servers + nginx + PostgreSQL){'; ' + str(len(errors)) + ' errors' if errors else ''}",
            )
            t.add(
                "bundle poll p99 while they upload",
                f"{busy.p99_ms():.0f} ms",
                f"goal <= 2x idle ({2 * idle.p99_ms():.0f} ms)",
            )

            # Strangers holding slow bodies, and scrapers on both servers' metrics.
            rss0 = rss_mib(servers() + tree(nginx.proc.pid))
            stop = threading.Event()
            ctx_tls = ssl.create_default_context(cafile=str(ca))

            def stranger():
                try:
                    s = ctx_tls.wrap_socket(
                        socket.create_connection(("127.0.0.1", nginx.port), timeout=30),
                        server_hostname="127.0.0.1",
                    )
                    s.sendall(
                        "POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                        f"Content-Length: {protocol.MAX_BODY_BYTES - 1}\r\n\r\n".encode()
                        + b"\0" * 1024
                    )
                    while not stop.is_set() and s.recv(1024):
                        pass
                except OSError:
                    pass

            scrapes: list[float] = []

            def scraper(u):
                s = requests.Session()
                while not stop.is_set():
                    t1 = time.perf_counter()
                    s.get(u, timeout=10)
                    scrapes.append(time.perf_counter() - t1)

            bad = [threading.Thread(target=stranger) for _ in range(slow)]
            bad += [
                threading.Thread(target=scraper, args=((a, b)[k % 2].metrics_url,)) for k in range(scrapers)
            ]
            with Poller(nginx.url, kids[0], devices[0], str(ca)) as attacked:
                for th in bad:
                    th.start()
                time.sleep(8)
                rss1 = rss_mib(servers() + tree(nginx.proc.pid))
                stop.set()
            for th in bad:
                th.join(timeout=30)
            t.add(
                f"bundle poll p99, {slow} slow-body strangers + {scrapers} metric scrapers",
                f"{attacked.p99_ms():.0f} ms",
                f"goal <= 2x idle; servers + nginx memory {rss1 - rss0:+.0f} MiB (goal < 100 MiB)",
            )

            # /metrics with a million batch receipts in the database: in memory, no scan.
            import psycopg

            with (
                psycopg.connect(url, autocommit=True) as conn,
                conn.cursor().copy("COPY batches (batch_id, kiosk_id, received_at) FROM STDIN") as cp,
            ):
                now = time.time()  # a receipt keeps its day only (issue 33)
                for i in range(metrics_receipts):
                    day = now - i % (28 * 86_400)
                    cp.write_row((f"bench-{i}", kids[i % kiosks], day - day % 86_400))
            s = requests.Session()
            times = []
            for _ in range(30):
                t1 = time.perf_counter()
                s.get(a.metrics_url, timeout=10)
                times.append(time.perf_counter() - t1)
            t.add(
                f"/metrics with {metrics_receipts:,} receipts held",
                f"{statistics.median(times) * 1000:.1f} ms",
                "goal <= 10 ms",
            )
        finally:
            nginx.stop()
            a.stop()
            b.stop()
        admin.close()
        bench_kill(t, work, keys_dir, url, server_keys, ca, cert, key)
    finally:
        pg.stop()


def bench_kill(
    t, work: Path, keys_dir: Path, url: str, server_keys: Path, ca: Path, cert: Path, key: Path
) -> None:
    """A `serve` SIGKILLed in the middle of uploads behind nginx: records lost."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.core.keys import load_ed25519_private, load_ed25519_public, raw_public, trusted_issuers
    from kiosk.core.passes import encode_pass
    from kiosk.core.seal import SealingKey
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from sync.central.storage.pg_backend import PgStorage
    from workbench.localserver import LocalServer
    from workbench.nginxfront import NginxFront

    s = PgStorage(url)
    device = Ed25519PrivateKey.generate()
    kid = s.register_kiosk(venue="killed", public_key=raw_public(device.public_key()), now=0)
    issuer = load_ed25519_private(keys_dir / "issuer.key")
    trusted = trusted_issuers([keys_dir / "issuer.pub"])
    store = CheckinStore.open(
        work / "kill.db", sealing=SealingKey.of(X25519PrivateKey.generate().public_key()), venue_id="v"
    )
    now = time.time()
    texts = [
        encode_pass(
            signing_key=issuer,
            issuer="b",
            issued_at=int(now) - 60,
            expires_at=int(now) + 3600,
            pass_id=bytes([i]) * 16,
            risk_level=0,
        )
        for i in range(4)
    ]
    for i in range(3000):
        store.record(
            decide(texts[i % 4], trusted=trusted, risk_list=RiskList(), policy=Policy(), now=now),
            now=now - 3000 + i,
            clock_synced=True,
        )
    a = LocalServer(work / "kill-a", server_keys, database=url).start()
    b = LocalServer(work / "kill-b", server_keys, database=url).start()
    nginx = NginxFront(work / "kill-nginx", [a.port, b.port], cert=cert, key=key).start()
    try:
        up = Uploader(
            store=store,
            server_url=nginx.url,
            kiosk_id=kid,
            device_key=device,
            root_key=load_ed25519_public(keys_dir / "root.pub"),
            bundle_file=work / "kill-bundle.json",
            verify=str(ca),
            batch_size=100,
        )
        threading.Timer(0.5, a.kill).start()
        deadline = time.monotonic() + 120
        while store.stats()["pending"] and time.monotonic() < deadline:
            up.round()
        held = len(s.record_ids(kid))
        t.add(
            "a serve SIGKILLed mid-upload behind nginx: records lost",
            f"{3000 - held}",
            f"goal 0 ({held:,} of 3,000 on the server, {store.stats()['pending']} pending)",
        )
    finally:
        nginx.stop()
        a.stop()
        b.stop()
        store.close()
        s.close()


__all__ = ["bench_front"]
