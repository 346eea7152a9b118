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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
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
    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import expand_images, load_grey

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
                t.add(
                    f"{name:6s} {folder}: decoded correctly",
                    f"{ok}/{n} ({100 * ok / n:.1f}%)",
                    f"wrong {wrong}",
                )
        t.add(
            f"{name:6s} qrcode-1..6 overall",
            f"{total_ok}/{total} ({100 * total_ok / total:.1f}%)",
            "goal >= 92% (default decoder)" if name == "zxing" else "",
        )
        t.add(f"{name:6s} decoder exceptions caught", str(decoder.errors))


def _raw_zxing(frame):
    import zxingcpp

    return [b.text for b in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)]


def _pyzbar(frame):
    from pyzbar import pyzbar

    return [
        s.data.decode("utf-8", "replace") for s in pyzbar.decode(frame, symbols=[pyzbar.ZBarSymbol.QRCODE])
    ]


def bench_conditions(t: Table, passes, *, frames: int = 60) -> None:
    """Read rate per frame under each hard condition (kiosk/render.py), kiosk decoder vs a
    raw zxing-cpp call vs pyzbar, on the same frames; a wrong text counts separately."""
    from kiosk.adapters.decoders import make_decoder
    from workbench.render import CONDITIONS, condition_frame

    for condition in CONDITIONS:
        rng = np.random.default_rng(100 + CONDITIONS.index(condition))
        decoder = make_decoder("zxing")
        raw = zbar = kiosk = wrong = 0
        spent = 0.0
        for i in range(frames):
            text = passes[i % len(passes)]
            frame = condition_frame(text, condition, rng)
            t0 = time.perf_counter()
            got = decoder.decode(frame)
            spent += time.perf_counter() - t0
            kiosk += text in got
            wrong += any(g != text for g in got)
            raw += text in _raw_zxing(frame)
            zbar += text in _pyzbar(frame)
        t.add(
            f"{condition:12s} read per frame: kiosk / raw zxing / pyzbar",
            f"{kiosk}/{raw}/{zbar} of {frames}",
            f"kiosk {spent / frames * 1000:.1f} ms a frame; wrong texts {wrong}",
        )


def bench_framed_photos(t: Table) -> None:
    """The shared photos placed in 640x480 frames (fitted inside, or filling it)."""
    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import expand_images, load_grey
    from workbench.render import framed

    if not DATA.is_dir():
        t.add("photos in 640x480 frames", "skipped", f"no {DATA}")
        return
    for how in ("fit", "fill"):
        decoder = make_decoder("zxing")
        n = raw = zbar = kiosk = missed = 0
        for i in range(1, 7):
            for img in expand_images([DATA / f"qrcode-{i}"]):
                txt = img.with_suffix(".txt")
                grey = load_grey(img)
                if not txt.exists() or grey is None:
                    continue
                expected = txt.read_bytes().decode("utf-8")
                frame = framed(grey, how)
                n += 1
                a, b = expected in _raw_zxing(frame), expected in _pyzbar(frame)
                c = expected in decoder.decode(frame)
                raw, zbar, kiosk = raw + a, zbar + b, kiosk + c
                missed += (a or b) and not c
        t.add(
            f"photos in 640x480 frames ({how}): kiosk / raw zxing / pyzbar",
            f"{kiosk}/{raw}/{zbar} of {n}",
            f"read by raw zxing or pyzbar but not the kiosk: {missed}",
        )


def bench_time_to_signal(t: Table, passes, trusted, *, sequences: int = 20, fps: float = 10) -> None:
    """A pass entering view: frames at ``fps``; three empty, then the pass sliding in from the
    side with motion blur that fades as the hand stops (condition 'plain' otherwise, and a
    dim entrance as a second case). Time from the first frame showing any of it to the
    signal = frames until the one that decided x frame period + that frame's processing."""
    import cv2

    from kiosk.adapters.decoders import make_decoder
    from kiosk.app import KioskApp, Trust
    from kiosk.clock import SystemClock
    from workbench.render import camera_frame, motion_kernel

    class Nothing:
        def show(self, outcome, *, level=0):
            pass

    class NoStore:
        def record(self, decision, **kw):
            pass

        def probe(self, **kw):
            pass

        def count_invalid(self, *a, **kw):
            pass

    for case in ("daylight", "dim (7%)"):
        times = []
        for s in range(sequences):
            rng = np.random.default_rng(500 + s)
            text = passes[s % len(passes)]
            frames = [camera_frame(None, rng) for _ in range(3)]
            for _k, (shift, blur) in enumerate(
                [(0.45, 18), (0.3, 14), (0.15, 10), (0.05, 6), (0.0, 3), (0.0, 0), (0.0, 0), (0.0, 0)]
            ):
                f = camera_frame(text, rng, code_px=200, angle=5.0, noise=0.0).astype(np.float32)
                f = np.roll(f, int(shift * f.shape[1]), axis=1)
                if blur:
                    f = cv2.filter2D(f, -1, motion_kernel(blur, 0.0))
                if case.startswith("dim"):
                    f = rng.poisson(np.maximum(f * 0.07, 0) * 2.0) / 2.0 + rng.normal(0, 1.2, f.shape)
                else:
                    f = f + rng.normal(0, 3.0, f.shape)
                frames.append(np.clip(f, 0, 255).astype(np.uint8))
            app = KioskApp(
                source=None,
                decoder=make_decoder("zxing"),
                signal=Nothing(),
                store=NoStore(),
                trust=lambda: Trust(issuers=trusted),
                clock=SystemClock(),
                hold_s=0.0,
                repeat_window_s=0.0,
            )
            for i, f in enumerate(frames):
                t0 = time.perf_counter()
                events = app.step(f)
                if events:
                    times.append((i - 3) / fps + (time.perf_counter() - t0))
                    break
        got = len(times)
        t.add(
            f"pass entering view to signal, {case}, {fps:.0f} fps: median / worst",
            f"{statistics.median(times) * 1000:.0f} / {max(times) * 1000:.0f} ms" if times else "never",
            f"{got}/{sequences} sequences signalled within {len(frames) - 3} frames",
        )


def bench_footprint(t: Table, work: Path, keys: Path, passes) -> None:
    """Peak RSS (VmHWM) of real `kiosk run` processes per source, and of `kiosk sync`. The
    Pi camera is the stand-in in tests/stubs (no camera here); the serial scanner a pty."""
    import signal as signals
    import subprocess

    from workbench.localserver import free_port
    from workbench.render import camera_frame
    from workbench.world import kiosk_config_text

    rng = np.random.default_rng(9)
    frames = [camera_frame(None, rng) for _ in range(30)] + [camera_frame(p, rng) for p in passes[:5]]
    np.save(work / "fp-frames.npy", np.array(frames))
    img_dir = work / "fp-images"
    img_dir.mkdir(exist_ok=True)
    import cv2

    for i, f in enumerate(frames[25:]):
        cv2.imwrite(str(img_dir / f"{i}.png"), f)
    kiosk = str(ROOT / ".venv" / "bin" / "kiosk")

    def peak(argv, env=None, run_s=6.0, feed=None) -> tuple[int, str]:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < run_s and proc.poll() is None:
            if feed:
                feed()
            time.sleep(0.25)
        hwm = 0
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    hwm = int(line.split()[1])
        except OSError:
            pass
        proc.send_signal(signals.SIGTERM)
        _, err = proc.communicate(timeout=20)
        return hwm, err

    sources = {
        "picamera2 (stand-in)": (
            ['source = "picamera2"'],
            {
                "PYTHONPATH": str(ROOT / "tests" / "stubs"),
                "KIOSK_FAKE_CAMERA_FRAMES": str(work / "fp-frames.npy"),
            },
        ),
        "images (OpenCV)": (['source = "images"', f'images = ["{img_dir}"]', "loop = true"], {}),
    }
    master, slave = os.openpty()
    sources["serial scanner (pty)"] = (['source = "serial"', f'scanner_device = "{os.ttyname(slave)}"'], {})
    for label, (camera, env) in sources.items():
        cfg = work / f"fp-{len(label)}.toml"
        cfg.write_text(kiosk_config_text(keys, work / f"fp-{len(label)}.db", camera=camera))
        feed = (lambda: os.write(master, passes[0].encode() + b"\r\n")) if "serial" in label else None
        hwm, err = peak([kiosk, "run", "--config", str(cfg)], env, feed=feed)
        goal = "goal <= 80 MB, no OpenCV" if "picamera2" in label else ""
        t.add(f"kiosk run peak RSS, {label}", f"{hwm / 1024:.0f} MiB", goal)
    os.close(master)
    os.close(slave)
    cfg = work / "fp-sync.toml"
    cfg.write_text(
        kiosk_config_text(
            keys,
            work / "fp-sync.db",
            sync=[f'server_url = "http://127.0.0.1:{free_port()}"', 'kiosk_id = "k-bench"'],
        )
    )
    subprocess.run([kiosk, "keys", "init", "--config", str(cfg)], capture_output=True)
    # VmHWM of the process itself, read as it exits: ru_maxrss would count the copy of
    # this (large) process that fork made before exec.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print([l for l in open('/proc/self/status') "
        "if l.startswith('VmHWM')][0].split()[1], file=sys.stderr))\n"
        "from kiosk.cli import main\n"
        f"sys.exit(main(['sync', '--config', {str(cfg)!r}]))\n"
    )
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    hwm = int(r.stderr.strip().splitlines()[-1])
    t.add("kiosk sync peak RSS (one round, server down)", f"{hwm / 1024:.0f} MiB", "goal <= 50 MB")


def bench_frame_cost(t: Table, passes) -> None:
    import zxingcpp

    from kiosk.adapters.decoders import make_decoder
    from kiosk.app import KioskApp, Trust
    from kiosk.clock import SystemClock
    from workbench.render import camera_frame

    rng = np.random.default_rng(3)
    empty = [camera_frame(None, rng) for _ in range(20)]
    coded = [camera_frame(passes[0], rng, code_px=200, angle=10, blur=0.8) for _ in range(20)]
    fmt = dict(formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain)
    raw_empty = statistics.median(timed(lambda: [zxingcpp.read_barcodes(f, **fmt) for f in empty], 10)) / 20

    class Nothing:
        def show(self, outcome, *, level=0):
            pass

    app = KioskApp(
        source=None,
        decoder=make_decoder("zxing"),
        signal=Nothing(),
        store=None,
        trust=lambda: Trust(issuers={}),
        clock=SystemClock(),
    )
    loop_empty = statistics.median(timed(lambda: [app.step(f) for f in empty], 10)) / 20
    decoder = make_decoder("zxing")
    dec_coded = statistics.median(timed(lambda: [decoder.decode(f) for f in coded], 10)) / 20
    raw_coded = statistics.median(timed(lambda: [zxingcpp.read_barcodes(f, **fmt) for f in coded], 10)) / 20
    t.add("640x480 frame, no code: raw zxing call (median)", ms(raw_empty))
    t.add(
        "640x480 frame, no code: kiosk app step (median)",
        ms(loop_empty),
        f"{loop_empty / raw_empty:.2f}x raw; goal <= 1.5x",
    )
    from workbench.render import condition_frame

    dim = [condition_frame(None, "dim", rng) for _ in range(20)]
    dim_decoder = make_decoder("zxing")
    dim_cost = statistics.median(timed(lambda: [dim_decoder.decode(f) for f in dim], 10)) / 20
    raw_dim = statistics.median(timed(lambda: [zxingcpp.read_barcodes(f, **fmt) for f in dim], 10)) / 20
    t.add(
        "dim 640x480 frame (5-10%), no code: raw zxing / kiosk decoder",
        f"{ms(raw_dim)} / {ms(dim_cost)}",
        f"{dim_cost / raw_empty:.2f}x a raw call on a lit empty frame (the dim second look)",
    )
    t.add("640x480 frame with a pass: raw zxing call (median)", ms(raw_coded))
    t.add("640x480 frame with a pass: kiosk decoder (median)", ms(dec_coded))


# -- core and store -------------------------------------------------------------------------------------
def bench_decide(t: Table, passes, trusted) -> None:
    from kiosk.core.decision import Policy, RiskList, decide

    now = time.time()
    risk = RiskList(levels={f"{i:032x}": 2 for i in range(10_000)})
    samples = timed(
        lambda: [decide(p, trusted=trusted, risk_list=risk, policy=Policy(), now=now) for p in passes], 50
    )
    t.add(
        "verify + decide one pass (median)",
        ms(statistics.median(samples) / len(passes)),
        "10,000-entry risk list",
    )


def bench_commit(t: Table, work: Path, passes, trusted, sealing) -> None:
    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.store.checkins import CheckinStore

    store = CheckinStore.open(work / "bench-commit.db", sealing=sealing, venue_id="bench")
    now = time.time()
    decisions = [decide(p, trusted=trusted, risk_list=RiskList(), policy=Policy(), now=now) for p in passes]
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

    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import ImageSource
    from kiosk.adapters.signal import Signal
    from kiosk.app import KioskApp, Trust
    from kiosk.clock import SystemClock
    from kiosk.config import SignalSection
    from kiosk.store.checkins import CheckinStore
    from workbench.render import camera_frame

    folder = work / "frames"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i, text in enumerate(passes):
        cv2.imwrite(
            str(folder / f"{i:04d}-pass.png"),
            camera_frame(
                text,
                rng,
                code_px=int(rng.integers(150, 260)),
                angle=float(rng.uniform(-30, 30)),
                blur=float(rng.uniform(0, 1.0)),
            ),
        )
        cv2.imwrite(str(folder / f"{i:04d}-empty.png"), camera_frame(None, rng))
    store = CheckinStore.open(work / "bench-loop.db", sealing=sealing, venue_id="bench")
    signal = Signal(SignalSection().scaled(0.05), pin_factory=MockFactory())
    events = []
    app = KioskApp(
        source=ImageSource([folder]),
        decoder=make_decoder("zxing"),
        signal=signal,
        store=store,
        trust=lambda: Trust(issuers=trusted),
        clock=SystemClock(),
        on_event=events.append,
    )
    app.run()
    signal.close()
    store.close()
    lat = [e.latency_s for e in events]
    t.add(f"frame-to-signal in the app loop ({len(lat)} scans), p50", ms(pct(lat, 50)))
    t.add("frame-to-signal in the app loop, p99", ms(pct(lat, 99)), "goal <= 50 ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench")
    ap.add_argument("--skip-sync", action="store_true", help="only the kiosk's figures")
    ap.add_argument("--backlog", type=int, default=100_000, help="records in the upload backlog")
    ap.add_argument(
        "--purge-records",
        type=int,
        default=1_000_000,
        help="server table size for the purge figure (0: skip it)",
    )
    ap.add_argument(
        "--trace-records",
        type=int,
        default=1_000_000,
        help="server table size for the trace figure (0: skip it)",
    )
    ap.add_argument(
        "--backend-preload",
        type=int,
        default=2_000_000,
        help="rows preloaded for the SQLite server figures (0: skip the server figures)",
    )
    ap.add_argument(
        "--pg-preload", type=int, default=10_000_000, help="rows preloaded for the PostgreSQL server figures"
    )
    ap.add_argument(
        "--backend-kiosks",
        type=int,
        default=200,
        help="simulated kiosks uploading at once in the server figures",
    )
    ap.add_argument(
        "--backend-batches",
        type=int,
        default=5,
        help="500-record batches each simulated kiosk uploads per round",
    )
    ap.add_argument(
        "--backends", default="sqlite,postgresql", help="which server backends to measure (comma-separated)"
    )
    ap.add_argument(
        "--front-kiosks",
        type=int,
        default=200,
        help="kiosks uploading at once through nginx in the front figures (0: skip them)",
    )
    ap.add_argument(
        "--only-front",
        action="store_true",
        help="only the front figures: nginx and two servers on PostgreSQL against the raw limits",
    )
    ap.add_argument("--only-passes", action="store_true", help="only the bulk pass issuing figures")
    ap.add_argument(
        "--only-releases",
        action="store_true",
        help="only the update figures: release sizes, the install, the door's gap at a switch",
    )
    ap.add_argument(
        "--only-fleet", action="store_true", help="only status and report at 200 and 10,000 kiosks"
    )
    ap.add_argument("--passes", type=int, default=100_000, help="passes in the bulk issuing figures")
    ap.add_argument(
        "--only-backends",
        action="store_true",
        help="only the server backend figures, each beside its raw limit (ingest: INSERT and COPY; "
        "polls: idle; trace: the index floor), at each of --backend-sizes",
    )
    ap.add_argument(
        "--backend-sizes",
        default="1000000,5000000",
        help="table sizes (rows) the backend figures are taken at, comma-separated",
    )
    ap.add_argument("--backend-rounds", type=int, default=3, help="interleaved ingest rounds at each size")
    ap.add_argument(
        "--national-venues", type=int, default=155_000, help="venues of the national trace figure (0: skip)"
    )
    ap.add_argument(
        "--national-rows", type=int, default=10_000_000, help="rows of the national trace figure's table"
    )
    args = ap.parse_args(argv)

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.keys import ISSUER_PUB, init_authority_keys, trusted_issuers
    from kiosk.core.seal import SealingKey
    from sync.central.issuing import issue_pass

    print(
        f"kiosk benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus",
        flush=True,
    )
    t = Table()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        work = Path(tmp)
        keys = work / "authority"
        init_authority_keys(keys)
        trusted = trusted_issuers([keys / ISSUER_PUB])
        sealing = SealingKey.of(X25519PrivateKey.generate().public_key())  # a key handed to the store
        passes = [issue_pass(keys, risk=i % 3)[0] for i in range(200)]

        def server_backends() -> None:
            from workbench.bench_central import bench_server_backends

            bench_server_backends(
                t,
                work,
                keys,
                kiosks=args.backend_kiosks,
                batches=args.backend_batches,
                preload={"sqlite": args.backend_preload, "postgresql": args.pg_preload},
                backends=args.backends.split(","),
            )

        def front() -> None:
            from workbench.bench_front import bench_front

            print("central server as an internet service: nginx, two servers, PostgreSQL", flush=True)
            bench_front(t, work, keys, kiosks=args.front_kiosks)

        def bulk_passes() -> None:
            from workbench.bench_passes import bench_passes

            print(f"passes in bulk: {args.passes:,} passes", flush=True)
            bench_passes(t, work, keys, count=args.passes)

        def fleet() -> None:
            from workbench.bench_fleet import bench_fleet

            print("the fleet at a glance: status and report", flush=True)
            bench_fleet(t, work)

        def releases() -> None:
            from workbench.bench_releases import bench_releases

            print("the fleet's updates: release sizes and the switch", flush=True)
            bench_releases(t, work, keys)

        if args.only_passes:
            bulk_passes()
            return 0
        if args.only_releases:
            releases()
            return 0
        if args.only_fleet:
            fleet()
            return 0
        if args.only_front:
            front()
            return 0
        if args.only_backends:
            from workbench.bench_backends import bench_backends, sqlite_side_by_side

            print("central server backends against their raw limits", flush=True)
            wanted = args.backends.split(",")
            if "sqlite" in wanted:
                sqlite_side_by_side(t, work, keys, kiosks=args.backend_kiosks, rounds=args.backend_rounds)
            if "postgresql" in wanted:
                bench_backends(
                    t,
                    work,
                    keys,
                    sizes=tuple(int(x) for x in args.backend_sizes.split(",")),
                    kiosks=args.backend_kiosks,
                    rounds=args.backend_rounds,
                    national_venues=args.national_venues,
                    national_rows=args.national_rows,
                )
            return 0
        print("decoding", flush=True)
        bench_decode_rates(t)
        bench_framed_photos(t)
        bench_conditions(t, passes)
        bench_frame_cost(t, passes)
        bench_time_to_signal(t, passes, trusted)
        bench_footprint(t, work, keys, passes)
        print("core and store", flush=True)
        bench_decide(t, passes, trusted)
        bench_commit(t, work, passes, trusted, sealing)
        bench_frame_to_signal(t, work, passes, trusted, sealing)
        t.add(
            "peak RSS of this process (kiosk figures)",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
        )
        if not args.skip_sync:
            print("sync", flush=True)
            from workbench.bench_central import bench_key_coverage, bench_purge, bench_upload

            bench_upload(t, work, keys, backlog=args.backlog)
            print("retention", flush=True)
            bench_key_coverage(t, work)
            if args.purge_records:
                bench_purge(t, work, records=args.purge_records)
            if args.trace_records:
                print("committee", flush=True)
                from workbench.bench_central import bench_trace

                bench_trace(t, work, records=args.trace_records)
            if args.backend_preload:
                print("central server: SQLite and PostgreSQL", flush=True)
                server_backends()
            if args.front_kiosks:
                front()
        if args.passes:
            bulk_passes()
        fleet()
        releases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
