"""`kiosk demo`: the whole kiosk on made-up passes, on any machine.

Makes authority keys in a temporary folder, issues passes (each risk level, an expired one,
a tampered one, one from an unknown issuer, a QR code that is not a pass), renders them into
camera-like frames (blurred, tilted, small) between empty frames, and runs the real app loop
on them with gpiozero's mock pins and a real SQLite file. With the central-server part, it
then starts a local central server on loopback, registers the kiosk, syncs, raises one
pass's risk on the server, fetches the bundle and shows that pass refused.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cbor2
import numpy as np

from kiosk.app import KioskApp, ScanEvent, outcome_counts
from kiosk.clock import SystemClock
from kiosk.decision import Policy
from kiosk.keys import (ISSUER_PUB, SEALING_KEY, SEALING_PUB, init_authority_keys,
                        load_x25519_private)
from kiosk.passes import PREFIX

FPS = 10.0


class ReplayClock(SystemClock):
    """Replays a recorded sequence at its own frame rate without sleeping: monotonic time
    advances by one frame period per frame (the source calls :meth:`advance`); wall time
    follows the same offset. Latencies are still measured in real time."""

    def __init__(self):
        super().__init__()
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def synced(self) -> bool:
        return True


class ReplaySource:
    def __init__(self, frames, clock: ReplayClock, fps: float = FPS):
        self.frames, self.clock, self.period, self.i = list(frames), clock, 1.0 / fps, 0

    def read(self):
        if self.i >= len(self.frames):
            return None
        self.clock.advance(self.period)
        self.i += 1
        return self.frames[self.i - 1]

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Sample:
    label: str
    text: str
    expect: str           # the outcome a correct kiosk shows
    pass_id: bytes = b""


def tamper(text: str) -> str:
    """Rewrite the risk level inside a signed pass without re-signing it."""
    import base45
    import zlib
    cose = cbor2.loads(zlib.decompress(base45.b45decode(text[len(PREFIX):])))
    protected, unprotected, payload, sig = cose.value
    claims = dict(cbor2.loads(payload))
    claims[-65538] = 0
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), cbor2.dumps(claims), sig]))
    return PREFIX + base45.b45encode(zlib.compress(forged, 9)).decode()


def make_samples(keys_dir: Path, *, now: datetime) -> list[Sample]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sync.authority import issue_pass

    samples = []
    for level in range(4):
        text, pid = issue_pass(keys_dir, risk=level, issued=now - timedelta(hours=1))
        samples.append(Sample(f"risk {level} pass", text, "deny" if level == 3 else "admit", pid))
    text, _ = issue_pass(keys_dir, risk=0, issued=now - timedelta(days=10),
                         expires=now - timedelta(days=3))
    samples.append(Sample("expired pass", text, "invalid"))
    samples.append(Sample("tampered pass (level 3 rewritten to 0)",
                          tamper(issue_pass(keys_dir, risk=3)[0]), "invalid"))
    samples.append(Sample("pass from an unknown issuer",
                          issue_pass(keys_dir, risk=0, signing_key=Ed25519PrivateKey.generate())[0],
                          "invalid"))
    samples.append(Sample("a QR code that is not a pass", "https://example.org/menu", "invalid"))
    return samples


# How each pass is held up: (code width px, rotation deg, perspective tilt, blur sigma).
POSES = [(230, 0, 0.0, 0.0), (150, 12, 0.1, 1.0), (120, -25, 0.2, 0.8), (260, 40, 0.0, 1.6),
         (180, 8, 0.25, 0.5), (110, -5, 0.05, 0.0), (200, 90, 0.0, 1.2), (170, -15, 0.15, 1.0)]


def make_frames(samples: list[Sample], *, seed: int = 7, repeat_first: bool = True):
    """Each pass is held up for three frames (a visitor's gesture) between empty frames.
    The first pass comes back after the second, within the repeat window: it is signalled
    again but not recorded."""
    from kiosk.render import camera_frame

    rng = np.random.default_rng(seed)
    frames, script = [], []

    def show(sample: Sample, pose):
        px, angle, tilt, blur = pose
        for k in range(3):              # the visitor brings the pass closer, turning it a little
            frames.append(camera_frame(sample.text, rng, code_px=px + 25 * k, angle=angle + 2 * k,
                                       tilt=tilt * (1 - 0.3 * k), blur=blur))
            script.append(sample.label)

    def empty(n: int):
        for _ in range(n):
            frames.append(camera_frame(None, rng))
            script.append("")

    empty(3)
    for i, sample in enumerate(samples):
        show(sample, POSES[i % len(POSES)])
        empty(25)                       # 2.5 s at 10 fps: past the hold, before the next visitor
        if i == 1 and repeat_first:     # the first visitor again, inside the repeat window
            show(samples[0], POSES[5])
            empty(25)
    return frames, script


def _line(event: ScanEvent, label: str) -> str:
    d = event.decision
    colour = {"admit": "GREEN", "deny": "RED  ", "invalid": "AMBER"}[d.outcome.value]
    what = "repeat, not recorded" if event.repeat else ("recorded" if event.recorded else "counted")
    level = "-" if d.risk_level is None else str(d.risk_level)
    return (f"  {colour}  {d.outcome.value:7s} {d.reason.value:15s} level {level}  {what:21s}"
            f" {event.latency_s * 1000:5.1f} ms  <- {label}")


def run_demo(*, keep: str | None = None, server: bool = True, out=None) -> int:
    from gpiozero.pins.mock import MockFactory

    from kiosk.app import Trust
    from kiosk.config import SignalSection
    from kiosk.decoders import make_decoder
    from kiosk.keys import load_x25519_public, trusted_issuers
    from kiosk.seal import SealingKey, open_sealed
    from kiosk.signal import Signal
    from kiosk.store import CheckinStore

    out = out or sys.stdout
    say = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        keys_dir = work / "authority"
        if not (keys_dir / ISSUER_PUB).exists():
            init_authority_keys(keys_dir)
        say(f"kiosk demo: working in {work}")
        say(f"  authority keys made in {keys_dir} (issuer, sealing, bundle)")
        samples = make_samples(keys_dir, now=datetime.now(timezone.utc))
        frames, script = make_frames(samples)
        say(f"  {len(samples)} sample passes rendered into {len(frames)} camera frames "
            f"(640x480, some blurred, tilted or small; empty frames between)")

        clock = ReplayClock()
        factory = MockFactory()
        signal = Signal(SignalSection().scaled(0.25), pin_factory=factory)
        store = CheckinStore.open(work / "kiosk.db", venue_id="demo-venue",
                                  sealing=SealingKey.of(load_x25519_public(keys_dir / SEALING_PUB)))
        trust = Trust(issuers=trusted_issuers([keys_dir / ISSUER_PUB]), policy=Policy())
        source = ReplaySource(frames, clock)

        def on_event(event: ScanEvent):
            say(_line(event, script[source.i - 1] or "?"))

        app = KioskApp(source=source, decoder=make_decoder("zxing"), signal=signal, store=store,
                       trust=lambda: trust, clock=clock, repeat_window_s=10.0, hold_s=1.5,
                       on_event=on_event)
        say("scans (signal shown on mock GPIO pins; the kiosk's own loop):")
        totals = app.run()
        counts = outcome_counts(totals)
        stats = store.stats()
        say(f"totals: frames {totals.frames}, scans {totals.scans}, admitted {counts['admit']}, "
            f"refused {counts['deny']}, invalid {counts['invalid']}, recorded {totals.recorded}, "
            f"repeats {totals.repeats}, decoder errors {totals.decoder_errors}")
        say(f"store: {stats['records']} sealed records in {work / 'kiosk.db'}, "
            f"{stats['invalid_scans']} invalid scans counted (their text not kept)")
        committee = load_x25519_private(keys_dir / SEALING_KEY)
        row = store.db.execute("SELECT record_id, sealed FROM checkins ORDER BY seq LIMIT 1").fetchone()
        opened = open_sealed(row[1], committee, record_id=row[0])
        say(f"  the kiosk cannot read its records; the committee's key opens record 1: "
            f"decision {opened['decision']}, level {opened['risk_level']}, venue {opened['venue']}")
        expected = [s.expect for s in samples]
        ok = (counts == {"admit": expected.count("admit") + 1, "deny": expected.count("deny"),
                         "invalid": expected.count("invalid")} and totals.repeats == 1
              and totals.recorded == expected.count("admit") + expected.count("deny"))
        if server:
            from sync.demo import demo_sync
            ok = demo_sync(work=work, keys_dir=keys_dir, store=store, app=app, samples=samples,
                           frames_for=lambda s: make_frames([s], repeat_first=False)[0],
                           say=say, clock=clock) and ok
        store.close()
        signal.close()
        say("demo " + ("OK" if ok else "FAILED: a scan did not give the expected signal"))
        return 0 if ok else 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
