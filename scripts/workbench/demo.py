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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.app import KioskApp, ScanEvent, Trust, outcome_counts
from kiosk.clock import SystemClock
from kiosk.compose import TrustProvider
from kiosk.core.decision import Policy
from kiosk.core.keys import (
    ISSUER_PUB,
    ROOT_PUB,
    init_authority_keys,
    load_ed25519_public,
    raw_public,
    trusted_issuers,
    write_private,
)
from kiosk.core.passes import PREFIX
from kiosk.core.reasons import Outcome, Reason
from kiosk.core.sealkeys import Sealer
from kiosk.uploader import Uploader
from sync.central.committee.audit import member_id
from sync.central.committee.custody import CustodyError, issue, unlock, wrap_document
from sync.central.keyring import (
    audit_hash_key,
    period_private_keys,
    public_periods,
    rotate,
    server_keys_folder,
)
from sync.central.storage.sqlite_backend import SqliteStorage
from workbench.localserver import LocalServer

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
    expect: str  # the outcome a correct kiosk shows
    pass_id: bytes = b""


def tamper(text: str) -> str:
    """Rewrite the risk level inside a signed pass without re-signing it."""
    import zlib

    import base45

    cose = cbor2.loads(zlib.decompress(base45.b45decode(text[len(PREFIX) :])))
    protected, unprotected, payload, sig = cose.value
    claims = dict(cbor2.loads(payload))
    claims[-65538] = 0
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), cbor2.dumps(claims), sig]))
    return PREFIX + base45.b45encode(zlib.compress(forged, 9)).decode()


def make_samples(keys_dir: Path, *, now: datetime) -> list[Sample]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync.central.issuing import issue_pass

    samples = []
    for level in range(4):
        text, pid = issue_pass(keys_dir, risk=level, issued=now - timedelta(hours=1))
        samples.append(Sample(f"risk {level} pass", text, {0: "admit", 3: "deny"}.get(level, "exposed"), pid))
    text, _ = issue_pass(keys_dir, risk=0, issued=now - timedelta(days=10), expires=now - timedelta(days=3))
    samples.append(Sample("expired pass", text, "invalid"))
    samples.append(
        Sample("tampered pass (level 3 rewritten to 0)", tamper(issue_pass(keys_dir, risk=3)[0]), "invalid")
    )
    samples.append(
        Sample(
            "pass from an unknown issuer",
            issue_pass(keys_dir, risk=0, signing_key=Ed25519PrivateKey.generate())[0],
            "invalid",
        )
    )
    samples.append(Sample("a QR code that is not a pass", "https://example.org/menu", "invalid"))
    return samples


# How each pass is held up: (code width px, rotation deg, perspective tilt, blur sigma).
POSES = [
    (230, 0, 0.0, 0.0),
    (150, 12, 0.1, 1.0),
    (120, -25, 0.2, 0.8),
    (260, 40, 0.0, 1.6),
    (180, 8, 0.25, 0.5),
    (110, -5, 0.05, 0.0),
    (200, 90, 0.0, 1.2),
    (170, -15, 0.15, 1.0),
]


def make_frames(samples: list[Sample], *, seed: int = 7, repeat_first: bool = True):
    """Each pass is held up for three frames (a visitor's gesture) between empty frames.
    The first pass comes back after the second, within the repeat window: it is signalled
    again but not recorded."""
    from workbench.render import camera_frame

    rng = np.random.default_rng(seed)
    frames, script = [], []

    def show(sample: Sample, pose):
        px, angle, tilt, blur = pose
        for k in range(3):  # the visitor brings the pass closer, turning it a little
            frames.append(
                camera_frame(
                    sample.text,
                    rng,
                    code_px=px + 25 * k,
                    angle=angle + 2 * k,
                    tilt=tilt * (1 - 0.3 * k),
                    blur=blur,
                )
            )
            script.append(sample.label)

    def empty(n: int):
        for _ in range(n):
            frames.append(camera_frame(None, rng))
            script.append("")

    empty(3)
    for i, sample in enumerate(samples):
        show(sample, POSES[i % len(POSES)])
        empty(25)  # 2.5 s at 10 fps: past the hold, before the next visitor
        if i == 1 and repeat_first:  # the first visitor again, inside the repeat window
            show(samples[0], POSES[5])
            empty(25)
    return frames, script


def _line(event: ScanEvent, label: str) -> str:
    d = event.decision
    colour = {"admit": "GREEN", "exposed": "GREEN", "deny": "RED  ", "invalid": "AMBER"}[d.outcome.value]
    what = "repeat, not recorded" if event.repeat else ("recorded" if event.recorded else "counted")
    level = "-" if d.risk_level is None else str(d.risk_level)
    return (
        f"  {colour}  {d.outcome.value:7s} {d.reason.value:15s} level {level}  {what:21s}"
        f" {event.latency_s * 1000:5.1f} ms  <- {label}"
    )


def run_demo(*, keep: str | None = None, server: bool = True, out=None) -> int:
    from gpiozero.pins.mock import MockFactory

    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.signal import Signal
    from kiosk.config import SignalSection
    from kiosk.core.keys import trusted_issuers
    from kiosk.core.seal import open_sealed
    from kiosk.store.checkins import CheckinStore

    out = out or sys.stdout
    say = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    work.mkdir(parents=True, exist_ok=True)

    def shown(path: Path) -> str:
        """A path as the demo prints it: in full when kept, else within the temporary folder
        (which is gone when the demo ends, so a full path would point nowhere)."""
        return str(path) if keep else f"<demo folder>/{path.relative_to(work)}"

    try:
        keys_dir = work / "authority"
        if not (keys_dir / ISSUER_PUB).exists():
            init_authority_keys(keys_dir)
        say(
            f"kiosk demo: working in {work} (kept)"
            if keep
            else "kiosk demo: working in a temporary folder, removed at the end (--keep DIR keeps it)"
        )
        say(f"  authority keys made in {shown(keys_dir)} (root, issuer, and the server's two)")
        # The committee: two members; the key that wraps its period keys is split between
        # them (2 of 2), so opening a record needs both.
        alice, bob = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        members = {member_id(k.public_key()): k.public_key() for k in (alice, bob)}
        if wrap_document(keys_dir) is None:
            issue(keys_dir, members, now=time.time())
        rotate(keys_dir, now=time.time(), ahead_periods=14)
        say(
            "  sealing keys for 14 days (one a day per retention class), their private halves sealed "
            "to a key split between two committee members: one alone opens nothing"
        )
        samples = make_samples(keys_dir, now=datetime.now(UTC))
        frames, script = make_frames(samples)
        say(
            f"  {len(samples)} sample passes rendered into {len(frames)} camera frames "
            f"(640x480, some blurred, tilted or small; empty frames between)"
        )

        clock = ReplayClock()
        factory = MockFactory()
        signal = Signal(SignalSection().scaled(0.25), pin_factory=factory)
        store = CheckinStore.open(
            work / "kiosk.db",
            venue_id="demo-venue",
            sealing=Sealer(fallback=None, periods=lambda: public_periods(keys_dir)),
        )
        trust = Trust(issuers=trusted_issuers([keys_dir / ISSUER_PUB]), policy=Policy())
        source = ReplaySource(frames, clock)

        def on_event(event: ScanEvent):
            say(_line(event, script[source.i - 1] or "?"))

        app = KioskApp(
            source=source,
            decoder=make_decoder("zxing"),
            signal=signal,
            store=store,
            trust=lambda: trust,
            clock=clock,
            repeat_window_s=10.0,
            hold_s=1.5,
            on_event=on_event,
        )
        say("scans (signal shown on mock GPIO pins; the kiosk's own loop):")
        totals = app.run()
        counts = outcome_counts(totals)
        stats = store.stats()
        say(
            f"totals: frames {totals.frames}, scans {totals.scans}, admitted {counts['admit']}, "
            f"admitted and told to get tested {counts['exposed']}, refused {counts['deny']}, "
            f"invalid {counts['invalid']}, recorded {totals.recorded}, "
            f"repeats {totals.repeats}, decoder errors {totals.decoder_errors}"
        )
        say(
            f"store: {stats['records']} sealed records in {shown(work / 'kiosk.db')}, "
            f"{stats['invalid_scans']} invalid scans counted (their text not kept)"
        )
        row = store.db.execute(
            "SELECT record_id, sealed, seal_kid FROM checkins ORDER BY seq LIMIT 1"
        ).fetchone()
        try:
            unlock(keys_dir, [alice], active=set(members))
        except CustodyError:
            say("  one member's key alone opens nothing (refused: two members must act together)")
        both = unlock(keys_dir, [alice, bob], active=set(members))
        opened = open_sealed(row[1], period_private_keys(keys_dir, both)[row[2]], record_id=row[0])
        say(
            f"  the kiosk cannot read its records; two members together open record 1: "
            f"decision {opened['decision']}, level {opened['risk_level']}, venue {opened['venue']}"
        )
        expected = [s.expect for s in samples]
        ok = (
            counts
            == {
                "admit": expected.count("admit") + 1,
                "exposed": expected.count("exposed"),
                "deny": expected.count("deny"),
                "invalid": expected.count("invalid"),
            }
            and totals.repeats == 1
            and totals.recorded == len(expected) - expected.count("invalid")
        )
        if server:
            ok = (
                demo_sync(
                    shown=shown,
                    work=work,
                    keys_dir=keys_dir,
                    store=store,
                    app=app,
                    samples=samples,
                    frames_for=lambda s: make_frames([s], repeat_first=False)[0],
                    say=say,
                    clock=clock,
                    members=(alice, bob),
                )
                and ok
            )
        store.close()
        signal.close()
        say("demo " + ("OK" if ok else "FAILED: a scan did not give the expected signal"))
        return 0 if ok else 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def demo_sync(
    *, work: Path, keys_dir: Path, store, app, samples, frames_for, say, clock, members, shown=str
) -> bool:
    central = work / "central"
    say("central server:")
    # The server gets its two online keys and public files only: never the root's, the
    # issuer's or the committee's private keys.
    server_keys = server_keys_folder(keys_dir, work / "server-keys")
    with LocalServer(central, server_keys) as server:
        say(f"  kiosk-central serve on {server.url} (data {shown(central)}, OpenAPI at {server.url}/docs)")
        say(f"  its keys folder {shown(server_keys)} holds no private root, issuer or committee key")
        device_key = Ed25519PrivateKey.generate()
        write_private(work / "device.key", device_key)
        raw = raw_public(device_key.public_key())
        admin = SqliteStorage.in_folder(central)  # what `kiosk-central register-kiosk` does
        kiosk_id = admin.register_kiosk(venue="demo-venue", public_key=raw, now=time.time())
        say(f"  kiosk registered as {kiosk_id} with its own device key")
        # The committee's machine: two members, an approved case, and a manifest the offline
        # root signs (issuer keys, sealing keys, policy, the members, the server's own keys).
        from sync.central.committee.members import approve_case, change_risk, found_committee, open_case
        from sync.central.manifests import publish

        now = time.time()
        alice, bob = members
        found_committee(admin, [("Alice", alice), ("Bob", bob)], now=now)  # each signs in
        open_case(
            admin,
            key=bob,
            case_id="DEMO-1",
            reason="a cluster at the demo venue",
            from_ts=now - 3600,
            to_ts=now + 3600,
            now=now,
        )
        approve_case(admin, key=alice, case_id="DEMO-1", now=now)
        manifest = publish(keys_dir, admin, now=now)
        say(
            "  committee of two, case DEMO-1 approved by the second member; "
            f"manifest {manifest} signed by the root"
        )
        uploader = Uploader(
            store=store,
            server_url=server.url,
            kiosk_id=kiosk_id,
            device_key=device_key,
            root_key=load_ed25519_public(keys_dir / ROOT_PUB),
            bundle_file=work / "bundle.json",
            batch_size=3,
        )
        first = uploader.round()
        say(f"  sync: {first.summary()}")
        stats = store.stats()
        say(f"  synced {stats['synced']}, pending {stats['pending']}")

        visitor = samples[0]  # the risk-0 visitor admitted above
        now = time.time()
        version = change_risk(
            admin,
            key=bob,
            case_id="DEMO-1",
            pass_ids=[visitor.pass_id],
            level=3,
            expires_at=now + 14 * 86_400,
            hash_key=audit_hash_key(keys_dir, now=now),
            second=alice,  # a refusal takes two independent members
            now=now,
        )
        admin.close()
        say(
            "  two members raise the first visitor's pass to level 3, both signing it for case DEMO-1 "
            f"(risk list version {version})"
        )
        second = uploader.round()
        say(f"  sync: {second.summary()}")

        provider = TrustProvider(Trust(issuers=trusted_issuers([keys_dir / ISSUER_PUB])), uploader.trust)
        app.trust = provider
        clock.advance(60.0)  # a later visit, past the repeat window
        app.source = ReplaySource(frames_for(visitor), clock)
        events = []
        app.on_event = events.append
        app.run()
        refused = [
            e for e in events if e.decision.outcome is Outcome.DENY and e.decision.reason is Reason.RISK_LIST
        ]
        if refused:
            say(
                _line(
                    refused[0],
                    f"{visitor.label}: refused on its next scan (bundle version {provider.bundle.version})",
                )
            )
        else:
            say(f"  the raised pass was NOT refused: {[e.decision.outcome.value for e in events]}")
        third = uploader.round()
        say(f"  sync: {third.summary()}")
        stats = store.stats()
        on_server = len(SqliteStorage.in_folder(central).record_ids(kiosk_id))
        say(
            f"  synced {stats['synced']}, pending {stats['pending']}; the server holds "
            f"{on_server} sealed records from this kiosk"
        )
        return (
            bool(refused)
            and first.ok
            and second.ok
            and third.ok
            and stats["pending"] == 0
            and on_server == stats["synced"]
        )


def main(argv: list[str] | None = None) -> int:
    """`kiosk demo` runs this (the device package does not import the authority)."""
    import argparse

    from kiosk.core.console import run_main
    from kiosk.core.logs import setup_logging

    p = argparse.ArgumentParser(
        prog="kiosk demo", description="the whole kiosk on made-up passes: no camera, GPIO or set-up"
    )
    p.add_argument("--keep", metavar="DIR", help="keep the demo's keys, database and frames here")
    p.add_argument("--no-server", action="store_true", help="skip the central-server part")
    args = p.parse_args(argv)
    setup_logging("WARNING")
    return run_main("kiosk demo", lambda a: run_demo(keep=a.keep, server=not a.no_server), args)


if __name__ == "__main__":
    sys.exit(main())
