"""The fault suite: every fault a kiosk meets, injected for real and counted.

Each scenario returns a :class:`Tally`; tests/test_faultsuite.py runs them short and asserts
that nothing was lost, duplicated, forged, crashed, silent or green on failure;
``scripts/faults`` runs them long and prints one table. Real parts throughout: real
processes killed with SIGKILL, a real full filesystem (tmpfs) where the machine allows a
mount (else SQLite's max_page_count), a real write lock held by another process, real
damaged files, the real server behind a real fault proxy, the real decision core.

The scan loop here is the real :class:`kiosk.app.KioskApp` with the real store and the
real signal on gpiozero's MockFactory pins; only the camera and decoder are replaced by a
list of texts (the faults under test are in the store, the signal and the process, not in
the optics, which tests/test_decoders.py covers with real photos).
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ROWS = [
    ("faults_injected", "faults injected"),
    ("checkins_made", "check-ins made"),
    ("records_lost", "records lost"),
    ("duplicates", "duplicates"),
    ("forged_admits", "forged admits"),
    ("crashes", "crashes"),
    ("silent_failures", "silent failures"),
    ("green_on_failure", "green on failure"),
    ("stolen_leaks", "pass ids readable on a stolen kiosk"),
]
BAD = [r for r, _ in ROWS if r not in ("faults_injected", "checkins_made")]


@dataclass
class Tally:
    faults_injected: int = 0
    checkins_made: int = 0
    records_lost: int = 0
    duplicates: int = 0
    forged_admits: int = 0
    crashes: int = 0
    silent_failures: int = 0
    green_on_failure: int = 0
    stolen_leaks: int = 0

    def __iadd__(self, other: Tally) -> Tally:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def bad(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in BAD if getattr(self, k)}


# What the signal's echo says for a decision a visitor acts on (kiosk.adapters.signal.ECHO):
# enter, enter and get tested, refused. AMBER is no decision.
DECISIONS = ("GREEN", "GREEN-TESTED", "RED")


# -- shared parts --------------------------------------------------------------------------------
class Authority:
    """A throwaway authority: issuer and committee keys, and passes with known ids."""

    def __init__(self, folder: Path):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from kiosk.core.keys import (
            ISSUER_KEY,
            init_authority_keys,
            load_ed25519_private,
            trusted_issuers,
            write_private,
        )
        from kiosk.core.sealkeys import Sealer
        from sync.central.committee.audit import member_id
        from sync.central.committee.custody import issue, unlock, wrap_document
        from sync.central.keyring import period_private_keys, public_periods, rotate

        self.dir = Path(folder)
        if not (self.dir / ISSUER_KEY).exists():
            init_authority_keys(self.dir)
        self.issuer = load_ed25519_private(self.dir / ISSUER_KEY)
        self.trusted = trusted_issuers([self.dir / "issuer.pub"])
        # The committee: two members the wrap key is split between, and a week of periods
        # (sealing-periods.json, which the kiosks here are installed with).
        # A rig, not an authority: its two members' keys are kept beside it (in its own
        # "members" folder) so that the processes the suite starts find the same committee.
        (self.dir / "members").mkdir(exist_ok=True)
        paths = [self.dir / "members" / f"{n}.key" for n in "ab"]
        if not all(p.exists() for p in paths):
            for p in paths:
                write_private(p, Ed25519PrivateKey.generate())
        members = [load_ed25519_private(p) for p in paths]
        ids = {member_id(k.public_key()): k.public_key() for k in members}
        if wrap_document(self.dir) is None:
            issue(self.dir, ids, now=time.time())
            rotate(self.dir, now=time.time(), ahead_periods=7)
        periods = public_periods(self.dir)
        self.sealing = Sealer(fallback=None, periods=lambda: periods)
        self.committee = period_private_keys(self.dir, unlock(self.dir, members, active=set(ids)))
        self.issued: set[int] = set()

    def pass_text(self, n: int, risk: int | None = None) -> str:
        from kiosk.core.passes import encode_pass

        self.issued.add(n)
        now = int(time.time())
        return encode_pass(
            signing_key=self.issuer,
            issuer="fault-suite",
            issued_at=now - 60,
            expires_at=now + 86_400,
            pass_id=pass_id(n),
            risk_level=n % 4 if risk is None else risk,
        )

    def opened(self, db_path: Path) -> list[dict]:
        """Every record in a kiosk database, opened with the committee's key."""
        from kiosk.core.seal import open_sealed

        conn = sqlite3.connect(db_path)
        try:
            rows = conn.execute("SELECT record_id, sealed, seal_kid FROM checkins").fetchall()
        finally:
            conn.close()
        return [open_sealed(blob, self.committee[kid], record_id=rid) for rid, blob, kid in rows]


def pass_id(n: int) -> bytes:
    return b"FS" + n.to_bytes(14, "big")


class TextDecoder:
    """Stands in for camera + decoder: each 'frame' is already the text a QR code held."""

    name = "text"
    errors = 0

    def decode(self, frame):
        return [frame] if isinstance(frame, str) and frame else []


class Witness:
    """What the visitor saw: the real Signal on MockFactory pins, with every signal noted."""

    def __init__(self, out=None):
        from gpiozero.pins.mock import MockFactory

        from kiosk.adapters.signal import Signal
        from kiosk.config import SignalSection

        self.seen: list[str] = []
        self.out = out
        self.signal = Signal(SignalSection().scaled(0.05), pin_factory=MockFactory(), echo=self._echo)

    def _echo(self, colour: str) -> None:
        self.seen.append(colour)
        if self.out:
            self.out.write(f"SHOWN {colour}\n")
            self.out.flush()

    def __getattr__(self, name):
        return getattr(self.signal, name)

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc) -> None:
        self.signal.close()  # not left to the garbage collector in a blink thread


def make_app(store, auth: Authority, witness, frames, **kw):
    from kiosk.adapters.frames import ArraySource
    from kiosk.app import KioskApp, Retry, Trust
    from kiosk.clock import SystemClock

    return KioskApp(
        source=ArraySource(frames),
        decoder=TextDecoder(),
        signal=witness,
        store=store,
        trust=lambda: Trust(issuers=auth.trusted),
        clock=SystemClock(),
        hold_s=0.0,
        repeat_window_s=0.0,
        retry=Retry(0.02, 0.1),
        **kw,
    )


def _lost_and_duplicates(auth: Authority, db: Path, shown_ids: list[bytes]) -> tuple[int, int]:
    recorded = [r["pass_id"] for r in auth.opened(db)]
    return (len(set(shown_ids) - set(recorded)), len(recorded) - len(set(recorded)))


# -- crash: SIGKILL at random while `kiosk run` records ---------------------------------------------
def child_run(auth_dir: str, db: str, first: int, count: int) -> None:
    """The process the crash scenario kills: scans passes first..first+count, one by one,
    printing "SCAN n" before and "SHOWN colour" after each signal."""
    from kiosk.store.checkins import CheckinStore

    auth = Authority(Path(auth_dir))
    store = CheckinStore.open(db, sealing=auth.sealing, venue_id="fault-suite")
    witness = Witness(out=sys.stdout)
    app = make_app(store, auth, witness, [])
    print("READY", flush=True)
    for n in range(first, first + count):
        print(f"SCAN {n}", flush=True)
        app.step(auth.pass_text(n))


def crash_run(work: Path, auth: Authority, *, kills: int, rng: random.Random) -> Tally:
    t = Tally()
    db = work / "crash-run.db"
    shown: list[bytes] = []
    next_n = 0
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, __file__, "child-run", str(auth.dir), str(db), str(next_n), "100000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout))
        reader.start()
        deadline = time.monotonic() + 30
        while "READY\n" not in lines and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.02, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            t.faults_injected += 1
        else:
            t.crashes += 1
        proc.wait()
        reader.join()
        err = proc.stderr.read()
        if "Traceback" in err:
            t.crashes += 1
        current, answered = None, True
        for line in lines:
            if line.startswith("SCAN "):
                if not answered:
                    t.silent_failures += 1  # a scan before it without any signal
                current, answered = int(line.split()[1]), False
                auth.issued.add(current)
                next_n = max(next_n, current + 1)
            elif line.startswith("SHOWN ") and current is not None:
                answered = True
                if line.split()[1] in DECISIONS:
                    shown.append(pass_id(current))
                    t.checkins_made += 1
                elif line.split()[1] != "AMBER":
                    t.silent_failures += 1
    lost, dup = _lost_and_duplicates(auth, db, shown)
    t.records_lost += lost
    t.duplicates += dup
    return t


# -- crash: SIGKILL at random while `kiosk sync --loop` uploads --------------------------------------
def crash_sync(work: Path, auth: Authority, *, kills: int, records: int, rng: random.Random) -> Tally:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.core.keys import raw_public, write_private
    from kiosk.store.checkins import CheckinStore
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.localserver import LocalServer
    from workbench.world import kiosk_config_text

    t = Tally()
    from sync.central.keyring import server_keys_folder

    keys = server_keys_folder(auth.dir, work / "server-keys")
    db = work / "crash-sync" / "kiosk.db"
    store = CheckinStore.open(db, sealing=auth.sealing, venue_id="fault-suite")
    decisions = [
        decide(
            auth.pass_text(n), trusted=auth.trusted, risk_list=RiskList(), policy=Policy(), now=time.time()
        )
        for n in range(4)
    ]
    for i in range(records):
        store.record(decisions[i % 4], now=time.time(), clock_synced=True)
    store.close()
    t.checkins_made += records
    device = Ed25519PrivateKey.generate()
    write_private(work / "crash-sync" / "device.key", device)
    with LocalServer(work / "central", keys) as server:
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="fs", public_key=raw_public(device.public_key()), now=time.time())
        from sync.central.manifests import publish

        publish(auth.dir, admin, now=time.time())  # what the kiosk trusts, signed by the root
        admin.close()
        cfg = work / "crash-sync" / "kiosk.toml"
        cfg.write_text(
            kiosk_config_text(
                auth.dir,
                db,
                sync=[
                    f'server_url = "{server.url}"',
                    f'kiosk_id = "{kid}"',
                    "batch_size = 50",
                    "interval_s = 0.2",
                    "upload_every_s = 0.2",
                    "backoff_base_s = 0.05",
                    "backoff_max_s = 0.2",
                ],
                keys=[f'root_key = "{auth.dir / "root.pub"}"'],
            )
        )
        kiosk = Path(sys.executable).parent / "kiosk"
        for _ in range(kills):
            proc = subprocess.Popen(
                [str(kiosk), "sync", "--config", str(cfg), "--loop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(rng.uniform(0.3, 1.2))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                t.faults_injected += 1
            elif proc.returncode != 0:
                t.crashes += 1
            _, err = proc.communicate()
            t.crashes += "Traceback" in err
        done = subprocess.run(
            [str(kiosk), "sync", "--config", str(cfg)], capture_output=True, text=True, timeout=300
        )
        t.crashes += "Traceback" in done.stderr
        admin = SqliteStorage.in_folder(server.data_dir)
        on_server = admin.record_ids(kid)
        admin.close()
    conn = sqlite3.connect(db)
    local = {r[0] for r in conn.execute("SELECT record_id FROM checkins")}
    pending = conn.execute("SELECT count(*) FROM checkins WHERE synced_at IS NULL").fetchone()[0]
    conn.close()
    t.records_lost += len(local - set(on_server)) + pending
    t.duplicates += len(on_server) - len(set(on_server))
    return t


# -- disk full, write lock ---------------------------------------------------------------------------
def _scan_through(app, witness, auth, start: int, count: int, t: Tally, shown_ok: list[bytes]) -> None:
    """Scan passes one by one; every scan must get a signal, and green or red only with a
    record behind it (checked later from the database)."""
    for n in range(start, start + count):
        before = len(witness.seen)
        events = app.step(auth.pass_text(n))
        t.checkins_made += 1
        if len(witness.seen) == before or not events:
            t.silent_failures += 1
            continue
        ev = events[0]
        if ev.store_failed:
            t.faults_injected += 1
        if witness.seen[-1].split()[0] in DECISIONS:
            shown_ok.append(pass_id(n))
            if ev.store_failed:
                t.green_on_failure += 1


def disk_full(work: Path, auth: Authority, *, rounds: int) -> Tally:
    from kiosk.store.checkins import CheckinStore

    t = Tally()
    mnt = work / "small-fs"
    mnt.mkdir(exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        == 0
    )
    try:
        db = mnt / "k.db"
        store = CheckinStore.open(db, sealing=auth.sealing, venue_id="fault-suite")
        witness = Witness()
        app = make_app(store, auth, witness, [])
        n = 0
        cleanup = witness
        for _r in range(rounds):
            shown: list[bytes] = []
            ballast = mnt / "ballast"
            if mounted:
                fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
                try:
                    while True:
                        os.write(fd, b"\0" * 4096)
                except OSError:
                    pass
                finally:
                    os.close(fd)
            else:
                store.db.execute("PRAGMA max_page_count = 1")
            _scan_through(app, witness, auth, n, 30, t, shown)
            n += 30
            if mounted:
                ballast.unlink()
            else:
                store.db.execute("PRAGMA max_page_count = 1073741823")
            time.sleep(0.15)
            app._probe_store()
            _scan_through(app, witness, auth, n, 5, t, shown)
            n += 5
            lost, dup = _lost_and_duplicates(auth, db, shown)
            t.records_lost += lost
            t.duplicates += dup
            store.purge(now=time.time() + 100 * 86_400)  # room for the next round
        store.close()
        cleanup.signal.close()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)])
    return t


def write_lock(work: Path, auth: Authority, *, rounds: int) -> Tally:
    from kiosk.store.checkins import CheckinStore
    from kiosk.store.sqlitedb import open_db

    t = Tally()
    db = work / "locked.db"
    CheckinStore.open(db, sealing=auth.sealing, venue_id="fault-suite").close()
    store = CheckinStore(open_db(db, busy_timeout_ms=100), sealing=auth.sealing, venue_id="fault-suite")
    witness = Witness()
    app = make_app(store, auth, witness, [])
    shown: list[bytes] = []
    n = 0
    for _ in range(rounds):
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], "
                "isolation_level=None); c.execute('BEGIN IMMEDIATE'); "
                "print('held', flush=True); time.sleep(float(sys.argv[2]))",
                str(db),
                "0.6",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        holder.stdout.readline()
        _scan_through(app, witness, auth, n, 4, t, shown)
        n += 4
        holder.wait()
        time.sleep(0.15)
        app._probe_store()
        _scan_through(app, witness, auth, n, 3, t, shown)
        n += 3
    store.close()
    witness.signal.close()
    lost, dup = _lost_and_duplicates(auth, db, shown)
    t.records_lost += lost
    t.duplicates += dup
    return t


# -- damaged files -----------------------------------------------------------------------------------
def corrupt_db(work: Path, auth: Authority, *, variants: int, rng: random.Random) -> Tally:
    """Random damage to a database or its WAL; opening must move it aside or use it, never
    crash, never delete; doctor must say FAIL or ok without a traceback."""
    import shutil

    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.store.checkins import CheckinStore

    t = Tally()
    d = decide(
        auth.pass_text(1), trusted=auth.trusted, risk_list=RiskList(), policy=Policy(), now=time.time()
    )
    base = work / "corrupt-base"
    base.mkdir(exist_ok=True)
    live = CheckinStore.open(base / "k.db", sealing=auth.sealing, venue_id="fault-suite")
    for _i in range(60):
        live.record(d, now=time.time(), clock_synced=True)
    shutil.copy(base / "k.db", base / "snap.db")
    shutil.copy(base / "k.db-wal", base / "snap.db-wal")
    live.close()
    for v in range(variants):
        case = work / f"corrupt-{v}"
        case.mkdir(exist_ok=True)
        shutil.copy(base / "snap.db", case / "k.db")
        shutil.copy(base / "snap.db-wal", case / "k.db-wal")
        target = case / rng.choice(["k.db", "k.db-wal"])
        data = bytearray(target.read_bytes())
        kind = rng.choice(["flip", "zero-page", "truncate", "random"])
        if kind == "flip":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == "zero-page":
            start = rng.randrange(0, max(1, len(data) - 4096))
            data[start : start + 4096] = bytes(min(4096, len(data) - start))
        elif kind == "truncate":
            del data[rng.randrange(len(data)) :]
        else:
            data = bytearray(os.urandom(len(data)))
        target.write_bytes(bytes(data))
        damaged = {p.name: p.read_bytes() for p in case.iterdir()}
        t.faults_injected += 1
        try:
            store = CheckinStore.open(case / "k.db", sealing=auth.sealing, venue_id="fault-suite")
            store.record(d, now=time.time(), clock_synced=True)  # and it records again
            moved = store.moved_aside()
            store.close()
        except Exception:
            t.crashes += 1
            continue
        if moved:  # kept byte for byte beside the new database
            kept = Path(moved.moved_to)
            for suffix in ("", "-wal"):
                original = damaged.get("k.db" + suffix)
                copy = kept.with_name(kept.name + suffix)
                if original is not None and (not copy.exists() or copy.read_bytes() != original):
                    t.records_lost += 1
    return t


# -- the camera --------------------------------------------------------------------------------------
def camera_faults(work: Path, auth: Authority, *, rounds: int) -> Tally:
    import numpy as np

    from kiosk.adapters.frames import ArraySource
    from kiosk.errors import CameraError, CameraGone
    from kiosk.store.checkins import CheckinStore
    from kiosk.store.sqlitedb import open_db

    t = Tally()
    store = CheckinStore(open_db(None), sealing=auth.sealing, venue_id="fault-suite")
    for r in range(rounds):

        class Dies:
            def __init__(self):
                self.n = 0

            def read(self):
                self.n += 1
                if self.n > 3:
                    raise CameraError("camera stopped delivering frames")
                return np.zeros((8, 8), np.uint8)

            def close(self):
                pass

        comes_back = r % 2 == 0
        tries = []

        def reopen():
            tries.append(1)
            if comes_back and len(tries) >= 2:
                return ArraySource([np.zeros((8, 8), np.uint8)] * 3)
            raise CameraError("no camera")

        with Witness() as witness:
            app = make_app(store, auth, witness, [])
            app.source, app.reopen, app.camera_fail_exit_s = Dies(), reopen, 0.3
            t.faults_injected += 1
            try:
                app.run()
                ended = "came back"
            except CameraGone:
                ended = "exit"
            except Exception:
                t.crashes += 1
                continue
        if "AMBER (steady: fault)" not in witness.seen:
            t.silent_failures += 1  # a visitor would have seen nothing
        if (ended == "exit") == comes_back:
            t.silent_failures += 1  # neither recovered nor exited for systemd
        if any(c.split()[0] in DECISIONS for c in witness.seen):
            t.green_on_failure += 1
    return t


# -- a proxy answering what the protocol never says -------------------------------------------------
def proxy_faults(work: Path, auth: Authority, *, records: int, rng: random.Random) -> Tally:
    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.core.keys import load_ed25519_public, raw_public
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.faultproxy import FaultProxy
    from workbench.localserver import LocalServer

    t = Tally()
    from sync.central.keyring import server_keys_folder

    keys = server_keys_folder(auth.dir, work / "proxy-keys")  # as `keys server` makes it
    store = CheckinStore.open(work / "proxy" / "k.db", sealing=auth.sealing, venue_id="fault-suite")
    decisions = [
        decide(
            auth.pass_text(n), trusted=auth.trusted, risk_list=RiskList(), policy=Policy(), now=time.time()
        )
        for n in range(4)
    ]
    ids = [store.record(decisions[i % 4], now=time.time(), clock_synced=True) for i in range(records)]
    t.checkins_made += records
    device = Ed25519PrivateKey.generate()
    with LocalServer(work / "proxy-central", keys) as server:
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="fs", public_key=raw_public(device.public_key()), now=time.time())
        from sync.central.manifests import publish

        publish(auth.dir, admin, now=time.time())  # what the kiosk trusts, signed by the root
        admin.close()
        modes = {
            m: 0.12 for m in ("html400", "html403", "html404", "html413", "html502", "error503", "reset")
        }
        proxy = FaultProxy(server.port, faults=modes, seed=rng.randrange(2**31))
        session = requests.Session()
        session.headers["Connection"] = "close"
        up = Uploader(
            store=store,
            server_url=proxy.url,
            kiosk_id=kid,
            device_key=device,
            root_key=load_ed25519_public(auth.dir / "root.pub"),
            bundle_file=work / "proxy" / "bundle.json",
            batch_size=20,
            session=session,
        )
        deadline = time.monotonic() + 180  # rounds until drained (most fail here)
        while time.monotonic() < deadline:
            result = up.round()
            if result.ok and result.pending == 0:
                break
        proxy.close()
        t.faults_injected += sum(n for m, n in proxy.counts.items() if m != "pass")
        admin = SqliteStorage.in_folder(server.data_dir)
        on_server = set(admin.record_ids(kid))
        admin.close()
    s = store.stats()
    t.records_lost += s["set_aside"] + len(set(ids) - on_server)
    store.close()
    return t


# -- hostile passes ------------------------------------------------------------------------------------
def hostile_passes(auth: Authority, *, examples: int) -> Tally:
    """Random and crafted texts through the real decision core: none may be admitted (or
    refused) unless it is a pass the issuer really signed; none may raise."""
    import base45
    import cbor2
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.core.passes import ALG_EDDSA, COSE_SIGN1_TAG, HDR_ALG, HDR_KID, PREFIX, key_id
    from kiosk.core.reasons import Outcome

    t = Tally()
    genuine = auth.pass_text(7, risk=0)
    now = time.time()

    def judge(text) -> None:
        t.faults_injected += 1
        try:
            d = decide(text, trusted=auth.trusted, risk_list=RiskList(), policy=Policy(), now=now)
        except Exception:
            t.crashes += 1
            return
        if d.outcome is not Outcome.INVALID and text != genuine:
            # Only a text that is the same signed pass (another encoding of it) may pass.
            if d.claims is None or d.claims.pass_id != pass_id(7):
                t.forged_admits += 1

    def wrap(cose: bytes, level=9) -> str:
        return PREFIX + base45.b45encode(zlib.compress(cose, level)).decode()

    foreign = Ed25519PrivateKey.generate()

    def cose_with(alg: int, signer, kid: bytes, payload: bytes) -> bytes:
        protected = cbor2.dumps({HDR_ALG: alg, HDR_KID: kid})
        sig = signer.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
        return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, sig]))

    real_kid = key_id(auth.issuer.public_key())
    claims = cbor2.dumps({1: "x", 6: int(now) - 60, 4: int(now) + 3600, -65537: b"\1" * 16, -65538: 0})
    crafted = [
        wrap(b"\0" * 2_000_000),  # a zlib bomb
        wrap(b"\x81" * 50_000 + b"\x00"),  # deep CBOR nesting
        wrap(cose_with(-7, auth.issuer, real_kid, claims)),  # wrong algorithm (ES256)
        wrap(cose_with(ALG_EDDSA, foreign, real_kid, claims)),  # foreign signer, real kid
        wrap(cose_with(ALG_EDDSA, foreign, key_id(foreign.public_key()), claims)),  # unknown key
        PREFIX,
        PREFIX + "%%%%",
        genuine[:-1],
        genuine + "A",
        genuine.lower(),
    ]
    for text in crafted:
        judge(text)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    for i in range(len(genuine)):  # every single change
        for c in alphabet:
            if c != genuine[i]:
                judge(genuine[:i] + c + genuine[i + 1 :])

    quiet = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )

    @quiet
    @given(st.binary(max_size=600))
    def random_bytes(b):
        judge(b.decode("latin-1"))
        judge(PREFIX + base45.b45encode(b).decode())  # a broken body
        judge(wrap(b))

    @quiet
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.binary(max_size=20) | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.integers(-70000, 10), inner, max_size=4)
            ),
            max_leaves=30,
        )
    )
    def random_cbor(obj):
        judge(wrap(cbor2.dumps(obj)))
        judge(
            wrap(
                cbor2.dumps(
                    cbor2.CBORTag(
                        COSE_SIGN1_TAG,
                        [
                            cbor2.dumps({HDR_ALG: ALG_EDDSA, HDR_KID: real_kid}),
                            {},
                            cbor2.dumps(obj),
                            b"\0" * 64,
                        ],
                    )
                )
            )
        )

    random_bytes()
    random_cbor()
    return t


# -- a stolen kiosk ----------------------------------------------------------------------------------
ENCODINGS = {
    "raw": lambda pid: pid,
    "hex": lambda pid: pid.hex().encode(),
    "HEX": lambda pid: pid.hex().upper().encode(),
    "base64": lambda pid: base64.b64encode(pid).rstrip(b"="),
    "base64url": lambda pid: base64.urlsafe_b64encode(pid).rstrip(b"="),
    "base45": lambda pid: __import__("base45").b45encode(pid),
    "base32": lambda pid: base64.b32encode(pid).rstrip(b"="),
    "json list": lambda pid: json.dumps(list(pid)).encode(),
    "repr": lambda pid: repr(pid).encode(),
}


def encodings(pid: bytes) -> list[bytes]:
    return [f(pid) for f in ENCODINGS.values()]


def _found(blobs: list[bytes], needles: dict[bytes, bytes]) -> set[bytes]:
    """Which needles (encoded -> pass id) occur in any blob: one scan for the needles'
    common prefix, then a set look-up at each hit (naive search when there is none)."""
    if not needles:
        return set()
    keys = list(needles)
    prefix = os.path.commonprefix(keys)
    lengths = {len(k) for k in keys}
    hits = set()
    if len(prefix) < 4:
        return {needles[k] for k in keys if any(k in b for b in blobs)}
    for blob in blobs:
        i = blob.find(prefix)
        while i >= 0:
            for n in lengths:
                pid = needles.get(blob[i : i + n])
                if pid is not None:
                    hits.add(pid)
            i = blob.find(prefix, i + 1)
    return hits


def stolen_kiosk(places: list[Path], texts: list[str], ids: list[bytes]) -> Tally:
    """Every pass id, in every encoding, searched in every byte of the kiosk's files (each
    place a folder, or a database file with its -wal and -shm) and in its logs."""
    t = Tally()
    files = []
    for place in map(Path, places):
        if place.is_dir():
            files += [p for p in place.rglob("*") if p.is_file()]
        else:
            files += [p for p in place.parent.glob(place.name + "*") if p.is_file()]
    blobs = [p.read_bytes() for p in files] + [x.encode() for x in texts]
    t.faults_injected += 1
    leaked: set[bytes] = set()
    for encode in ENCODINGS.values():  # each pass id found, in whatever encoding
        leaked |= _found(blobs, {encode(pid): pid for pid in set(ids)})
    t.stolen_leaks += len(leaked)
    return t


def kiosk_run_logs(work: Path, auth: Authority) -> tuple[list[str], list[bytes]]:
    """A real `kiosk run` on pass images, its stderr kept as the journal would keep it."""
    import cv2
    import numpy as np

    from workbench.render import camera_frame
    from workbench.world import kiosk_config_text

    frames = work / "run-frames"
    frames.mkdir(exist_ok=True)
    ids = []
    for n in range(100, 106):
        cv2.imwrite(
            str(frames / f"{n}.png"), camera_frame(auth.pass_text(n), np.random.default_rng(n), code_px=220)
        )
        ids.append(pass_id(n))
    cfg = work / "run" / "kiosk.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(
        kiosk_config_text(
            auth.dir,
            work / "run" / "k.db",
            camera=['source = "images"', f'images = ["{frames}"]', "fps = 30.0"],
            kiosk=['log_level = "DEBUG"'],
        )
    )
    kiosk = Path(sys.executable).parent / "kiosk"
    p = subprocess.run([str(kiosk), "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120)
    return [p.stdout, p.stderr], ids


# -- all of it -----------------------------------------------------------------------------------------
SCALES = {
    "short": dict(
        kills=3, sync_kills=3, sync_records=300, rounds=1, variants=12, proxy_records=60, examples=60
    ),
    "long": dict(
        kills=100,
        sync_kills=20,
        sync_records=5000,
        rounds=10,
        variants=500,
        proxy_records=1000,
        examples=20000,
    ),
}


def run_all(
    scale: str = "short", *, seed: int = 7, work: Path | None = None, report=print
) -> dict[str, Tally]:
    s = SCALES[scale]
    rng = random.Random(seed)
    work = Path(work or tempfile.mkdtemp(prefix="kiosk-faults-"))
    auth = Authority(work / "authority")
    results: dict[str, Tally] = {}

    def scenario(name, fn):
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except Exception as e:  # the suite itself failing is a crash, said plainly
            report(f"  {name}: the scenario failed: {type(e).__name__}: {e}")
            results[name] = Tally(crashes=1)
            return
        t = results[name]
        counts = ", ".join(
            f"{label} {getattr(t, key):,}"
            for key, label in ROWS
            if getattr(t, key) or key in ("faults_injected",)
        )
        report(f"  {name:28s} {time.monotonic() - t0:6.1f} s  {counts}")

    scenario("crash: kiosk run (SIGKILL)", lambda: crash_run(work, auth, kills=s["kills"], rng=rng))
    scenario(
        "crash: kiosk sync (SIGKILL)",
        lambda: crash_sync(work, auth, kills=s["sync_kills"], records=s["sync_records"], rng=rng),
    )
    scenario("disk full", lambda: disk_full(work, auth, rounds=s["rounds"]))
    scenario("write lock held", lambda: write_lock(work, auth, rounds=s["rounds"] * 2))
    scenario("damaged database / WAL", lambda: corrupt_db(work, auth, variants=s["variants"], rng=rng))
    scenario("camera gone", lambda: camera_faults(work, auth, rounds=s["rounds"] * 2))
    scenario("proxy 4xx/5xx", lambda: proxy_faults(work, auth, records=s["proxy_records"], rng=rng))
    scenario("hostile passes", lambda: hostile_passes(auth, examples=s["examples"]))

    def stolen():
        logs, run_ids = kiosk_run_logs(work, auth)
        ids = [pass_id(n) for n in sorted(auth.issued)] + run_ids
        return stolen_kiosk(
            [work / "crash-run.db", work / "crash-sync", work / "run", work / "proxy", work / "locked.db"],
            logs,
            ids,
        )

    scenario("stolen kiosk", stolen)
    return results


def table(results: dict[str, Tally]) -> str:
    total = Tally()
    for t in results.values():
        total += t
    width = max(len(label) for _, label in ROWS)
    return "\n".join(f"{label:{width}s}  {getattr(total, key):>9,d}" for key, label in ROWS)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child-run":
        child_run(*sys.argv[2:4], int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
