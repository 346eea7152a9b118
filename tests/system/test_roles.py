"""Installs per role, as a Pi and a server get them: a venv with only the device set (from
requirements/device.lock) runs `kiosk run` on images and `kiosk sync`; one with only the
central set runs `kiosk-central serve` and a trace. Each lacks the other role's libraries.

Real venvs (uv, from the lock files, with the wheels uv has cached or fetches), real
processes on 127.0.0.1, real SQLite files.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from testkit import ROOT, committee_with_a_case
from workbench.localserver import free_port
from workbench.world import kiosk_config_text

UV = Path(sys.executable).parent / "uv"
DEVICE_ONLY = ("cv2", "gpiozero", "pygame", "serial")
CENTRAL_ONLY = (
    "fastapi",
    "uvicorn",
    "psycopg",
    "prometheus_client",
    "pydantic",
    "fpdf",
    "uharfbuzz",
    "matplotlib",
)
BOTH = ("zxingcpp", "numpy")  # the kiosk decodes passes with it; the authority encodes its cards' QR codes


def make_venv(where: Path, role: str) -> Path:
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(where)], check=True)
    py = where / "bin" / "python"
    lock = ROOT / "requirements" / f"{role}.lock"
    for args in (["-r", str(lock)], ["--no-deps", str(ROOT)]):
        r = subprocess.run(
            [str(UV), "pip", "install", "--quiet", "--python", str(py), *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr[-2000:]
    return where / "bin"


def importable(bin_dir: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(bin_dir / "python"), "-c", code]).returncode == 0


def run(
    bin_dir: Path, *args: object, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        [str(bin_dir / str(args[0])), *map(str, args[1:])],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def venvs(tmp_path_factory):
    if not UV.exists():
        pytest.skip("uv is not installed in this venv (scripts/setup installs the dev lock)")
    base = tmp_path_factory.mktemp("roles")
    return make_venv(base / "device", "device"), make_venv(base / "central", "central")


def test_each_role_installs_without_the_other_roles_libraries(venvs):
    device, central = venvs
    assert [m for m in CENTRAL_ONLY if importable(device, m)] == []
    assert [m for m in DEVICE_ONLY if importable(central, m)] == []
    assert all(importable(device, m) for m in DEVICE_ONLY)
    assert all(importable(device, m) and importable(central, m) for m in BOTH)
    assert all(importable(central, m) for m in CENTRAL_ONLY)
    # The other role's command says what is missing in one line, never a traceback.
    wrong = run(device, "kiosk-central", "serve", "--data", "/nonexistent", check=False)
    assert wrong.returncode == 2 and "missing library" in wrong.stderr and "Traceback" not in wrong.stderr


def test_device_set_runs_the_kiosk_and_syncs_to_a_server_of_the_central_set(venvs, tmp_path):
    device, central = venvs
    authority = tmp_path / "authority"
    run(central, "kiosk-central", "keys", "init", "--dir", authority)
    server_keys = tmp_path / "server-keys"
    run(central, "kiosk-central", "keys", "server", "--keys", authority, "--out", server_keys)
    # The committee's machine (the central set): members and a case, the members' shares of
    # the key the period keys are sealed to, and the periods.
    data = tmp_path / "central"
    keys = committee_with_a_case(lambda *a: run(central, *a), tmp_path, data, "OB-1")
    run(
        central,
        "kiosk-central",
        "keys",
        "share",
        "--keys",
        authority,
        "--data",
        data,
        "--member-key",
        keys[0],
    )
    run(central, "kiosk-central", "keys", "rotate", "--keys", authority, "--data", data)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    pass_id = run(
        central,
        "kiosk-central",
        "issue-pass",
        "--keys",
        authority,
        "--risk",
        "0",
        "--png",
        imgs / "pass.png",
    ).stdout.split("pass id ")[1][:32]

    db, cfg = tmp_path / "kiosk.db", tmp_path / "kiosk.toml"
    base = kiosk_config_text(
        authority,
        db,
        keys=[f'root_key = "{authority / "root.pub"}"', 'device_key = "device.key"'],
        kiosk=['bundle_file = "bundle.json"'],
        camera=['source = "images"', f'images = ["{imgs}"]', "loop = true", "fps = 20.0"],
    )
    cfg.write_text(base)
    run(device, "kiosk", "keys", "init", "--config", cfg)
    kiosk_id = run(
        central,
        "kiosk-central",
        "register-kiosk",
        "--data",
        data,
        "--venue",
        "Market",
        "--public-key",
        tmp_path / "device.pub",
        "--tag-key",
        tmp_path / "tag.pub",
        "--keys",
        authority,
    ).stdout.splitlines()[0]
    run(central, "kiosk-central", "manifest", "publish", "--keys", authority, "--data", data)

    proc = subprocess.Popen(
        [str(device / "kiosk"), "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, n = time.monotonic() + 60, 0
        while time.monotonic() < deadline and n == 0:
            time.sleep(0.2)
            try:
                n = sqlite3.connect(db).execute("SELECT count(*) FROM checkins").fetchone()[0]
            except sqlite3.Error:
                pass
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and n == 1, err

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(  # free ports only: a server may already hold the default ones
        [
            str(central / "kiosk-central"),
            "serve",
            "--data",
            str(data),
            "--keys",
            str(server_keys),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(free_port()),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        cfg.write_text(base + f'[sync]\nserver_url = "http://127.0.0.1:{port}"\nkiosk_id = "{kiosk_id}"\n')
        synced = run(device, "kiosk", "sync", "--config", cfg)
        assert synced.stdout.startswith("uploaded 1 (duplicates 0)"), synced.stdout + synced.stderr
    finally:
        server.terminate()
        server.communicate(timeout=30)

    # A trace by two members for a case, in the central set alone.
    traced = run(
        central,
        "kiosk-central",
        "trace",
        "--data",
        data,
        "--keys",
        authority,
        "--member-key",
        keys[0],
        "--member-key",
        keys[1],
        "--case",
        "OB-1",
        "--pass-id",
        pass_id,
    )
    assert "OB-1" in traced.stdout + traced.stderr
