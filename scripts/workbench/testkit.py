"""What the tests share, in one place (no test file imports another): paths, a fixed clock,
seeded keys, a kiosk config writer, and small rigs used by several test modules.

Everything random here is seeded, so a run is the same every time.
"""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.clock import SystemClock
from kiosk.core.keys import (
    BUNDLE_KEY,
    BUNDLE_PUB,
    ISSUER_KEY,
    ISSUER_PUB,
    SEALING_KEY,
    SEALING_PUB,
    write_private,
    write_public,
)
from workbench import ROOT

DATA = ROOT.parent / "shared" / "data" / "qr-photos"
BIN = Path(sys.executable).parent
NOW = 1_790_000_000  # a fixed wall-clock time for table tests


def seed_bytes(label: str, n: int = 32) -> bytes:
    """``n`` bytes that depend only on ``label``."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def seeded_ed25519(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed_bytes("ed25519:" + label))


def seeded_x25519(label: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(seed_bytes("x25519:" + label))


def seeded_authority(directory: Path, label: str = "authority") -> Path:
    """The files `kiosk-central keys init` writes, from keys that depend only on ``label``."""
    directory.mkdir(parents=True, exist_ok=True)
    for priv_name, pub_name, key in (
        (ISSUER_KEY, ISSUER_PUB, seeded_ed25519(label + "/issuer")),
        (SEALING_KEY, SEALING_PUB, seeded_x25519(label + "/sealing")),
        (BUNDLE_KEY, BUNDLE_PUB, seeded_ed25519(label + "/bundle")),
    ):
        write_private(directory / priv_name, key)
        write_public(directory / pub_name, key.public_key())
    return directory


def kiosk_config_text(authority: Path, db: Path, **overrides: list[str]) -> str:
    """A minimal valid kiosk config for tests, with optional raw TOML lines per section."""
    sections = {
        "kiosk": ['venue_id = "venue-test"', f'database = "{db}"'],
        "keys": [f'issuer_keys = ["{authority / ISSUER_PUB}"]', f'sealing_key = "{authority / SEALING_PUB}"'],
        "signal": ['pin_factory = "mock"'],
    }
    for section, lines in overrides.items():
        sections.setdefault(section, []).extend(lines)
    return "\n".join(f"[{s}]\n" + "\n".join(lines) for s, lines in sections.items()) + "\n"


# -- the app loop's rig ------------------------------------------------------------------------
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


# -- check-ins and the uploader ----------------------------------------------------------------
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
    from sync.uploader import Uploader

    return Uploader(
        store=store,
        server_url=url,
        kiosk_id=kiosk_id,
        device_key=device_key,
        bundle_key=load_ed25519_public(authority / BUNDLE_PUB),
        bundle_file=tmp_path / "bundle.json",
        session=kw.pop("session", closing_session()),
        **kw,
    )


# -- the committee, through the command line -------------------------------------------------
def committee_with_a_case(run: Any, tmp_path: Path, data: Path, case_id: str) -> list[Path]:
    """Two members (the first by bootstrap, the second added by the first), and a case one
    opens and the other approves, all through ``run("kiosk-central", ...)``. Returns their
    key files."""
    keys = []
    for name in ("alice", "bob"):
        run("kiosk-central", "keys", "init-member", "--dir", tmp_path / name)
        keys.append(tmp_path / name / "member.key")
    run(
        "kiosk-central",
        "member",
        "add",
        "--data",
        data,
        "--name",
        "Alice",
        "--public-key",
        tmp_path / "alice" / "member.pub",
    )
    run(
        "kiosk-central",
        "member",
        "add",
        "--data",
        data,
        "--name",
        "Bob",
        "--public-key",
        tmp_path / "bob" / "member.pub",
        "--member-key",
        keys[0],
    )
    run(
        "kiosk-central",
        "case",
        "open",
        "--data",
        data,
        "--member-key",
        keys[0],
        "--id",
        case_id,
        "--reason",
        "cluster reported by the district hospital",
    )
    run("kiosk-central", "case", "approve", "--data", data, "--member-key", keys[1], "--id", case_id)
    return keys


# -- a notify socket, as systemd holds it ------------------------------------------------------
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


__all__ = [
    "BIN",
    "DATA",
    "NOW",
    "ROOT",
    "FakeClock",
    "bound_socket",
    "closing_session",
    "fill",
    "kiosk_config_text",
    "make_uploader",
    "received",
    "seed_bytes",
    "seeded_authority",
    "seeded_ed25519",
    "seeded_x25519",
]
