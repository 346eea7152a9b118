"""The Raspberry Pi branch of scripts/setup, forced here (KIOSK_SETUP_AS_PI=1): its venv sees
the system's packages, and apt's numpy and the modules compiled against it still import
beside everything the kiosk imports on the picamera2 path. Real parts: Debian's
python3-numpy and python3-bottleneck (compiled against that numpy), a real venv made by the
real script from the Pi lock. Hand-written stand-ins, since no Pi camera stack exists here:
picamera2 (tests/stubs/picamera2) and simplejpeg (tests/stubs/simplejpeg, a C module built
here against the system's numpy headers that calls numpy's C API at import, as simplejpeg
does). Then the trap itself, for contrast: numpy 2 put in the venv makes the stand-in fail
as simplejpeg fails on a Pi, and doctor and the camera name the clash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testkit import ROOT
from workbench.world import kiosk_config_text, seeded_authority

SYSTEM_PY = Path("/usr/bin/python3")
STUBS = ROOT / "tests" / "stubs"

PROBE = """
import json, sys
import numpy, bottleneck, simplejpeg, picamera2
import cv2, zxingcpp, gpiozero, pygame, sqlite_utils, requests
from kiosk.adapters import decoders, frames, signal, screen
from kiosk.store import checkins
from kiosk import app, compose, doctor
print(json.dumps({"numpy": numpy.__version__, "numpy_at": numpy.__file__,
                  "zeros": simplejpeg.zeros(2, 3).shape, "cv2": cv2.__version__}))
"""


def system_numpy() -> dict[str, str] | None:
    if not SYSTEM_PY.exists():
        return None
    r = subprocess.run(
        [
            str(SYSTEM_PY),
            "-c",
            "import json, numpy, bottleneck, sysconfig; print(json.dumps("
            "{'version': numpy.__version__, 'include': numpy.get_include(), "
            "'pyinclude': sysconfig.get_paths()['include'], "
            "'suffix': sysconfig.get_config_var('EXT_SUFFIX')}))",
        ],
        capture_output=True,
        text=True,
    )
    return json.loads(r.stdout) if r.returncode == 0 else None


@pytest.fixture(scope="module")
def pi_venv(tmp_path_factory):
    info = system_numpy()
    if info is None or not (Path(info["pyinclude"]) / "Python.h").exists():
        pytest.skip(
            "needs Debian's python3-numpy, python3-bottleneck and python3-dev "
            "(scripts/setup --test installs them)"
        )
    work = tmp_path_factory.mktemp("pi-branch")
    # The simplejpeg stand-in, compiled against the system's numpy as apt's modules are.
    build = work / "stubs"
    shutil.copytree(STUBS / "picamera2", build / "picamera2")
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler builds the simplejpeg stand-in"
    subprocess.run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-O1",
            f"-I{info['pyinclude']}",
            f"-I{info['include']}",
            str(STUBS / "simplejpeg" / "simplejpeg.c"),
            "-o",
            str(build / f"simplejpeg{info['suffix']}"),
        ],
        check=True,
        capture_output=True,
    )
    venv = work / "venv"
    env = {**os.environ, "KIOSK_SETUP_AS_PI": "1", "KIOSK_VENV": str(venv)}
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [str(ROOT / "scripts" / "setup"), "--role", "device"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return venv, build, info, r.stderr


def in_venv(venv: Path, build: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(build)
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        **kw,
    )


def test_setup_takes_the_pi_branch_and_says_what_it_skipped(pi_venv):
    venv, _, _, said = pi_venv
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    assert "/usr/bin" in cfg  # the system's Python
    skipped = [line for line in said.splitlines() if "skipped" in line]
    assert len(skipped) <= 1
    if skipped:  # picamera2/lgpio: RPi OS only
        assert "Raspberry Pi OS" in skipped[0] and "python3-picamera2" in skipped[0]


def test_apt_numpy_and_its_modules_import_beside_the_kiosk_on_the_picamera2_path(pi_venv):
    venv, build, info, _ = pi_venv
    r = in_venv(venv, build, "python", "-c", PROBE)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])  # (pygame greets first)
    assert seen["numpy"] == info["version"]  # apt's, not one from PyPI
    assert seen["numpy_at"].startswith("/usr/lib/python3/dist-packages/")
    assert seen["zeros"] == [2, 3]  # numpy's C API, from the stand-in
    assert not list((venv / "lib").glob("python3*/site-packages/numpy"))


def test_doctor_is_happy_then_names_the_clash_when_numpy_2_shadows_apt(pi_venv, tmp_path):
    venv, build, info, _ = pi_venv
    authority = seeded_authority(tmp_path / "authority")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(kiosk_config_text(authority, tmp_path / "kiosk.db", camera=['source = "picamera2"']))
    ok = in_venv(venv, build, "kiosk", "doctor", "--config", str(cfg), "--no-camera")
    numpy_line = [x for x in ok.stdout.splitlines() if x.split()[1:2] == ["numpy"]]
    assert numpy_line and numpy_line[0].startswith("ok"), ok.stdout

    # The trap the Pi branch avoids: a numpy 2 from PyPI in the venv, in front of apt's.
    pip = in_venv(venv, build, "python", "-m", "pip", "install", "-q", "numpy>=2,<3")
    assert pip.returncode == 0, pip.stderr[-2000:]
    broken = in_venv(venv, build, "python", "-c", "import simplejpeg")
    assert broken.returncode != 0 and "numpy" in broken.stderr.lower()  # as simplejpeg fails on a Pi
    bad = in_venv(venv, build, "kiosk", "doctor", "--config", str(cfg))
    assert bad.returncode == 1
    fail = [x for x in bad.stdout.splitlines() if x.startswith("FAIL")]
    assert any("numpy" in x and "shadows the system's numpy" in x for x in fail), bad.stdout
    camera = [x for x in fail if " camera" in x]
    assert camera and "numpy" in camera[0] and "holding" not in camera[0], bad.stdout
    run = in_venv(venv, build, "kiosk", "run", "--config", str(cfg))
    assert run.returncode == 4 and "shadows the system's numpy" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
