"""`kiosk update` against real releases built from this checkout (scripts/release), signed
with `kiosk-central release publish`, relayed by a real `kiosk-central serve` on loopback,
installed side by side by a real kiosk process. (systemd's restart is not here: the
restart command is left empty, and the health check runs the new release itself.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sync.central.keyring import server_keys_folder
from testkit import ROOT, build_release
from testkit import run_bin as run
from workbench.world import kiosk_config_text


@pytest.fixture
def world(tmp_path, authority):
    from workbench.localserver import LocalServer

    a = Path(shutil.copytree(authority, tmp_path / "authority"))
    (a / "manifest-state.json").unlink(missing_ok=True)
    data = tmp_path / "central"
    run("kiosk-central", "init", "--data", data)
    run("kiosk-central", "manifest", "publish", "--keys", a, "--data", data)
    code = run(
        "kiosk-central", "enrolment", "issue", "--keys", a, "--data", data, "--venue", "cafe-1",
        "--out", tmp_path / "t.png",
    ).stdout.splitlines()[0]  # fmt: skip
    with LocalServer(data, server_keys_folder(a, tmp_path / "server-keys")) as server:
        cfg = tmp_path / "kiosk" / "kiosk.toml"
        text = kiosk_config_text(
            a,
            tmp_path / "kiosk" / "kiosk.db",
            keys=[f'root_key = "{a / "root.pub"}"'],
            sync=[f'server_url = "{server.url}"'],
            update=["quiet_s = 0.0", "health_timeout_s = 120.0"],
        )
        cfg.write_text(text.replace('venue_id = "venue-test"', 'venue_id = "cafe-1"'))
        run("kiosk", "enrol", "--config", cfg, code)
        kiosk_id = re.search(r'kiosk_id = "(k-[0-9a-f]+)"', cfg.read_text())[1]
        yield a, data, cfg, kiosk_id


def publish(a: Path, data: Path, release: Path, *extra: str):
    return run(
        "kiosk-central", "release", "publish", "--keys", a, "--data", data, release, *extra, check=False
    )


def test_a_kiosk_installs_a_signed_release_side_by_side_and_rolls_back_a_broken_one(tmp_path, world):
    a, data, cfg, kiosk_id = world
    releases = cfg.parent / "releases"
    nothing = run("kiosk", "update", "--config", cfg)
    assert nothing.stdout.strip() == "none 0.1.0: no release published"

    # an older release than the kiosk runs: signed, published, never installed
    old = publish(a, data, build_release(tmp_path, "0.0.9"))
    assert old.returncode == 0, old.stderr
    kept = run("kiosk", "update", "--config", cfg)
    assert kept.stdout.strip() == "current 0.1.0: the published release is 0.0.9"

    # the next one, for nobody yet; then for this kiosk by name
    v2 = build_release(tmp_path, "0.2.0", change="release two")
    assert "0% of the fleet" in publish(a, data, v2, "--percent", "0").stdout
    assert run("kiosk", "update", "--config", cfg, "--check").stdout.startswith("not for this kiosk 0.2.0")
    assert publish(a, data, v2, "--percent", "0", "--kiosk", kiosk_id).returncode == 0
    check = run("kiosk", "update", "--config", cfg, "--check")
    assert check.stdout.startswith("available 0.2.0: 1 files"), check.stdout
    assert (
        not (releases / "0.2.0").exists() and not (releases / "current").exists()
    )  # --check installs nothing
    done = run("kiosk", "update", "--config", cfg, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "installed 0.2.0: from 0.1.0; healthy", done
    current = releases / "current" / "bin" / "kiosk"
    assert os.readlink(releases / "current") == "0.2.0"
    assert (
        subprocess.run([current, "--version"], capture_output=True, text=True).stdout.strip() == "kiosk 0.2.0"
    )
    assert (
        "Venue check-in kiosk, release two"
        in subprocess.run([current, "--help"], capture_output=True, text=True).stdout
    )
    again = subprocess.run([current, "update", "--config", cfg], capture_output=True, text=True)
    assert again.stdout.strip() == "current 0.2.0: the published release is 0.2.0", again
    # the update timer runs the base install's updater: it knows 0.2.0 runs, and leaves it
    timer = run("kiosk", "update", "--config", cfg)
    assert timer.stdout.strip() == "current 0.2.0: the published release is 0.2.0", timer.stdout

    # a broken release: it does not come up, and the kiosk goes back on its own
    v3 = build_release(tmp_path, "0.3.0", broken=True)
    assert publish(a, data, v3).returncode == 0
    back = subprocess.run([current, "update", "--config", cfg], capture_output=True, text=True)
    assert back.returncode == 1, back
    assert back.stdout.startswith("rolled back 0.3.0: does not start"), back.stdout
    assert os.readlink(releases / "current") == "0.2.0"
    retry = subprocess.run([current, "update", "--config", cfg], capture_output=True, text=True)
    assert "0.3.0 was rolled back here" in retry.stdout  # not tried again
    doctor = run("kiosk", "doctor", "--config", cfg, "--no-camera", check=False).stdout
    line = next(x for x in doctor.splitlines() if x.split()[1:2] == ["update"])
    assert line.startswith("warn") and "rolled back 0.3.0: does not start" in line and "running 0.2.0" in line
    # the server hears why with the next sync (the sync service runs the current release)
    assert subprocess.run([current, "sync", "--config", cfg], capture_output=True).returncode == 0
    status = json.loads(run("kiosk-central", "status", "--data", data, "--json").stdout)
    [k] = [k for k in status["kiosks"] if k["kiosk_id"] == kiosk_id]
    assert k["health"]["version"] == "0.2.0"
    assert k["health"]["update"].startswith("rolled back 0.3.0: does not start")
    assert "update rolled back 0.3.0" in run("kiosk-central", "status", "--data", data).stdout

    # the committee cannot publish an older release over a newer one either
    older = publish(a, data, build_release(tmp_path, "0.2.5"))
    assert older.returncode == 2 and "older than the published 0.3.0" in older.stderr


def test_the_server_alone_cannot_make_freeze_or_roll_back_a_release(tmp_path, world):
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, TargetFile, Targets

    from kiosk.core.keys import load_ed25519_private
    from sync.central.storage.opening import open_storage
    from sync.central.tufrepo import publish as publish_lib

    a, data, cfg, _ = world
    v2 = build_release(tmp_path, "0.2.0")
    assert publish(a, data, v2).returncode == 0
    storage = open_storage(data=str(data))
    try:
        # the server's thief signs targets of its own, with its own online key
        server_key = load_ed25519_private(tmp_path / "server-keys" / "bundle.key")
        held = Metadata[Targets].from_bytes(storage.update_doc("targets.json").encode())
        forged = Targets(version=held.signed.version + 1, expires=held.signed.expires)
        forged.targets = dict(held.signed.targets)
        forged.targets["release.json"] = TargetFile.from_data("release.json", b"{}", ["sha256"])
        md = Metadata(forged)
        md.sign(CryptoSigner(server_key))
        storage.put_update([], md.to_bytes().decode(), {}, now=time.time())
    finally:
        storage.close()
    refused = run("kiosk", "update", "--config", cfg, check=False)
    assert refused.returncode == 1 and refused.stdout.startswith("refused: UnsignedMetadataError"), refused
    assert not (cfg.parent / "releases" / "current").exists()

    # a release whose signature has run out (the committee stopped publishing): frozen, refused
    storage = open_storage(data=str(data))
    try:
        publish_lib(a, storage, build_release(tmp_path, "0.4.0"), now=time.time() - 100 * 86400)
    finally:
        storage.close()
    frozen = run("kiosk", "update", "--config", cfg, check=False)
    assert frozen.returncode == 1 and "release metadata expired" in frozen.stdout, frozen


def test_two_builds_of_one_commit_are_the_same_bytes(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    for out in (a, b):
        p = subprocess.run(
            [ROOT / "scripts" / "release", "--out", out, "--project-only"], capture_output=True, text=True
        )
        if p.returncode == 2 and "uncommitted changes" in p.stderr:
            pytest.skip("this checkout has uncommitted changes: a release is built from a commit")
        assert p.returncode == 0, p.stderr
    assert (a / "release.json").read_bytes() == (b / "release.json").read_bytes()
    [wheel] = a.glob("*.whl")
    assert (b / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_kiosk_offline_for_30_days_catches_up(tmp_path, world):
    """Its last metadata (signed a month ago, long expired) is where it starts from: it takes
    the fresh metadata and the release published meanwhile."""
    from kiosk.core.keys import load_ed25519_private
    from sync.central.storage.opening import open_storage
    from sync.central.tufrepo import fresh

    a, data, cfg, _ = world
    assert publish(a, data, build_release(tmp_path, "0.2.0")).returncode == 0
    first = run("kiosk", "update", "--config", cfg, "--check")
    assert first.stdout.startswith("available 0.2.0"), first.stdout
    meta = cfg.parent / "releases" / ".updates" / "metadata"
    storage = open_storage(data=str(data))
    try:
        old = fresh(
            storage,
            load_ed25519_private(tmp_path / "server-keys" / "bundle.key"),
            now=time.time() - 30 * 86400,
        )
    finally:
        storage.close()
    assert old is not None
    for name, body in old.items():  # what it held when it went offline
        (meta / name).write_bytes(body)
    assert publish(a, data, build_release(tmp_path, "0.3.0")).returncode == 0  # meanwhile
    back = run("kiosk", "update", "--config", cfg, "--check")
    assert back.stdout.startswith("available 0.3.0"), back.stdout


def test_the_switch_waits_for_a_quiet_door_and_every_scan_is_answered(tmp_path, world, authority):
    """A door scanning a pass every second: the release is installed beside the running one,
    but the switch waits for a quiet moment that does not come; the door answered every scan.
    Once the door is quiet, the next round switches."""
    import cv2
    import numpy as np

    from sync.central.issuing import issue_pass
    from workbench.render import camera_frame

    a, data, cfg, _ = world
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "pass.png"), camera_frame(issue_pass(a, risk=0)[0], np.random.default_rng(1)))
    text = cfg.read_text()
    text = text.replace("[kiosk]\n", "[kiosk]\nrepeat_window_s = 0.0\nhold_s = 0.0\n", 1)
    text += f'[camera]\nsource = "images"\nimages = ["{frames}"]\nloop = true\nfps = 1.0\n'
    text = text.replace("quiet_s = 0.0", "quiet_s = 4.0\nquiet_wait_s = 8.0")
    cfg.write_text(text)
    assert publish(a, data, build_release(tmp_path, "0.2.0")).returncode == 0
    from testkit import BIN

    door = subprocess.Popen(
        [str(BIN / "kiosk"), "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    try:
        started = time.monotonic()
        busy = run("kiosk", "update", "--config", cfg, timeout=300)
        assert (
            busy.stdout.strip() == "available 0.2.0: installed; the door was never quiet: switches next round"
        )
        assert door.poll() is None and not (cfg.parent / "releases" / "current").exists()
        elapsed = time.monotonic() - started
    finally:
        door.terminate()
        _, err = door.communicate(timeout=30)
    totals = re.search(r"(\d+) frames, (\d+) scans, (\d+) recorded, (\d+) not recorded", err)
    assert totals, err
    frames_n, scans, recorded, lost = map(int, totals.groups())
    assert scans == frames_n and recorded == scans and lost == 0  # every scan answered and kept
    assert recorded >= int(elapsed) - 2
    quiet = run("kiosk", "update", "--config", cfg, timeout=300)
    assert quiet.stdout.strip() == "installed 0.2.0: from 0.1.0; healthy", quiet.stdout


def test_a_download_cut_off_on_the_way_resumes_where_it_stopped(tmp_path, world):
    """What came before the cut is kept and the rest asked for (an HTTP range); the whole is
    checked against its signed hash all the same (a damaged start is caught, then dropped)."""
    import hashlib

    a, data, cfg, _ = world
    release = build_release(tmp_path, "0.2.0")
    assert publish(a, data, release).returncode == 0
    [wheel] = release.glob("*.whl")
    whole = wheel.read_bytes()
    server_url = re.search(r'server_url = "([^"]+)"', cfg.read_text())[1].rstrip("/")
    url = f"{server_url}/v1/updates/targets/0.2.0/{wheel.name}"
    partial = cfg.parent / "releases" / ".updates" / "partial" / hashlib.sha256(url.encode()).hexdigest()[:32]
    partial.parent.mkdir(parents=True, exist_ok=True)
    damaged = bytes([whole[0] ^ 0xFF]) + whole[1 : len(whole) // 2]
    partial.write_bytes(damaged)  # the first half, damaged: only a resumed download would use it
    caught = run("kiosk", "update", "--config", cfg, check=False, timeout=300)
    assert caught.returncode == 1 and "a file does not match" in caught.stdout, caught.stdout
    assert not partial.exists()
    partial.write_bytes(whole[: len(whole) // 2])  # a true first half: the rest is fetched
    done = run("kiosk", "update", "--config", cfg, timeout=300)
    assert done.stdout.strip() == "installed 0.2.0: from 0.1.0; healthy"
    assert not partial.exists()
