"""The kiosk's benchmark: prints figures against the goals the issues set.

Run through `scripts/bench` (which does the set-up). Figures, not pass/fail: a noisy machine
moves them, so they live here and not in timed unit tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "qr-photos"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def pct(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, value: str, goal: str = "") -> None:
        self.rows.append((what, value, goal))
        print(f"  {what:66s} {value:>18s}  {goal}", flush=True)


# -- decoding -----------------------------------------------------------------------------------------
def bench_decode_rates(t: Table) -> None:
    from kiosk.decoders import make_decoder
    from kiosk.frames import expand_images, load_grey

    if not DATA.is_dir():
        t.add("decode rate", "skipped", f"no {DATA}")
        return
    folders = sorted(p.name for p in DATA.iterdir() if p.is_dir())
    for name in ("zxing", "pyzbar"):
        decoder = make_decoder(name)
        total_ok = total = 0
        for folder in folders:
            ok = n = wrong = 0
            for img in expand_images([DATA / folder]):
                grey = load_grey(img)
                txt = img.with_suffix(".txt")
                expected = txt.read_bytes().decode("utf-8") if txt.exists() else None
                texts = decoder.decode(grey) if grey is not None else []
                n += 1
                ok += expected is not None and expected in texts
                wrong += any(x != expected for x in texts)
            if folder.startswith("falsepositives"):
                t.add(f"{name:6s} {folder}: images with a decode", f"{wrong} of {n}", "goal 0")
            else:
                total_ok, total = total_ok + ok, total + n
                t.add(f"{name:6s} {folder}: decoded correctly", f"{ok}/{n} ({100 * ok / n:.1f}%)",
                      f"wrong {wrong}")
        t.add(f"{name:6s} qrcode-1..6 overall", f"{total_ok}/{total} ({100 * total_ok / total:.1f}%)",
              "goal >= 92% (default decoder)" if name == "zxing" else "")
        t.add(f"{name:6s} decoder exceptions caught", str(decoder.errors))


def bench_frame_cost(t: Table, passes) -> None:
    import zxingcpp

    from kiosk.app import KioskApp, Trust
    from kiosk.clock import SystemClock
    from kiosk.decoders import make_decoder
    from kiosk.render import camera_frame

    rng = np.random.default_rng(3)
    empty = [camera_frame(None, rng) for _ in range(20)]
    coded = [camera_frame(passes[0], rng, code_px=200, angle=10, blur=0.8) for _ in range(20)]
    fmt = dict(formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain)
    raw_empty = statistics.median(timed(lambda: [zxingcpp.read_barcodes(f, **fmt) for f in empty], 10)) / 20

    class Nothing:
        def show(self, outcome):
            pass

    app = KioskApp(source=None, decoder=make_decoder("zxing"), signal=Nothing(), store=None,
                   trust=lambda: Trust(issuers={}), clock=SystemClock())
    loop_empty = statistics.median(timed(lambda: [app.step(f) for f in empty], 10)) / 20
    decoder = make_decoder("zxing")
    dec_coded = statistics.median(timed(lambda: [decoder.decode(f) for f in coded], 10)) / 20
    raw_coded = statistics.median(timed(lambda: [zxingcpp.read_barcodes(f, **fmt) for f in coded], 10)) / 20
    t.add("640x480 frame, no code: raw zxing call (median)", ms(raw_empty))
    t.add("640x480 frame, no code: kiosk app step (median)", ms(loop_empty),
          f"{loop_empty / raw_empty:.2f}x raw; goal <= 1.5x")
    t.add("640x480 frame with a pass: raw zxing call (median)", ms(raw_coded))
    t.add("640x480 frame with a pass: kiosk decoder (median)", ms(dec_coded))


# -- core and store -------------------------------------------------------------------------------------
def bench_decide(t: Table, passes, trusted) -> None:
    from kiosk.decision import Policy, RiskList, decide

    now = time.time()
    risk = RiskList(levels={f"{i:032x}": 2 for i in range(10_000)})
    samples = timed(lambda: [decide(p, trusted=trusted, risk_list=risk, policy=Policy(), now=now)
                             for p in passes], 50)
    t.add("verify + decide one pass (median)", ms(statistics.median(samples) / len(passes)),
          "10,000-entry risk list")


def bench_commit(t: Table, work: Path, passes, trusted, sealing) -> None:
    from kiosk.decision import Policy, RiskList, decide
    from kiosk.store import CheckinStore

    store = CheckinStore.open(work / "bench-commit.db", sealing=sealing, venue_id="bench")
    now = time.time()
    decisions = [decide(p, trusted=trusted, risk_list=RiskList(), policy=Policy(), now=now)
                 for p in passes]
    lat = []
    for i in range(500):
        d = decisions[i % len(decisions)]
        t0 = time.perf_counter()
        store.record(d, now=now, clock_synced=True)
        lat.append(time.perf_counter() - t0)
    store.close()
    t.add("check-in seal + commit (synchronous=FULL), p50", ms(pct(lat, 50)))
    t.add("check-in seal + commit (synchronous=FULL), p99", ms(pct(lat, 99)), "goal <= 10 ms")


def bench_frame_to_signal(t: Table, work: Path, passes, trusted, sealing) -> None:
    import cv2
    from gpiozero.pins.mock import MockFactory

    from kiosk.app import KioskApp, Trust
    from kiosk.clock import SystemClock
    from kiosk.config import SignalSection
    from kiosk.decoders import make_decoder
    from kiosk.frames import ImageSource
    from kiosk.render import camera_frame
    from kiosk.signal import Signal
    from kiosk.store import CheckinStore

    folder = work / "frames"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i, text in enumerate(passes):
        cv2.imwrite(str(folder / f"{i:04d}-pass.png"), camera_frame(text, rng, code_px=int(rng.integers(150, 260)),
                                                                angle=float(rng.uniform(-30, 30)),
                                                                blur=float(rng.uniform(0, 1.0))))
        cv2.imwrite(str(folder / f"{i:04d}-empty.png"), camera_frame(None, rng))
    store = CheckinStore.open(work / "bench-loop.db", sealing=sealing, venue_id="bench")
    signal = Signal(SignalSection().scaled(0.05), pin_factory=MockFactory())
    events = []
    app = KioskApp(source=ImageSource([folder]), decoder=make_decoder("zxing"), signal=signal,
                   store=store, trust=lambda: Trust(issuers=trusted), clock=SystemClock(),
                   on_event=events.append)
    app.run()
    signal.close()
    store.close()
    lat = [e.latency_s for e in events]
    t.add(f"frame-to-signal in the app loop ({len(lat)} scans), p50",
          ms(pct(lat, 50)))
    t.add("frame-to-signal in the app loop, p99", ms(pct(lat, 99)), "goal <= 50 ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench")
    ap.add_argument("--skip-sync", action="store_true", help="only the kiosk's figures")
    ap.add_argument("--backlog", type=int, default=100_000, help="records in the upload backlog")
    ap.add_argument("--purge-records", type=int, default=1_000_000,
                    help="server table size for the purge figure (0: skip it)")
    ap.add_argument("--trace-records", type=int, default=1_000_000,
                    help="server table size for the trace figure (0: skip it)")
    ap.add_argument("--backend-preload", type=int, default=2_000_000,
                    help="rows preloaded for the SQLite server figures (0: skip the server figures)")
    ap.add_argument("--pg-preload", type=int, default=10_000_000,
                    help="rows preloaded for the PostgreSQL server figures")
    ap.add_argument("--backend-kiosks", type=int, default=200,
                    help="simulated kiosks uploading at once in the server figures")
    ap.add_argument("--backend-batches", type=int, default=5,
                    help="500-record batches each simulated kiosk uploads per round")
    ap.add_argument("--backends", default="sqlite,postgresql",
                    help="which server backends to measure (comma-separated)")
    ap.add_argument("--only-backends", action="store_true",
                    help="only the server backend figures (skip everything before them)")
    args = ap.parse_args(argv)

    from kiosk.keys import ISSUER_PUB, SEALING_PUB, init_authority_keys, load_x25519_public, trusted_issuers
    from kiosk.seal import SealingKey
    from sync.authority import issue_pass

    print(f"kiosk benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus", flush=True)
    t = Table()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        work = Path(tmp)
        keys = work / "authority"
        init_authority_keys(keys)
        trusted = trusted_issuers([keys / ISSUER_PUB])
        sealing = SealingKey.of(load_x25519_public(keys / SEALING_PUB))
        passes = [issue_pass(keys, risk=i % 3)[0] for i in range(200)]
        if args.only_backends:
            from sync.bench import bench_server_backends
            bench_server_backends(
                t, work, keys, kiosks=args.backend_kiosks, batches=args.backend_batches,
                preload={"sqlite": args.backend_preload, "postgresql": args.pg_preload},
                backends=args.backends.split(","))
            return 0
        print("decoding", flush=True)
        bench_decode_rates(t)
        bench_frame_cost(t, passes)
        print("core and store", flush=True)
        bench_decide(t, passes, trusted)
        bench_commit(t, work, passes, trusted, sealing)
        bench_frame_to_signal(t, work, passes, trusted, sealing)
        t.add("peak RSS of this process (kiosk figures)",
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if not args.skip_sync:
            print("sync", flush=True)
            from sync.bench import bench_key_coverage, bench_purge, bench_upload
            bench_upload(t, work, keys, backlog=args.backlog)
            print("retention", flush=True)
            bench_key_coverage(t, work)
            if args.purge_records:
                bench_purge(t, work, records=args.purge_records)
            if args.trace_records:
                print("committee", flush=True)
                from sync.bench import bench_trace
                bench_trace(t, work, records=args.trace_records)
            if args.backend_preload:
                print("central server: SQLite and PostgreSQL", flush=True)
                from sync.bench import bench_server_backends
                bench_server_backends(
                    t, work, keys, kiosks=args.backend_kiosks, batches=args.backend_batches,
                    preload={"sqlite": args.backend_preload, "postgresql": args.pg_preload},
                    backends=args.backends.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
