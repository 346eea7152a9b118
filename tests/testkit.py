"""What the tests share, in one place (no test file imports another): paths, a fixed clock, a
fake clock for the app loop, check-ins and an uploader rig, the committee through the command
line, a notify socket, the venv's commands. The seeded world (keys, a committee, a case) is
the tools' too: :mod:`workbench.world`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kiosk.clock import SystemClock
from kiosk.core.keys import ROOT_PUB, write_private, write_public
from workbench import ROOT
from workbench.world import members

DATA = ROOT.parent / "shared" / "data" / "qr-photos"

BIN = Path(sys.executable).parent

NOW = 1_790_000_000  # a fixed wall-clock time for table tests


class FakeClock(SystemClock):
    """Real monotonic time plus an offset the test moves forward (to step past windows)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> float:
        return time.time() + self.offset

    def synced(self) -> bool:
        return True


def fill(store: Any, make_pass: Any, trusted: Any, n: int, *, start: float | None = None) -> list[Any]:
    """n check-ins as the app records them: one sealed, committed row each."""
    from kiosk.core.decision import Policy, RiskList, decide

    now = time.time() - n if start is None else start  # in the past, as real captures are
    texts = [make_pass(level) for level in range(4)]
    decisions = [decide(t, trusted=trusted, risk_list=RiskList(), policy=Policy(), now=NOW) for t in texts]
    return [store.record(decisions[i % 4], now=now + i, clock_synced=True) for i in range(n)]


def closing_session() -> Any:
    """One connection per request, so a fault proxy picks a fault per request."""
    import requests

    s = requests.Session()
    s.headers["Connection"] = "close"
    return s


def make_uploader(
    store: Any, url: str, kiosk_id: str, device_key: Any, authority: Path, tmp_path: Path, **kw: Any
) -> Any:
    from kiosk.core.keys import load_ed25519_public
    from kiosk.uploader import Uploader

    return Uploader(
        store=store,
        server_url=url,
        kiosk_id=kiosk_id,
        device_key=device_key,
        root_key=load_ed25519_public(authority / ROOT_PUB),
        bundle_file=tmp_path / "bundle.json",
        session=kw.pop("session", closing_session()),
        **kw,
    )


def committee_with_a_case(
    run: Any, tmp_path: Path, data: Path, case_id: str, *, to: str | None = None
) -> list[Path]:
    """Alice and Bob found the committee (each signs in with their own key), and a case Bob
    opens and Alice approves, all through ``run("kiosk-central", ...)``. The case's window is
    the test's own: from a day before now to ``to`` (default a day after now), so nothing
    the test does later falls outside it however slow the machine. Returns their key files."""
    keys = []
    for name, key in zip(("alice", "bob"), members(), strict=True):
        # Alice's and Bob's seeded keys (what `keys init-member` makes): the seeded authority's
        # wrap key is split between exactly these two (seeded_committee_keys).
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        write_private(tmp_path / name / "member.key", key)
        write_public(tmp_path / name / "member.pub", key.public_key())
        keys.append(tmp_path / name / "member.key")
    run("kiosk-central", "init", "--data", data, "--name", "Alice", "--member-key", keys[0])
    run("kiosk-central", "member", "found", "--data", data, "--name", "Bob", "--member-key", keys[1])
    now = time.time()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86_400))
    end = to or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86_400))
    run(
        "kiosk-central",
        "case",
        "open",
        "--data",
        data,
        "--member-key",
        keys[1],
        "--id",
        case_id,
        "--reason",
        "cluster reported by the district hospital",
        "--from",
        start,
        "--to",
        end,
    )
    run("kiosk-central", "case", "approve", "--data", data, "--member-key", keys[0], "--id", case_id)
    return keys


def bound_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    s.bind(str(path))
    s.settimeout(2)
    return s, str(path)


def received(sock: socket.socket, *, quiet_s: float = 0.2) -> list[str]:
    out = []
    sock.settimeout(quiet_s)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except TimeoutError:
        return out


def run_bin(
    *args: Any, check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """One of the venv's commands (``kiosk``, ``kiosk-central``) as a user runs it: its own
    process, output captured; with ``check``, a non-zero exit fails with what it printed."""
    p = subprocess.run(
        [str(BIN / str(args[0])), *map(str, args[1:])], capture_output=True, text=True, timeout=timeout, **kw
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def build_release(tmp_path: Path, version: str, *, change: str = "", broken: bool = False) -> Path:
    """A release of this checkout (as it is) as ``version``, built from a commit in a clone;
    ``change``: a visible change (in `kiosk --help`); ``broken``: it does not start."""
    from workbench.release import build, snapshot

    src = snapshot(ROOT, tmp_path / f"src-{version}", version=version)
    if change or broken:
        cli = src / "kiosk" / "cli.py"
        text = cli.read_text()
        if change:
            text = text.replace(
                'description="Venue check-in kiosk"', f'description="Venue check-in kiosk, {change}"'
            )
        if broken:
            text = text.replace(
                "import argparse\n", "import argparse\nimport a_module_this_release_forgot  # noqa\n", 1
            )
        cli.write_text(text)
        git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "commit", "-qam", f"release {version}"], check=True)
    out = tmp_path / f"release-{version}"
    build(src, out, project_only=True)
    return out
