"""README's pilot, typed as a new operator would: every block of "A pilot, from a fresh folder"
in bash, in page order, in an empty folder, from the committee's founding to a kiosk's first
upload and a case traced by two members.

Two things differ from a person at a terminal, and only these: the ports the page names
(8080, 9464) are replaced by free ones, since a server may already hold them on this machine;
and after a line that starts a server in the background (`... &`), the next line waits until
that server answers, as a person waits for "serving on".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from testkit import BIN, ROOT
from workbench.localserver import free_port

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text()


def pilot_blocks() -> list[str]:
    section = README.split("### A pilot, from a fresh folder\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def segments(blocks: list[str]) -> list[tuple[str, bool]]:
    """(script, background): the blocks cut at each line that ends in ``&``."""
    out: list[tuple[str, bool]] = []
    for block in blocks:
        current: list[str] = []
        lines = iter(block.splitlines())
        for line in lines:
            if line.rstrip().endswith(" &"):
                if current:
                    out.append(("\n".join(current) + "\n", False))
                    current = []
                out.append((line.rstrip()[:-1].strip(), True))
            elif "<<'END'" in line:  # a here-document: its lines go with it
                current.append(line)
                for body in lines:
                    current.append(body)
                    if body == "END":
                        break
            else:
                current.append(line)
        if current:
            out.append(("\n".join(current) + "\n", False))
    return out


def test_the_pilot_runs_as_typed_from_a_fresh_folder(tmp_path):
    blocks = pilot_blocks()
    assert len(blocks) == 4, blocks
    port, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HOME": str(tmp_path),  # the committee's machine remembers the audit head here
        "KIOSK_CENTRAL_WITNESS": str(tmp_path / ".local" / "witnessed.json"),
    }
    background: list[subprocess.Popen] = []
    outputs: list[str] = []
    try:
        for script, in_background in segments(blocks):
            script = script.replace("8080", str(port)).replace("9464", str(metrics))
            if in_background:
                log = open(tmp_path / "serve.log", "ab")
                background.append(
                    subprocess.Popen(
                        ["bash", "-c", f"exec {script}"], cwd=tmp_path, env=env, stdout=log, stderr=log
                    )
                )
                log.close()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    assert background[-1].poll() is None, (tmp_path / "serve.log").read_text()
                    try:
                        if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                            break
                    except requests.RequestException:
                        time.sleep(0.1)
                continue
            r = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert r.returncode == 0, f"{script}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
            assert "Traceback" not in r.stderr and "[Errno" not in r.stderr, r.stderr
            outputs.append(r.stdout)
    finally:
        for proc in background:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    committee, kiosk, case = outputs[0], outputs[-2], outputs[-1]
    assert "the committee is founded by Alice and Bob" in committee
    syncs = [line for line in kiosk.splitlines() if line.startswith("uploaded ")]
    assert len(syncs) == 2 and syncs[1].startswith("uploaded 1 (duplicates 0), set aside 0, pending 0"), kiosk
    kiosk_id = Path(tmp_path / "registered.txt").read_text().split()[0]
    assert kiosk_id in kiosk  # status lists it
    assert "case OB-2026-001: the pass checked in once" in case and "1 records opened" in case, case
    assert not list(tmp_path.joinpath("server-keys").glob("root.key"))
    assert sorted(p.name for p in (tmp_path / "server-keys").iterdir()) == [
        "bundle.key",
        "receipt.key",
        "root.pub",
    ]
