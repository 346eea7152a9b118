"""Faults at the door (issue: a kiosk that never fails silently). Each test failed before
its fix. Real parts: real SQLite files (a real write lock held by a second connection, a real
full filesystem where the machine lets the test mount one), real processes and signals, the
real server behind a real TCP proxy, gpiozero's MockFactory pins."""

import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import zlib
from pathlib import Path

import base45
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.adapters.decoders import make_decoder
from kiosk.adapters.frames import ArraySource
from kiosk.adapters.signal import Signal, make_pin_factory
from kiosk.app import KioskApp, Retry, Trust
from kiosk.config import SignalSection
from kiosk.core.decision import Policy, RiskList
from kiosk.core.passes import PREFIX
from kiosk.core.reasons import Outcome
from kiosk.errors import CameraError, CameraGone, GpioError, StoreFailing
from kiosk.store.checkins import CheckinStore
from kiosk.store.sqlitedb import open_db
from kiosk.store.walcheck import wal_damage
from testkit import BIN, FakeClock, fill
from workbench.render import camera_frame
from workbench.world import kiosk_config_text

CFG = SignalSection().scaled(0.3)
RED, AMBER, GREEN = CFG.red_pin, CFG.amber_pin, CFG.green_pin


def frame(text, seed=0):
    return camera_frame(text, np.random.default_rng(seed), code_px=220)


class Shown:
    """gpiozero's MockFactory signal, plus a record of what was shown (in order)."""

    def __init__(self):
        self.factory = MockFactory()
        self.signal = Signal(CFG, pin_factory=self.factory, echo=self._echo)
        self.seen = []

    def _echo(self, colour):
        self.seen.append(colour)

    def __getattr__(self, name):
        return getattr(self.signal, name)


@pytest.fixture
def shown():
    s = Shown()
    yield s
    s.signal.close()


def make_app(store, trusted, shown, clock=None, **kw):
    return KioskApp(
        source=kw.pop("source", ArraySource([])),
        decoder=make_decoder("zxing"),
        signal=shown,
        store=store,
        trust=lambda: Trust(issuers=trusted, policy=Policy()),
        clock=clock or FakeClock(),
        hold_s=0.0,
        repeat_window_s=0.0,
        retry=Retry(0.05, 0.2),
        **kw,
    )


def fresh_pass(make_pass, risk=0, n=0):
    now = int(time.time())
    return make_pass(risk, issued=now - 60, expires=now + 3600, pass_id=bytes([n % 256]) * 16)


# -- 1. a failed write: amber, one line, retry, recover, then exit ---------------------------------
def test_a_write_lock_held_shows_amber_never_green_then_recovers(
    tmp_path, sealing, trusted, make_pass, shown, caplog
):
    db_path = tmp_path / "k.db"
    store = CheckinStore(open_db(db_path, busy_timeout_ms=100), sealing=sealing, venue_id="v")
    app = make_app(store, trusted, shown)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    events = app.step(frame(fresh_pass(make_pass, 0, 1)))
    events += app.step(frame(fresh_pass(make_pass, 3, 2)))
    assert [e.shown for e in events] == [Outcome.INVALID, Outcome.INVALID]
    assert [e.decision.outcome for e in events] == [Outcome.ADMIT, Outcome.DENY]
    assert shown.seen == ["AMBER", "AMBER"] and not any(e.recorded for e in events)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "write lock" in errors[0].getMessage()
    holder.execute("ROLLBACK")
    deadline = time.monotonic() + 10  # past the backoff, however loaded this machine is
    while app._store_failing_since is not None and time.monotonic() < deadline:
        time.sleep(0.05)
        app._probe_store()  # the loop probes; recording resumes
    events = app.step(frame(fresh_pass(make_pass, 0, 3)))
    assert events[0].shown is Outcome.ADMIT and events[0].recorded and shown.seen[-1] == "GREEN"
    assert store.stats()["records"] == 1


def test_failing_commits_end_the_loop_after_the_configured_time(tmp_path, sealing, trusted, make_pass, shown):
    db_path = tmp_path / "k.db"
    store = CheckinStore(open_db(db_path, busy_timeout_ms=50), sealing=sealing, venue_id="v")
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    frames = [frame(fresh_pass(make_pass, 0, 1))] + [frame(None)] * 3
    app = make_app(store, trusted, shown, source=ArraySource(frames, loop=True), store_fail_exit_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(StoreFailing, match="could not be recorded for 0 s|for 1 s"):
        app.run()
    assert 0.5 <= time.monotonic() - t0 < 10
    assert not {"GREEN", "GREEN-TESTED", "RED"} & {s.split()[0] for s in shown.seen} and "AMBER" in shown.seen
    holder.execute("ROLLBACK")


def _small_fs(tmp_path, size="600k"):
    """A real small filesystem (tmpfs) when this machine lets the test mount one."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        return None
    return mnt


def test_a_full_disk_shows_amber_and_recording_resumes_when_space_returns(
    tmp_path, sealing, trusted, make_pass, shown
):
    mnt = _small_fs(tmp_path)
    ballast = None
    try:
        if mnt is None:  # no mount here: SQLite's own page limit instead
            store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v")
            full = lambda: store.db.execute("PRAGMA max_page_count = 1")  # noqa: E731
            free = lambda: store.db.execute("PRAGMA max_page_count = 1073741823")  # noqa: E731
        else:
            store = CheckinStore.open(mnt / "k.db", sealing=sealing, venue_id="v")
            ballast = mnt / "ballast"

            def full():
                fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
                try:
                    while True:
                        os.write(fd, b"\0" * 4096)
                except OSError:  # ENOSPC: the filesystem is full
                    pass
                finally:
                    os.close(fd)

            def free():
                ballast.unlink()

        app = make_app(store, trusted, shown)
        made = 0
        full()
        results = []
        for i in range(40):  # fill the WAL's free space, then fail
            ev = app.step(frame(fresh_pass(make_pass, i % 4, i), seed=i))
            results += ev
            made += 1
        assert made == len(results)  # every scan got a signal
        failed = [e for e in results if e.store_failed]
        assert failed, "the disk never filled"
        assert all(e.shown is Outcome.INVALID for e in failed)  # never green on failure
        recorded = store.db.execute("SELECT count(*) FROM checkins").fetchone()[0]
        assert recorded == sum(e.recorded for e in results)  # every green has its record
        free()
        time.sleep(0.25)
        app._probe_store()
        ev = app.step(frame(fresh_pass(make_pass, 0, 99), seed=99))
        assert ev[0].recorded and ev[0].shown is Outcome.ADMIT
        store.close()
    finally:
        if mnt is not None:
            subprocess.run(["umount", "-l", str(mnt)])


def test_the_start_up_lamp_check_never_shows_green_alone_and_ends_dark():
    factory = MockFactory()
    signal = Signal(CFG, pin_factory=factory)
    pins = {n: factory.pin(n) for n in (RED, AMBER, GREEN)}
    cleared = {}
    for n, p in pins.items():
        p.clear_states()
        cleared[n] = p._last_change  # MockPin timestamps are deltas from here
    signal.lamp_check(0.05)
    between = time.monotonic()
    signal.self_test(0.02)  # doctor --signal-test: ends on all three, dark
    signal.close()
    events = []
    for n, p in pins.items():
        t = cleared[n]
        for s in p.states[1:]:
            t += s.timestamp
            events.append((t, n, s.state))
    events.sort()
    state = {n: False for n in pins}
    for t, n, on in events:
        state[n] = on
        if t < between and state[GREEN]:  # start-up: green only ever with the others
            assert state[RED] and state[AMBER]
    assert state == {RED: False, AMBER: False, GREEN: False}  # dark at the end
    lit = [n for t, n, on in events if on]
    assert set(lit[-3:]) == {RED, AMBER, GREEN}  # the doctor's test ends with all three together


def test_kiosk_run_does_not_run_the_colour_self_test_at_start():
    src = BIN.parent.parent / "kiosk" / "cli.py"
    text = src.read_text() if src.exists() else ""
    import inspect

    from kiosk import cli

    run_src = inspect.getsource(cli.cmd_run)
    assert "lamp_check()" in run_src and "self_test" not in run_src, text[:0]


# -- 2. damaged databases are moved aside, a new epoch begins ----------------------------------------
def _cfg(tmp_path, authority, **over):
    p = tmp_path / "kiosk.toml"
    p.write_text(kiosk_config_text(authority, tmp_path / "state" / "k.db", **over))
    return p


def _run(*args, timeout=60, **kw):
    return subprocess.run(
        [str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, timeout=timeout, **kw
    )


def _assert_one_line(stderr):
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize("damage", ["random", "empty"])
def test_a_damaged_database_is_moved_aside_and_a_new_epoch_begins(
    tmp_path, authority, sealing, damage, make_pass, trusted
):
    cfg = _cfg(tmp_path, authority)
    db = tmp_path / "state" / "k.db"
    db.parent.mkdir(exist_ok=True)
    junk = os.urandom(40_000) if damage == "random" else b""
    db.write_bytes(junk)
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    assert "Traceback" not in d.stderr + d.stdout and d.returncode == 1
    assert any(line.startswith("FAIL  database") and "damaged" in line for line in d.stdout.splitlines())
    assert db.read_bytes() == junk  # doctor only looks
    r = _run("kiosk", "purge", "--config", cfg)  # any writer opens it the same way
    assert r.returncode == 0, r.stderr
    assert "moved aside to" in r.stderr and "new sequence epoch" in r.stderr
    aside = [p for p in db.parent.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == junk  # kept, byte for byte
    store = CheckinStore.open(db, sealing=sealing, venue_id="v")
    assert store.epoch > 0 and store.moved_aside().moved_to == str(aside[0])
    store.close()
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    epoch_line = next(line for line in d.stdout.splitlines() if "epoch" in line)
    assert epoch_line.startswith("warn") and str(aside[0]) in epoch_line


def test_a_damaged_wal_is_moved_aside_not_silently_cut_short(tmp_path, sealing, make_pass, trusted):
    from kiosk.core.decision import decide

    live = tmp_path / "live.db"
    store = CheckinStore.open(live, sealing=sealing, venue_id="v")
    d = decide(make_pass(0), trusted=trusted, risk_list=RiskList(), policy=Policy(), now=1_790_000_000)
    for i in range(30):
        store.record(d, now=1_790_000_000 + i, clock_synced=True)
    # The state a power cut leaves: the database and its WAL, copied while still open.
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copy(live, crash / "k.db")
    shutil.copy(f"{live}-wal", crash / "k.db-wal")
    store.close()
    wal = bytearray((crash / "k.db-wal").read_bytes())
    assert wal_damage(bytes(wal)) is None  # intact
    page = int.from_bytes(wal[8:12], "big")
    frames = (len(wal) - 32) // (24 + page)
    assert frames > 6
    torn = bytes(wal[: len(wal) - page // 2])  # a torn last frame: normal after power loss
    assert wal_damage(torn) is None
    middle = 32 + (frames // 2) * (24 + page) + 24 + 100
    wal[middle] ^= 0xFF  # one flipped byte mid-WAL
    assert "committed frames follow" in wal_damage(bytes(wal))
    (crash / "k.db-wal").write_bytes(bytes(wal))
    again = CheckinStore.open(crash / "k.db", sealing=sealing, venue_id="v")
    moved = again.moved_aside()
    assert moved and "checksum" in moved.reason
    assert again.stats()["records"] == 0 and again.epoch != store.epoch
    kept_wal = crash / (os.path.basename(moved.moved_to) + "-wal")
    assert kept_wal.read_bytes() == bytes(wal)  # the evidence is kept as it was
    again.close()


def test_a_reset_shows_on_the_server_as_a_new_epoch(tmp_path, sealing, make_pass, trusted):
    from kiosk.core.decision import decide
    from sync.central.storage.sqlite_backend import SqliteStorage

    d = decide(make_pass(0), trusted=trusted, risk_list=RiskList(), policy=Policy(), now=1_790_000_000)
    server = SqliteStorage(tmp_path / "central.db")
    kid = server.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    for name, now in (("a.db", 1_000.0), ("b.db", 2_000.0)):  # two databases, one kiosk
        store = CheckinStore.open(tmp_path / name, sealing=sealing, venue_id="v", now=now)
        for i in range(3):
            store.record(d, now=1_790_000_000 + i, clock_synced=True)
        rows = [{**r, "sealed": b"x"} for r in store.pending(10)]
        server.ingest(kid, f"00000000-0000-4000-8000-00000000000{len(name)}", rows, now=now)
        store.close()
    epochs = server.epochs(kid)
    assert [(e[1], e[2], e[3], e[4]) for e in epochs] == [(3, 1, 3, 0), (3, 1, 3, 0)]  # 1-3 twice
    assert [e[0] for e in epochs] == [1_000_000, 2_000_000]
    assert server.gaps(kid) == [] and server.gaps(kid, 1_000_000) == []
    server.close()


# -- 3, 4. what the uploader does with non-protocol answers, and the bundle after a failure ----------
@pytest.fixture
def wire(tmp_path, server_keys, authority):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.keys import raw_public
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.localserver import LocalServer

    with LocalServer(tmp_path / "central", server_keys) as server:
        key = Ed25519PrivateKey.generate()
        admin = SqliteStorage.in_folder(server.data_dir)
        kid = admin.register_kiosk(venue="v1", public_key=raw_public(key.public_key()), now=time.time())
        from workbench.world import raise_risk, trusted_world

        alice, _ = trusted_world(admin, authority, now=time.time())
        version = raise_risk(admin, alice, [b"\x07" * 16], 3, now=time.time())
        admin.close()
        server.alice = alice  # for tests that change the risk list again
        yield server, kid, key, version


@pytest.mark.parametrize("mode", ["html400", "html413", "html403", "html404", "html502"])
def test_a_proxys_answer_never_sets_records_aside(
    tmp_path, wire, authority, sealing, make_pass, trusted, mode
):
    from testkit import fill, make_uploader
    from workbench.faultproxy import FaultProxy

    server, kid, key, _ = wire
    store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v1")
    fill(store, make_pass, trusted, 54)
    proxy = FaultProxy(server.port, faults={mode: 1.0})
    up = make_uploader(store, proxy.url, kid, key, authority, tmp_path)
    result = up.round()
    proxy.close()
    s = store.stats()
    assert not result.ok and (s["pending"], s["set_aside"]) == (54, 0)
    if mode in ("html400", "html413"):
        assert "without the protocol's error code" in result.error
    store.close()


def test_set_aside_records_are_re_queued_and_doctor_warns_meanwhile(
    tmp_path, authority, sealing, make_pass, trusted
):
    cfg = _cfg(tmp_path, authority)
    store = CheckinStore.open(tmp_path / "state" / "k.db", sealing=sealing, venue_id="v")
    ids = fill(store, make_pass, trusted, 5)
    store.set_aside(ids[:2], reason="HTTP 400 malformed: records.0.sealed", now=time.time())
    store.close()
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    line = next(x for x in d.stdout.splitlines() if "set aside" in x)
    assert line.startswith("warn") and "--retry-set-aside" in line and "2 records" in line
    r = _run("kiosk", "sync", "--config", cfg, "--retry-set-aside")
    assert r.returncode == 0 and "2 set-aside records queued" in r.stdout, r.stderr
    store = CheckinStore.open(tmp_path / "state" / "k.db", sealing=sealing, venue_id="v")
    assert store.stats()["pending"] == 5 and store.stats()["set_aside"] == 0 and ids
    store.close()


def test_the_bundle_is_fetched_even_when_the_upload_fails(
    tmp_path, wire, authority, sealing, make_pass, trusted
):
    from testkit import fill, make_uploader
    from workbench.faultproxy import FaultProxy
    from workbench.world import raise_risk, with_storage

    server, kid, key, version = wire
    store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v1")
    fill(store, make_pass, trusted, 10)
    proxy = FaultProxy(server.port)
    up = make_uploader(store, proxy.url, kid, key, authority, tmp_path)
    assert up.fetch_bundle().startswith(f"updated to version {version}: first bundle")  # its receipt key
    admin = with_storage(server.data_dir)
    newer = raise_risk(admin, server.alice, [b"\x08" * 16], 3, now=time.time())
    admin.close()
    proxy.forced = ["error503"]  # the upload fails, the next one passes
    result = up.round()
    proxy.close()
    assert not result.ok and "503" in result.error
    assert result.bundle.startswith(f"updated to version {newer}: risk list +1 -0 entries")
    assert store.stats()["pending"] == 10
    store.close()


# -- 5. a tampered bundle: doctor FAILs, the kiosk keeps the last verified one ------------------------
def test_a_tampered_bundle_fails_doctor_and_the_kiosk_keeps_the_verified_risk_list(
    tmp_path, wire, authority, sealing, make_pass, trusted
):
    from kiosk import config
    from kiosk.compose import open_store, trust_provider
    from kiosk.core.decision import decide

    server, kid, key, version = wire
    key_file = tmp_path / "device.key"
    from kiosk.core.keys import write_private

    write_private(key_file, key)
    cfg_path = _cfg(
        tmp_path,
        authority,
        keys=[f'root_key = "{authority / "root.pub"}"', f'device_key = "{key_file}"'],
        sync=[f'server_url = "{server.url}"', f'kiosk_id = "{kid}"'],
    )
    r = _run("kiosk", "sync", "--config", cfg_path)
    assert r.returncode == 0, r.stdout + r.stderr
    bundle = tmp_path / "state" / "bundle.json"
    good = bundle.read_bytes()
    middle = len(good) // 2  # one byte of damage
    bad = good[:middle] + bytes([good[middle] ^ 0x01]) + good[middle + 1 :]
    bundle.write_bytes(bad)
    d = _run("kiosk", "doctor", "--config", cfg_path, "--no-camera")
    line = next(x for x in d.stdout.splitlines() if "risk list" in x)
    assert line.startswith("FAIL") and "does not verify" in line and f"version {version}" in line
    assert d.returncode == 1
    cfg = config.load(cfg_path)
    store = open_store(cfg)
    trust = trust_provider(cfg, store=store)()  # a start with the tampered file
    exposed = fresh_pass(make_pass, 0, 7)  # its pass id is on the list at level 3
    verdict = decide(
        exposed, trusted=trust.issuers, risk_list=trust.risk_list, policy=trust.policy, now=time.time()
    )
    assert verdict.outcome is Outcome.DENY and verdict.reason.value == "risk_list"
    store.close()
    r = _run("kiosk", "sync", "--config", cfg_path)  # the next sync repairs the file
    assert r.returncode == 0 and bundle.read_bytes() != bad


# -- 6. GPIO: on a Pi, the real pins or a failure ------------------------------------------------------
def no_pin_library(module: str):
    """What importing a pin library does where none can drive pins (injected: on a Pi whose
    lgpio works, the real import would succeed)."""
    raise ImportError(f"{module}: no GPIO library here")


def test_on_a_raspberry_pi_auto_never_falls_back_to_mock_pins():
    with pytest.raises(GpioError, match="Raspberry Pi .* python3-lgpio"):
        make_pin_factory("auto", on_pi=True, importer=no_pin_library)
    factory, is_mock = make_pin_factory("auto", on_pi=False, importer=no_pin_library)  # mock pins
    assert is_mock


def test_an_unavailable_gpio_library_is_one_line_and_exit_3(tmp_path, authority):
    cfg = _cfg(tmp_path, authority, camera=['source = "images"', f'images = ["{tmp_path}"]'])
    cfg.write_text(cfg.read_text().replace('pin_factory = "mock"', 'pin_factory = "lgpio"'))
    # lgpio made unavailable on any machine, a Pi whose lgpio drives pins included: a module
    # of that name that fails to import, first on the path of the `kiosk run` process.
    (tmp_path / "nolgpio").mkdir()
    (tmp_path / "nolgpio" / "lgpio.py").write_text('raise ImportError("lgpio: not available (test)")\n')
    r = _run("kiosk", "run", "--config", cfg, env={**os.environ, "PYTHONPATH": str(tmp_path / "nolgpio")})
    assert r.returncode == 3, r.stderr
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("kiosk: GPIO error: GPIO pin factory 'lgpio' unavailable")
    )
    assert "Traceback" not in r.stderr


# -- 7. one line, a documented status ----------------------------------------------------------------
@pytest.mark.parametrize(
    "camera,expect",
    [
        (['source = "opencv"', 'device = "7"'], "kiosk: camera error: cannot open camera/video '7'"),
        (['source = "opencv"', 'device = "/nonexistent/door.mp4"'], "no such video file"),
        (['source = "images"', 'images = ["/nonexistent/*.png"]'], "kiosk: camera error: no images found"),
        (['source = "images"', 'images = ["unreadable"]'], "none of the 2 images"),
    ],
)
def test_camera_faults_are_one_line_and_exit_4(tmp_path, authority, camera, expect):
    (tmp_path / "unreadable").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "unreadable" / name).write_bytes(b"not an image")
    cfg = _cfg(tmp_path, authority, camera=camera)
    r = _run("kiosk", "run", "--config", cfg)
    assert r.returncode == 4 and expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("kiosk: camera error:")


def test_a_camera_that_fails_is_retried_then_the_kiosk_exits(sealing, trusted, shown):
    class Flaky:
        def __init__(self, fail_after):
            self.n, self.fail_after = 0, fail_after

        def read(self):
            self.n += 1
            if self.n > self.fail_after:
                raise CameraError("camera stopped delivering frames")
            return np.zeros((48, 64), np.uint8)

        def close(self):
            pass

    opened = []

    def reopen_then_recover():
        opened.append(1)
        if len(opened) < 3:
            raise CameraError("no camera")
        return ArraySource([np.zeros((48, 64), np.uint8)] * 5)

    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    app = make_app(store, trusted, shown, source=Flaky(2), reopen=reopen_then_recover, camera_fail_exit_s=30)
    totals = app.run()  # comes back on the third reopen, then ends
    assert totals.frames == 7 and len(opened) == 3 and totals.camera_failures >= 1
    assert shown.seen[0] == "AMBER (steady: fault)"
    app = make_app(store, trusted, shown, source=Flaky(0), reopen=lambda: Flaky(0), camera_fail_exit_s=0.3)
    with pytest.raises(CameraGone, match="did not come back in 0 s"):
        app.run()


def test_a_stalled_camera_stops_the_watchdog_pings(tmp_path, monkeypatch, sealing, trusted, shown):
    from kiosk.sdnotify import Notifier
    from testkit import bound_socket, received

    sock, path = bound_socket(tmp_path)
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    release = threading.Event()

    class Stalls(ArraySource):
        def read(self):
            if self._i >= 5:
                release.wait(1.5)  # picamera2 waiting for a frame that never comes
                return None
            time.sleep(0.01)
            return super().read()

    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    app = make_app(store, trusted, shown, source=Stalls([np.zeros((48, 64), np.uint8)] * 10))
    app.notifier = Notifier(path)
    msgs = []
    reader = threading.Thread(target=lambda: msgs.extend(received(sock, quiet_s=2.5)))
    reader.start()
    t0 = time.monotonic()
    app.run()
    reader.join()
    assert time.monotonic() - t0 >= 1.5
    # Pings every 10 ms while frames came (50 ms); none through the 1.5 s stall (~150 if
    # the loop pinged regardless), so systemd's watchdog would restart the kiosk.
    assert 1 <= msgs.count("WATCHDOG=1") <= 15


def test_open_records_into_head_is_quiet(tmp_path, authority):
    from sync.central.storage.sqlite_backend import SqliteStorage

    data = tmp_path / "central"
    s = SqliteStorage.in_folder(data)
    kid = s.register_kiosk(venue="v", public_key=b"k" * 32, now=0)
    from kiosk.core.seal import seal
    from kiosk.core.sealkeys import Sealer
    from sync.central.keyring import public_periods

    key, _ = Sealer(fallback=None, periods=lambda: public_periods(authority)).key_for("normal", time.time())
    rows = []
    for i in range(3000):
        rid = f"00000000-0000-4000-8000-{i:012d}"
        rows.append(
            {
                "record_id": rid,
                "seq": i + 1,
                "captured_at": time.time(),
                "clock_synced": True,
                "retention": "normal",
                "delete_after": time.time() + 86400,
                "seal_kid": key.kid,
                "sealed": seal(
                    {
                        "pass_id": b"p" * 16,
                        "risk_level": 0,
                        "decision": "admit",
                        "reason": "valid",
                        "venue": "v",
                    },
                    key,
                    record_id=rid,
                ),
            }
        )
    s.ingest(kid, "00000000-0000-4000-8000-000000000001", rows, now=time.time())

    from kiosk.core.keys import write_private
    from workbench.world import approved_case
    from workbench.world import committee as make_committee

    a, b = make_committee(s, now=time.time())
    approved_case(s, a, b, now=time.time(), case_id="C-1")
    write_private(tmp_path / "a.key", a)
    write_private(tmp_path / "b.key", b)
    s.close()
    p = subprocess.run(
        f"'{BIN / 'kiosk-central'}' open-records --data '{data}' --keys '{authority}' "
        f"--case C-1 --member-key '{tmp_path / 'a.key'}' --member-key '{tmp_path / 'b.key'}' | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.stdout.count("\n") == 1 and "Traceback" not in p.stderr and "Broken" not in p.stderr


def test_doctor_as_a_user_who_cannot_read_the_key_is_one_fail_line(tmp_path, authority):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run doctor as another user")
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="kiosk-doctor-"))  # pytest's folder is root's only
    os.chmod(tmp_path, 0o755)
    keys = tmp_path / "keys"
    shutil.copytree(authority, keys)
    for p in keys.iterdir():
        os.chmod(p, 0o600)  # root's only
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(kiosk_config_text(keys, tmp_path / "state" / "k.db"))
    os.chmod(tmp_path, 0o755)
    cfg.chmod(0o644)
    r = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            str(BIN / "kiosk"),
            "doctor",
            "--config",
            str(cfg),
            "--no-camera",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode in (1, 2), r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "not readable by nobody" in text or "cannot read key file (Permission denied)" in text


# -- 8. races at start, and one pass in two encodings ------------------------------------------------
def test_processes_opening_a_fresh_database_at_once_all_succeed(tmp_path, authority):
    script = (
        "import sys; from kiosk.store.checkins import CheckinStore; from kiosk.core.seal import SealingKey; "
        "from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey as X; "
        "s = CheckinStore.open(sys.argv[1], sealing=SealingKey.of(X.generate().public_key()), "
        "venue_id='v'); print(s.epoch); s.close()"
    )
    python = str(BIN / "python")
    for round_ in range(5):
        db = tmp_path / f"fresh{round_}.db"
        procs = [
            subprocess.Popen(
                [python, "-c", script, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-300:] for o in outs]
        assert len({o[0] for o in outs}) == 1  # one epoch: one database


def test_the_same_pass_in_another_encoding_is_not_recorded_twice(sealing, trusted, make_pass, shown):
    text = fresh_pass(make_pass, 0, 5)
    cose = zlib.decompress(base45.b45decode(text[len(PREFIX) :]))
    other = PREFIX + base45.b45encode(zlib.compress(cose, 1)).decode()
    assert other != text
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    clock = FakeClock()
    app = KioskApp(
        source=None,
        decoder=make_decoder("zxing"),
        signal=shown,
        store=store,
        trust=lambda: Trust(issuers=trusted),
        clock=clock,
        hold_s=1.0,
        repeat_window_s=10,
    )
    first = app.step(frame(text))
    clock.offset += 3
    second = app.step(frame(other, seed=1))
    assert first[0].recorded and second[0].repeat and not second[0].recorded
    assert store.stats()["records"] == 1


# -- smaller things users met ---------------------------------------------------------------------
def test_both_commands_say_their_version():
    for cmd in ("kiosk", "kiosk-central"):
        p = _run(cmd, "--version")
        assert p.returncode == 0 and p.stdout.startswith(f"{cmd} 0.")


def test_register_kiosk_refuses_a_key_already_active(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.keys import write_public

    pub = tmp_path / "device.pub"
    write_public(pub, Ed25519PrivateKey.generate().public_key())
    data = tmp_path / "central"
    assert _run("kiosk-central", "init", "--data", data).returncode == 0
    first = _run("kiosk-central", "register-kiosk", "--data", data, "--venue", "v", "--public-key", pub)
    assert first.returncode == 0
    kid = first.stdout.strip()
    again = _run("kiosk-central", "register-kiosk", "--data", data, "--venue", "v", "--public-key", pub)
    assert again.returncode == 2 and f"already registered to active kiosk {kid}" in again.stderr
    _assert_one_line(again.stderr)
    assert _run("kiosk-central", "register-kiosk", "--data", data, "--revoke", kid).returncode == 0
    assert (
        _run(
            "kiosk-central", "register-kiosk", "--data", data, "--venue", "v", "--public-key", pub
        ).returncode
        == 0
    )  # after a revoke: a new kiosk


def test_serve_on_a_busy_port_is_one_line_without_serving_on(tmp_path, authority):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    from sync.central.keyring import server_keys_folder

    keys = server_keys_folder(authority, tmp_path / "keys")
    p = _run("kiosk-central", "serve", "--data", tmp_path / "c", "--keys", keys, "--port", port)
    busy.close()
    assert p.returncode == 2 and "serving on" not in p.stderr
    assert (
        p.stderr.strip()
        .splitlines()[-1]
        .startswith(f"kiosk-central: error: cannot listen on 127.0.0.1:{port}")
    )
    assert "Traceback" not in p.stderr


def test_under_journald_lines_carry_syslog_priorities(tmp_path, authority):
    cfg = _cfg(tmp_path, authority, camera=['source = "images"', 'images = ["/nonexistent/x.png"]'])
    cfg.write_text(cfg.read_text().replace("[kiosk]", "[kiosk]\nstore_fail_exit_s = 5.0"))
    err = tmp_path / "journal"
    with open(err, "w") as f:
        st = os.fstat(f.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run(
            [str(BIN / "kiosk"), "purge", "--config", str(cfg)],
            stderr=f,
            env=env,
            capture_output=False,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        db = tmp_path / "state" / "k.db"
        db.write_bytes(b"junk" * 100)  # an error line: the move-aside
        subprocess.run(
            [str(BIN / "kiosk"), "purge", "--config", str(cfg)],
            stderr=f,
            env=env,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
    lines = err.read_text().splitlines()
    assert any(line.startswith("<6>kiosk") for line in lines), lines
    assert any(line.startswith("<3>kiosk.store.checkins: database") for line in lines), lines
    # Elsewhere (a terminal, a file): timestamps, no priorities.
    p = _run("kiosk", "purge", "--config", cfg)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} INFO ", p.stderr), p.stderr


def test_doctor_checks_disk_kiosk_id_root_key_and_plain_http(tmp_path, authority):
    cfg = _cfg(tmp_path, authority, sync=['server_url = "http://127.0.0.1:9/"'])
    cfg.write_text(cfg.read_text().replace("[kiosk]", "[kiosk]\ndisk_warn_mb = 100000000\ndisk_fail_mb = 0"))
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    lines = {line[6:18].strip(): line for line in d.stdout.splitlines()}
    assert lines["disk"].startswith("warn") and "MB free" in lines["disk"]
    assert lines["kiosk id"].startswith("FAIL") and "register" in lines["kiosk id"]
    assert lines["root key"].startswith("FAIL") and "root_key" in lines["root key"]
    assert lines["transport"].startswith("warn") and "plain HTTP" in lines["transport"]
    assert lines["key files"].startswith("FAIL") and "keys init" in lines["key files"]
    assert d.returncode == 1 and "Traceback" not in d.stdout + d.stderr


# -- 9. the journal holds no outcome; systemd's status line holds counts -----------------------------
def test_a_full_run_logs_no_outcome_level_or_pass_id_and_status_counts_the_hour(tmp_path, authority):
    import socket as socketlib

    import cv2

    from sync.central.issuing import issue_pass
    from workbench.render import camera_frame

    frames = tmp_path / "frames"
    frames.mkdir()
    ids = []
    for i, risk in enumerate((0, 1, 2, 3)):
        text, pid = issue_pass(authority, risk=risk)
        ids.append(pid)
        cv2.imwrite(str(frames / f"{i}.png"), camera_frame(text, np.random.default_rng(i), code_px=220))
    cv2.imwrite(
        str(frames / "9.png"), camera_frame("https://example.org/menu", np.random.default_rng(9), code_px=220)
    )
    cfg = _cfg(
        tmp_path,
        authority,
        camera=['source = "images"', f'images = ["{frames}"]', "fps = 30.0"],
        kiosk=['log_level = "DEBUG"'],
    )
    sock_path = tmp_path / "notify"
    sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    r = subprocess.run(
        [str(BIN / "kiosk"), "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NOTIFY_SOCKET": str(sock_path)},
    )
    msgs = []
    try:
        while True:
            msgs.append(sock.recv(4096).decode())
    except OSError:
        pass
    sock.close()
    assert r.returncode == 0, r.stderr
    journal = r.stdout + r.stderr
    assert "scan invalid: not_a_pass" in journal  # an invalid scan keeps its reason
    for secret in (
        "admit",
        "deny",
        "refused",
        "GREEN",
        "GREEN-TESTED",
        "exposed",
        "RED",
        "risk_level",
        "level 3",
        "valid pass",
        *(pid.hex() for pid in ids),
    ):
        assert secret not in journal, secret
    status = [m for m in msgs if m.startswith("STATUS=scanning; last hour")]
    assert status and status[-1] == "STATUS=scanning; last hour: 4 check-ins, 1 invalid"


def test_doctor_as_root_leaves_no_file_the_owner_cannot_write(tmp_path, authority, sealing):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd

    nobody = pwd.getpwnam("nobody")
    cfg = _cfg(tmp_path, authority)
    db = tmp_path / "state" / "k.db"
    CheckinStore.open(db, sealing=sealing, venue_id="v").close()
    for p in db.parent.iterdir():
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    os.chown(db.parent, nobody.pw_uid, nobody.pw_gid)
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    assert "Traceback" not in d.stdout + d.stderr
    for p in db.parent.iterdir():
        assert p.stat().st_uid == nobody.pw_uid, f"{p.name} is owned by root now"


def test_doctor_fails_after_repeated_bad_receipts_and_names_plain_http(tmp_path, authority):
    """Upload answers without a receipt the manifest's receipt key signed (a forged 200 on a
    plain-HTTP path): nothing was marked synced; after three in a row doctor says FAIL."""
    from kiosk import config
    from kiosk.compose import open_store
    from kiosk.store.checkins import BAD_RECEIPTS

    cfg = _cfg(tmp_path, authority, sync=['server_url = "http://127.0.0.1:9/"', 'kiosk_id = "k-1"'])
    store = open_store(config.load(cfg))
    store.set_state(BAD_RECEIPTS, "3")
    store.close()
    d = _run("kiosk", "doctor", "--config", cfg, "--no-camera")
    lines = {line[6:18].strip(): line for line in d.stdout.splitlines()}
    assert lines["receipts"].startswith("FAIL") and "3 upload answers in a row" in lines["receipts"]
    assert lines["transport"].startswith("warn") and d.returncode == 1
