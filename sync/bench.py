"""Upload benchmark (part of `scripts/bench`): a backlog of sealed records on the kiosk,
uploaded over loopback to a real `kiosk-central serve` process.

The uploader runs in its own process (as `kiosk sync` does) so its peak RSS is its own.
To build a 100,000-record backlog in seconds, a few hundred records are sealed for real
and their sealed blobs reused under fresh record ids (the server does not open them).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

SEALED_SAMPLES = 256


def make_backlog(db_path: Path, sealing, n: int) -> None:
    from kiosk.decision import Decision
    from kiosk.passes import PassClaims
    from kiosk.reasons import Outcome, Reason
    from kiosk.store import DAY, CheckinStore

    store = CheckinStore.open(db_path, sealing=sealing, venue_id="bench")
    claims = PassClaims(kid=b"\0" * 8, issuer="bench", issued_at=0, expires_at=1, pass_id=b"\1" * 16)
    decision = Decision(Outcome.ADMIT, Reason.VALID, 0, claims)
    for _ in range(SEALED_SAMPLES):
        store.record(decision, now=time.time(), clock_synced=True)
    blobs = [r[0] for r in store.db.execute("SELECT sealed FROM checkins")]
    now = time.time()
    rows = ((str(uuid.uuid4()), now - n + i, 1, "normal", now + 28 * DAY, sealing.kid,
             blobs[i % len(blobs)]) for i in range(n - SEALED_SAMPLES))
    with store.db.conn:
        store.db.execute("BEGIN")
        store.db.conn.executemany(
            "INSERT INTO checkins (record_id, captured_at, clock_synced, retention, delete_after, "
            "seal_kid, sealed) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
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


def child(db_path: str, url: str, kiosk_id: str, key_path: str, batch_size: int) -> None:
    """Runs in the uploader's own process: one round, then figures as JSON on stdout."""
    from kiosk.keys import load_ed25519_private
    from kiosk.seal import SealingKey
    from kiosk.store import CheckinStore
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from sync.uploader import Uploader

    dummy = SealingKey.of(X25519PrivateKey.generate().public_key())    # the uploader seals nothing
    store = CheckinStore.open(Path(db_path), sealing=dummy, venue_id="bench")
    uploader = Uploader(store=store, server_url=url, kiosk_id=kiosk_id,
                        device_key=load_ed25519_private(key_path), batch_size=batch_size, timeout_s=60)
    rss_before = peak_rss_kib()
    t0 = time.perf_counter()
    result = uploader.round()
    seconds = time.perf_counter() - t0
    print(json.dumps({"ok": result.ok, "error": result.error, "accepted": result.accepted,
                      "pending": result.pending, "seconds": seconds,
                      "rss_before_kib": rss_before,
                      "rss_peak_kib": peak_rss_kib()}))


def bench_upload(t, work: Path, keys_dir: Path, *, backlog: int = 100_000, batch_size: int = 500) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.keys import SEALING_PUB, load_x25519_public, raw_public, write_private
    from kiosk.seal import SealingKey
    from sync.localserver import LocalServer
    from sync.storage import SqliteStorage

    sealing = SealingKey.of(load_x25519_public(keys_dir / SEALING_PUB))
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
        admin.close()
        with LocalServer(data, keys_dir) as server:
            out = subprocess.run([sys.executable, "-m", "sync.bench", str(db), server.url, kiosk_id,
                                  str(work / "bench-device.key"), str(batch_size)],
                                 capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            t.add(f"upload of a {n:,}-record backlog", "FAILED", out.stderr.strip()[-200:])
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if not r["ok"] or r["pending"]:
            t.add(f"upload of a {n:,}-record backlog", "FAILED", str(r["error"]))
            continue
        t.add(f"upload of a {n:,}-record backlog over loopback ({batch_size}/batch)",
              f"{r['accepted'] / r['seconds']:,.0f} records/s", "goal >= 5,000 records/s")
        t.add(f"  uploader peak RSS, {n:,}-record backlog",
              f"{r['rss_peak_kib'] / 1024:.0f} MiB", f"(after start-up {r['rss_before_kib'] / 1024:.0f} MiB)")

    # The server's storage alone: how fast it ingests batches (no HTTP, no signature).
    storage = SqliteStorage(work / "ingest.db")
    kid = storage.register_kiosk(venue="bench", public_key=raw, now=time.time())
    blob = b"\0" * 120
    batches = [[{"record_id": str(uuid.uuid4()), "seq": b * batch_size + i + 1, "captured_at": 1.0,
                 "clock_synced": True, "retention": "normal", "delete_after": 2e9,
                 "seal_kid": "abcd", "sealed": blob} for i in range(batch_size)] for b in range(40)]
    t0 = time.perf_counter()
    for batch in batches:
        storage.ingest(kid, str(uuid.uuid4()), batch, now=time.time())
    rate = 40 * batch_size / (time.perf_counter() - t0)
    storage.close()
    t.add("server storage ingest (SQLite, synchronous=FULL)", f"{rate:,.0f} records/s")


if __name__ == "__main__":
    db_path, url, kiosk_id, key_path, batch_size = sys.argv[1:6]
    child(db_path, url, kiosk_id, key_path, int(batch_size))
