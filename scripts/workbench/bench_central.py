"""Upload benchmark (part of `scripts/bench`): a backlog of sealed records on the kiosk,
uploaded over loopback to a real `kiosk-central serve` process.

The uploader runs in its own process (as `kiosk sync` does) so its peak RSS is its own.
To build a 100,000-record backlog in seconds, a few hundred records are sealed for real
and their sealed blobs reused under fresh record ids (the server does not open them).
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kiosk.core.recordids import time_ordered_id
from workbench import environ_with_workbench

SEALED_SAMPLES = 256


def make_backlog(db_path: Path, sealing, n: int) -> None:
    from kiosk.core.decision import Decision
    from kiosk.core.passes import PassClaims
    from kiosk.core.reasons import Outcome, Reason
    from kiosk.core.timing import DAY
    from kiosk.store.checkins import CheckinStore

    store = CheckinStore.open(db_path, sealing=sealing, venue_id="bench")
    claims = PassClaims(kid=b"\0" * 8, issuer="bench", issued_at=0, expires_at=1, pass_id=b"\1" * 16)
    decision = Decision(Outcome.ADMIT, Reason.VALID, 0, claims)
    for _ in range(SEALED_SAMPLES):
        store.record(decision, now=time.time(), clock_synced=True)
    blobs = [r[0] for r in store.db.execute("SELECT sealed FROM checkins")]
    now = time.time()
    rows = (
        (str(uuid.uuid4()), now - n + i, 1, "normal", now + 28 * DAY, sealing.kid, blobs[i % len(blobs)])
        for i in range(n - SEALED_SAMPLES)
    )
    with store.db.conn:
        store.db.execute("BEGIN")
        store.db.conn.executemany(
            "INSERT INTO checkins (record_id, captured_at, clock_synced, retention, delete_after, "
            "seal_kid, sealed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    store.close()


def peak_rss_kib() -> int:
    """This process image's own high-water mark (VmHWM). ru_maxrss would not do: Linux
    carries it over from the parent across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(db_path: str, url: str, kiosk_id: str, key_path: str, batch_size: int, root_path: str) -> None:
    """Runs in the uploader's own process: one round, then figures as JSON on stdout."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.keys import load_ed25519_private, load_ed25519_public
    from kiosk.core.seal import SealingKey
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader

    dummy = SealingKey.of(X25519PrivateKey.generate().public_key())  # the uploader seals nothing
    store = CheckinStore.open(Path(db_path), sealing=dummy, venue_id="bench")
    uploader = Uploader(
        store=store,
        server_url=url,
        kiosk_id=kiosk_id,
        device_key=load_ed25519_private(key_path),
        batch_size=batch_size,
        timeout_s=60,
        root_key=load_ed25519_public(root_path),
        bundle_file=Path(db_path).with_suffix(".bundle.json"),
    )
    rss_before = peak_rss_kib()
    t0 = time.perf_counter()
    result = uploader.round()
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "ok": result.ok,
                "error": result.error,
                "accepted": result.accepted,
                "pending": result.pending,
                "seconds": seconds,
                "rss_before_kib": rss_before,
                "rss_peak_kib": peak_rss_kib(),
            }
        )
    )


def bench_upload(t, work: Path, keys_dir: Path, *, backlog: int = 100_000, batch_size: int = 500) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.keys import raw_public, write_private
    from kiosk.core.seal import SealingKey
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.localserver import LocalServer

    sealing = SealingKey.of(X25519PrivateKey.generate().public_key())  # a key handed to the store
    key = Ed25519PrivateKey.generate()
    write_private(work / "bench-device.key", key)
    raw = raw_public(key.public_key())
    sizes = sorted({max(SEALED_SAMPLES * 2, backlog // 10), backlog})
    for n in sizes:
        db = work / f"backlog-{n}.db"
        make_backlog(db, sealing, n)
        data = work / f"central-{n}"
        admin = SqliteStorage.in_folder(data)
        kiosk_id = admin.register_kiosk(venue="bench", public_key=raw, now=time.time())
        from sync.central.manifests import publish

        publish(keys_dir, admin, now=time.time())
        admin.close()
        from sync.central.keyring import server_keys_folder

        with LocalServer(data, server_keys_folder(keys_dir, work / "server-keys")) as server:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workbench.bench_central",
                    str(db),
                    server.url,
                    kiosk_id,
                    str(work / "bench-device.key"),
                    str(batch_size),
                    str(keys_dir / "root.pub"),
                ],
                capture_output=True,
                text=True,
                timeout=1800,
                env=environ_with_workbench(),
            )
        if out.returncode != 0:
            t.add(f"upload of a {n:,}-record backlog", "FAILED", out.stderr.strip()[-200:])
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if not r["ok"] or r["pending"]:
            t.add(f"upload of a {n:,}-record backlog", "FAILED", str(r["error"]))
            continue
        t.add(
            f"upload of a {n:,}-record backlog over loopback ({batch_size}/batch)",
            f"{r['accepted'] / r['seconds']:,.0f} records/s",
            "goal >= 5,000 records/s",
        )
        t.add(
            f"  uploader peak RSS, {n:,}-record backlog",
            f"{r['rss_peak_kib'] / 1024:.0f} MiB",
            f"(after start-up {r['rss_before_kib'] / 1024:.0f} MiB)",
        )

    # The server's storage alone: how fast it ingests batches (no HTTP, no signature).
    storage = SqliteStorage(work / "ingest.db")
    kid = storage.register_kiosk(venue="bench", public_key=raw, now=time.time())
    blob = b"\0" * 120
    batches = [
        [
            {
                "record_id": str(uuid.uuid4()),
                "seq": b * batch_size + i + 1,
                "captured_at": 1.0,
                "clock_synced": True,
                "sealed": blob,
            }
            for i in range(batch_size)
        ]
        for b in range(40)
    ]
    t0 = time.perf_counter()
    for batch in batches:
        storage.ingest(kid, str(uuid.uuid4()), batch, now=time.time())
    rate = 40 * batch_size / (time.perf_counter() - t0)
    storage.close()
    t.add("server storage ingest (SQLite, synchronous=FULL)", f"{rate:,.0f} records/s")


if __name__ == "__main__":
    db_path, url, kiosk_id, key_path, batch_size, root_path = sys.argv[1:7]
    child(db_path, url, kiosk_id, key_path, int(batch_size), root_path)


def bulk_records(storage, rows) -> None:
    """Benchmark tables, fast: (record id, kiosk, seq, captured_at, retention, delete_after,
    seal kid, sealed, tag) rows as a kiosk holds them, stored in one transaction past the ingest
    path as the server keeps them (no class, deletion time or key id)."""
    with storage._lock, storage.db.conn:
        storage.db.execute("BEGIN")
        storage.db.conn.executemany(
            "INSERT INTO records (record_id, kiosk_id, seq, epoch, captured_at, clock_synced, "
            "sealed, batch_id, received_at, tag) VALUES (?, ?, ?, 1, ?, 1, ?, 'b', 0, ?)",
            ((r[0], r[1], r[2], r[3], r[7], r[8]) for r in rows),
        )


def bench_purge(t, work: Path, *, records: int = 1_000_000) -> None:
    """The server's purge of one day's records from a table of ``records`` spread over 28
    days, while a second thread uploads 500-record batches into the same storage: seconds
    for the purge, and how much slower an upload is meanwhile (the purge deletes in chunks,
    each its own transaction, so an upload waits for one chunk at most)."""
    from kiosk.core.timing import DAY
    from sync.central.storage.sqlite_backend import SqliteStorage

    storage = SqliteStorage.in_folder(work / "purge-bench")
    kid = storage.register_kiosk(venue="bench", public_key=b"b" * 32, now=0)
    start = time.time() - 28 * DAY
    start -= start % DAY  # day boundaries, so one day is due at once
    blob = b"\x5a" * 208  # the size of a padded sealed record
    t0 = time.perf_counter()
    step = 28 * DAY / records
    bulk_records(
        storage,
        (
            (
                str(uuid.uuid4()),
                kid,
                i + 1,
                start + i * step,
                "normal",
                start + i * step + 28 * DAY,
                "k",
                blob,
                None,
            )
            for i in range(records)
        ),
    )
    t.add(f"server table built: {records:,} records over 28 days", f"{time.perf_counter() - t0:.1f} s")

    _bench_drop_a_day(t, f"SQLite, {records:,} records over 28 days", storage, kid, oldest=start)
    storage.close()


def bench_key_coverage(t, work: Path) -> None:
    """What doctor prints after `keys rotate` (default 56 days ahead), and how big the
    bundle's period keys are."""
    import json as _json
    from types import SimpleNamespace

    from kiosk.core.keys import init_authority_keys
    from kiosk.core.sealkeys import covered_until
    from kiosk.doctor import check_sealing
    from sync.central.keyring import public_periods, rotate
    from workbench.world import seeded_committee_keys

    keys = work / "coverage-keys"
    init_authority_keys(keys)
    seeded_committee_keys(keys, ahead=0)  # the wrap key the private halves are sealed to
    t0 = time.perf_counter()
    rotate(keys, now=time.time())
    rotate_s = time.perf_counter() - t0
    periods = public_periods(keys)

    class Held:  # doctor reads the fallback count from the store
        def stats(self):
            return {"seal_fallback": 0}

    class B:
        sealing_periods = tuple(periods)

    cfg = SimpleNamespace(
        keys=SimpleNamespace(sealing_periods="", sealing_key=""), sync=SimpleNamespace(key_margin_days=7)
    )
    check = check_sealing(B(), Held(), time.time(), cfg=cfg)  # type: ignore[arg-type]
    size = len(_json.dumps([k.to_wire() for k in periods]))
    t.add(
        "keys rotate (56 days x 2 classes)",
        f"{rotate_s:.2f} s",
        f"{len(periods)} key pairs, {size / 1024:.0f} KiB in the bundle",
    )
    t.add(f"doctor: {check.status} {check.detail}"[:66], "", "")
    assert covered_until(periods, time.time())


def bench_trace(t, work: Path, *, records: int = 1_000_000, kiosks: int = 1000, visits: int = 5) -> None:
    """`trace` for one pass with ``visits`` check-ins over 14 days on a server holding
    ``records`` from ``kiosks`` kiosks: seconds, and how many records it opened. Records at
    the visited kiosks are sealed for real (so they can be opened); the rest carry the size
    of a sealed record and random tags (the trace must never open them)."""
    import random

    from kiosk.core.keys import init_authority_keys
    from kiosk.core.seal import seal
    from kiosk.core.sealkeys import Sealer, search_tag, venue_tag_key
    from kiosk.core.timing import DAY
    from sync.central.committee import members as committee
    from sync.central.committee.reading import committee_keys
    from sync.central.committee.trace import trace
    from sync.central.keyring import public_periods, tag_keys
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.world import members, seeded_committee_keys, unlocked

    rng = random.Random(5)
    keys = work / "trace-keys"
    init_authority_keys(keys)
    now = time.time()
    start = now - 14 * DAY
    seeded_committee_keys(keys, now=start, ahead=16)  # split between the two members below
    tkeys = tag_keys(keys)
    sealing, _ = Sealer(fallback=None, periods=lambda: public_periods(keys)).key_for("normal", start + 3600)
    storage = SqliteStorage.in_folder(work / "trace-bench")
    kids = [
        storage.register_kiosk(venue=f"venue-{i}", public_key=rng.randbytes(32), now=start)
        for i in range(kiosks)
    ]
    infected = b"\x07" * 16
    visited = rng.sample(kids, visits)
    visit_times = sorted(rng.uniform(start + 3600, now - 3600) for _ in range(visits))
    t0 = time.perf_counter()
    per_kiosk = records // kiosks
    blob = b"\x5a" * 208
    rows = []
    for i, kid in enumerate(kids):
        real = kid in visited
        for j in range(per_kiosk):
            at = start + (j + rng.random()) * (14 * DAY / per_kiosk)
            rid = str(uuid.UUID(int=rng.getrandbits(128)))
            pid = rng.randbytes(16)
            sealed = blob
            if real:
                sealed = seal(
                    {
                        "pass_id": pid,
                        "risk_level": 0,
                        "decision": "admit",
                        "reason": "valid",
                        "venue": f"venue-{i}",
                    },
                    sealing,
                    record_id=rid,
                )
            rows.append(
                (rid, kid, j + 1, at, "normal", at + 28 * DAY, sealing.kid, sealed, rng.randbytes(16).hex())
            )
    for kid, at in zip(visited, visit_times):
        rid = str(uuid.uuid4())
        period = max(s for s in tkeys if s <= at)
        rows.append(
            (
                rid,
                kid,
                per_kiosk + 1,
                at,
                "normal",
                at + 28 * DAY,
                sealing.kid,
                seal(
                    {
                        "pass_id": infected,
                        "risk_level": 0,
                        "decision": "admit",
                        "reason": "valid",
                        "venue": f"venue-{kids.index(kid)}",
                    },
                    sealing,
                    record_id=rid,
                ),
                search_tag(venue_tag_key(tkeys[period][1], kid), infected),
            )
        )
    bulk_records(storage, rows)
    build_s = time.perf_counter() - t0
    a, b = members()
    committee.found_committee(storage, [("a", a), ("b", b)], now=now)
    committee.open_case(  # b opens, a (the other founder) approves
        storage,
        key=b,
        case_id="BENCH-1",
        reason="the trace benchmark's case",
        from_ts=start,
        to_ts=now,
        now=now,
    )
    committee.approve_case(storage, key=a, case_id="BENCH-1", now=now)
    sk = committee_keys(keys, unlocked(keys))
    t0 = time.perf_counter()
    result = trace(
        storage, sk, tkeys, member_key=a, second_key=b, case_id="BENCH-1", pass_id=infected, now=now
    )
    trace_s = time.perf_counter() - t0
    in_window = storage._q(
        "SELECT count(*) FROM records WHERE captured_at >= ? AND captured_at < ?", [start, now]
    )[0][0]
    storage.close()
    t.add(f"trace server built: {len(rows):,} records, {kiosks:,} kiosks, 14 days", f"{build_s:.1f} s")
    t.add(f"trace: one pass, {visits} visits over 14 days", f"{trace_s:.2f} s", "goal < 2 s")
    t.add(
        "trace: records opened / in the case's window",
        f"{result.decrypted:,} / {in_window:,}",
        f"{len(result.visits)} visits found; only the records around them",
    )


def _bench_drop_a_day(t, name: str, storage, kiosk_id: str, *, oldest: float) -> None:
    """The purge of the oldest capture day (a partition dropped on PostgreSQL, chunked
    deletes on SQLite) while another thread stores 500-record batches: its time, and the
    worst upload during it against the median before."""
    import statistics
    import threading

    from kiosk.core.timing import DAY

    blob = b"\x5a" * 208

    def upload_once(n0: int) -> float:
        now = time.time()
        rows = [
            {
                "record_id": time_ordered_id(now),
                "seq": n0 + i,
                "epoch": 3,
                "captured_at": now,
                "clock_synced": True,
                "sealed": blob,
            }
            for i in range(500)
        ]
        t1 = time.perf_counter()
        storage.ingest(kiosk_id, str(uuid.uuid4()), rows, now=now)
        return time.perf_counter() - t1

    baseline = [upload_once(i * 500 + 1) for i in range(20)]
    during, done = [], threading.Event()

    def uploader():
        n = 100
        while not done.is_set():
            during.append(upload_once(n * 500 + 1))
            n += 1

    th = threading.Thread(target=uploader)
    th.start()
    time.sleep(0.3)
    day = oldest - oldest % DAY
    t0 = time.perf_counter()
    result = storage.purge(now=day + DAY + 90 * DAY)  # the oldest capture day is due
    purge_s = time.perf_counter() - t0
    time.sleep(0.3)
    done.set()
    th.join()
    base, worst = statistics.median(baseline), max(during)
    slow = sum(1 for d in during if d > 2 * base)
    t.add(
        f"{name}: purge of the oldest day ({result.records:,} records)",
        f"{purge_s:.2f} s",
        f"goal <= 1 s; uploads median {base * 1000:.0f} ms before, during: median "
        f"{statistics.median(during) * 1000:.0f} ms, worst {worst * 1000:.0f} ms "
        f"({worst / base:.1f}x), {slow} of {len(during)} over 2x",
    )


def _poll_bundle(url: str, kiosk_id: str, raw_key: bytes, stop, back, verify: bool | str = True) -> None:
    """A kiosk polling its bundle every 50 ms, as the uploader does it (If-None-Match: the
    common answer is a 304); puts the latencies in ``back`` when ``stop`` is set. ``verify``:
    a CA file for a server behind TLS with a private CA."""
    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol

    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    session, etag, polls = requests.Session(), None, []
    while not stop.is_set():
        h = protocol.sign_request(
            key,
            kiosk_id=kiosk_id,
            method="GET",
            path=protocol.BUNDLE_PATH,
            timestamp=int(time.time()),
            body=b"",
        )
        if etag:
            h["If-None-Match"] = etag
        t1 = time.perf_counter()
        r = session.get(url + protocol.BUNDLE_PATH, headers=h, timeout=30, verify=verify)
        polls.append(time.perf_counter() - t1)
        etag = r.headers.get("ETag", etag)
        time.sleep(0.05)
    back.put(polls)


def bench_server_backends(
    t,
    work: Path,
    keys_dir: Path,
    *,
    kiosks: int = 200,
    batches: int = 5,
    preload: dict | None = None,
    workers: int = 2,
    backends=("sqlite", "postgresql"),
) -> None:
    """The central server under load on each backend: ``kiosks`` simulated kiosks upload
    ``batches`` 500-record batches each, at once, over loopback to `serve --workers`, while
    another thread polls the bundle; then the same on a table preloaded with ``preload``
    rows. Prints ingest records/s, bundle-poll p99 and `status` time per backend. PostgreSQL
    is a throwaway server started here (Debian's binaries), as the tests do."""
    import gzip as _gzip
    import statistics
    import threading

    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol
    from kiosk.core.keys import raw_public
    from sync.central.keyring import server_keys_folder
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.localserver import LocalServer
    from workbench.pgserver import PgServer, server_binaries

    server_keys = server_keys_folder(keys_dir, work / "backend-keys")
    preload = preload or {"sqlite": 2_000_000, "postgresql": 10_000_000}
    wanted, backends, pg = backends, [], None
    if "sqlite" in wanted:
        backends.append(("SQLite", None))
    if "postgresql" in wanted and server_binaries() is not None:
        pg = PgServer().start()
        backends.append(("PostgreSQL", pg.fresh_database()))
    elif "postgresql" in wanted:
        t.add("PostgreSQL figures skipped: no server binaries (apt install postgresql)", "")
    base64_blob = base64.b64encode(b"\x5a" * 208).decode()
    try:
        for name, url in backends:
            data = work / f"backend-{name}"
            if url:
                from sync.central.storage.pg_backend import PgStorage

                admin = PgStorage(url)
            else:
                admin = SqliteStorage.in_folder(data)
            devices = [Ed25519PrivateKey.generate() for _ in range(kiosks)]
            kids = [
                admin.register_kiosk(venue=f"v{i}", public_key=raw_public(d.public_key()), now=0)
                for i, d in enumerate(devices)
            ]
            from sync.central.manifests import publish

            publish(keys_dir, admin, now=time.time())  # bundles need a root-signed manifest

            def batch_body(i, b, round_no):
                now = time.time()
                first = (round_no * batches + b) * 500 + 1  # each kiosk's numbers go on
                recs = [
                    {
                        "record_id": time_ordered_id(now - 60),
                        "seq": first + j,
                        "epoch": 1,
                        "captured_at": now - 60,
                        "clock_synced": True,
                        "sealed": base64_blob,
                    }
                    for j in range(500)
                ]
                return _gzip.compress(
                    json.dumps({"batch_id": str(uuid.uuid4()), "records": recs}).encode(), 5
                )

            def run_round(server, label, round_no):
                bodies = {(i, b): batch_body(i, b, round_no) for i in range(kiosks) for b in range(batches)}
                # The poller is its own process (as a kiosk is), so what it measures is the
                # server, not this process's 200 uploading threads queueing for the GIL.
                ctx = multiprocessing.get_context("fork")
                stop, back = ctx.Event(), ctx.Queue()
                p = ctx.Process(
                    target=_poll_bundle,
                    args=(server.url, kids[0], devices[0].private_bytes_raw(), stop, back),
                )

                def kiosk(i):
                    s = requests.Session()
                    for b in range(batches):
                        body = bodies[(i, b)]
                        h = protocol.sign_request(
                            devices[i],
                            kiosk_id=kids[i],
                            method="POST",
                            path=protocol.UPLOAD_PATH,
                            timestamp=int(time.time()),
                            body=body,
                        )
                        r = s.post(
                            server.url + protocol.UPLOAD_PATH,
                            data=body,
                            timeout=120,
                            headers={**h, "Content-Encoding": "gzip"},
                        )
                        assert r.status_code == 200, r.text[:200]

                p.start()
                t0 = time.perf_counter()
                threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(kiosks)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                elapsed = time.perf_counter() - t0
                stop.set()
                polls = back.get(timeout=60)
                p.join()
                n = kiosks * batches * 500
                p99 = sorted(polls)[int(0.99 * (len(polls) - 1))] if polls else float("nan")
                t.add(
                    f"{name}: {kiosks} kiosks upload {n:,} records, {label}",
                    f"{n / elapsed:,.0f} records/s",
                    f"bundle poll p50 {statistics.median(polls) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
                )

            with LocalServer(
                data,
                server_keys,
                database=url,
                workers=workers,
                ingest_slots=int(os.environ.get("BENCH_INGEST_SLOTS", 0)) or None,
            ) as server:
                run_round(server, "empty table", 0)
            # Preload, then again (the server stopped meanwhile: a bulk load, not the API),
            # spread over the last 27 days as a real table is (one partition a day).
            n_pre = preload["postgresql" if url else "sqlite"]
            t0 = time.perf_counter()
            now = time.time()
            oldest, next_seq = now, [1] * kiosks  # each kiosk's numbers without gaps
            for i in range(0, n_pre, 5000):
                day, k = (i // 5000) % 27, i // 5000 % kiosks
                oldest = min(oldest, now - 3600 - day * 86_400 - 5000)
                first, next_seq[k] = next_seq[k], next_seq[k] + min(5000, n_pre - i)
                rows = [
                    {
                        "record_id": time_ordered_id(now - 3600 - day * 86_400 - j),
                        "seq": first + j,
                        "epoch": 9,
                        "captured_at": now - 3600 - day * 86_400 - j,
                        "clock_synced": True,
                        "sealed": b"\x5a" * 208,
                    }
                    for j in range(min(5000, n_pre - i))
                ]
                admin.ingest(kids[k], str(uuid.uuid4()), rows, now=now)
            t.add(
                f"{name}: preload {n_pre:,} records through ingest (5,000 a call)",
                f"{time.perf_counter() - t0:.0f} s",
            )
            if url:  # as after any bulk load: statistics and the visibility map now,
                import psycopg  # not autovacuum catching up during the measured round

                t0 = time.perf_counter()
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) records")
                t.add(f"{name}: VACUUM (ANALYZE) after the preload", f"{time.perf_counter() - t0:.0f} s")
            with LocalServer(
                data,
                server_keys,
                database=url,
                workers=workers,
                ingest_slots=int(os.environ.get("BENCH_INGEST_SLOTS", 0)) or None,
            ) as server:
                run_round(server, f"table at {n_pre:,} rows", 1)
            from sync.central.fleet import status_lines

            t0 = time.perf_counter()
            assert len(list(status_lines(admin))) >= kiosks
            t.add(
                f"{name}: status over {kiosks} kiosks at {n_pre + kiosks * batches * 1000:,} rows",
                f"{time.perf_counter() - t0:.2f} s",
                "goal <= 0.5 s",
            )
            _bench_drop_a_day(t, name, admin, kids[0], oldest=oldest)
            admin.close()
    finally:
        if pg:
            pg.stop()
