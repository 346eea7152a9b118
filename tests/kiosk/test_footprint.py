"""What a small Pi must not carry: `kiosk sync` loads no camera, decoder, GPIO or screen
code (nor numpy), and `kiosk run` on the Pi camera path loads no OpenCV. Real processes:
the imports are read from `python -X importtime` and the libraries from /proc/PID/maps.
(The RSS figures belong to scripts/bench, not to a timed test.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from kiosk.core.keys import raw_public
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import BIN, ROOT
from workbench.localserver import LocalServer
from workbench.render import camera_frame
from workbench.world import kiosk_config_text, publish_manifest

NOT_FOR_SYNC = {
    "cv2",
    "numpy",
    "zxingcpp",
    "pyzbar",
    "gpiozero",
    "picamera2",
    "pygame",
    "evdev",
    "serial",
    "lgpio",
}
NOT_FOR_SYNC_OURS = {
    "kiosk.adapters.decoders",
    "kiosk.adapters.frames",
    "kiosk.adapters.looks",
    "kiosk.adapters.signal",
    "kiosk.adapters.screen",
    "kiosk.adapters.scanners",
    "workbench.render",
}


def imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_kiosk_sync_uploads_without_camera_decoder_gpio_or_numpy(
    tmp_path, authority, server_keys, make_pass, trusted, sealing
):
    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.store.checkins import CheckinStore

    db = tmp_path / "kiosk.db"
    with LocalServer(tmp_path / "central", server_keys) as srv:
        cfg = tmp_path / "kiosk.toml"
        cfg.write_text(kiosk_config_text(authority, db))
        assert (
            subprocess.run([BIN / "kiosk", "keys", "init", "--config", cfg], capture_output=True).returncode
            == 0
        )
        key = load_pem_private_key((tmp_path / "device.key").read_bytes(), None)
        admin = SqliteStorage.in_folder(srv.data_dir)
        kid = admin.register_kiosk(venue="v", public_key=raw_public(key.public_key()), now=time.time())
        publish_manifest(authority, admin, now=time.time())
        admin.close()
        cfg.write_text(
            kiosk_config_text(
                authority,
                db,
                sync=[f'server_url = "{srv.url}"', f'kiosk_id = "{kid}"'],
                keys=[f'root_key = "{authority / "root.pub"}"'],
            )
        )
        store = CheckinStore.open(db, sealing=sealing, venue_id="venue-test")
        now = time.time()
        for i in range(3):
            d = decide(
                make_pass(0, issued=int(now) - 60, expires=int(now) + 3600, pass_id=bytes([i]) * 16),
                trusted=trusted,
                risk_list=RiskList(),
                policy=Policy(),
                now=now,
            )
            store.record(d, now=now, clock_synced=True)
        store.close()
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kiosk.cli", "sync", "--config", cfg],
            capture_output=True,
            text=True,
        )
    assert r.returncode == 0 and "uploaded 3" in r.stdout, r.stdout + r.stderr[-2000:]
    mods = imported(r.stderr)
    assert "kiosk.uploader" in mods and "requests" in mods  # the check sees imports
    assert not {m for m in mods if m.split(".")[0] in NOT_FOR_SYNC}, sorted(
        {m.split(".")[0] for m in mods if m.split(".")[0] in NOT_FOR_SYNC}
    )
    assert not mods & NOT_FOR_SYNC_OURS, mods & NOT_FOR_SYNC_OURS


def test_kiosk_run_on_the_pi_camera_path_loads_no_opencv(tmp_path, authority, make_pass):
    """picamera2 is a hand-written stand-in (tests/stubs/picamera2: no Pi camera here) put
    on PYTHONPATH of a real `kiosk run`; everything else is the real program."""
    now = int(time.time())
    rng = np.random.default_rng(2)
    passes = [make_pass(0, issued=now - 60, expires=now + 3600, pass_id=bytes([i]) * 16) for i in range(3)]
    frames = [camera_frame(None, rng) for _ in range(10)] + [camera_frame(p, rng) for p in passes]
    np.save(tmp_path / "frames.npy", np.array(frames))
    db = tmp_path / "kiosk.db"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(kiosk_config_text(authority, db, camera=['source = "picamera2"', "fps = 20.0"]))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tests" / "stubs"),
        "KIOSK_FAKE_CAMERA_FRAMES": str(tmp_path / "frames.npy"),
    }
    proc = subprocess.Popen(
        [BIN / "kiosk", "run", "--config", cfg],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        records = 0
        while time.monotonic() < deadline and records < 3:
            time.sleep(0.3)
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        records = conn.execute("SELECT count(*) FROM checkins").fetchone()[0]
                    except sqlite3.OperationalError:
                        records = 0
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert records == 3, err[-2000:]
    libs = {line.split()[-1] for line in maps.splitlines() if ".so" in line}
    assert any("zxingcpp" in lib for lib in libs)  # the check sees libraries
    assert not [lib for lib in libs if "cv2" in lib or "opencv" in lib], libs
    assert "camera picamera2" in err and proc.returncode == 0
