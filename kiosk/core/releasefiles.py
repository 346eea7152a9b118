"""Releases of the device software, as both sides read them (pure: no file, network or clock).

A release is a folder `scripts/release` builds: the project's wheel, the wheels of what
`[device]` needs for the Pi (unless built --project-only), and ``release.json`` naming them
with their SHA-256. The committee publishes it with `kiosk-central release publish`, which
adds the rollout (a share of the fleet, or named kiosks) to ``release.json`` and signs the
TUF targets metadata listing every file: what a kiosk installs is exactly what the committee
signed offline. The online server signs only TUF's snapshot and timestamp ("this is fresh").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RELEASE_FILE = "release.json"
UPDATES_PATH = "/v1/updates"  # TUF metadata under it, the targets under .../targets/
TARGETS_PREFIX = "targets/"
VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.whl$")


class ReleaseError(ValueError):
    """A release description that must not be used: the message says why."""


def version_key(version: str) -> tuple[int, int, int]:
    """A release version (MAJOR.MINOR.PATCH, digits only) as a comparable tuple."""
    m = VERSION_RE.match(version)
    if not m:
        raise ReleaseError(f"version {version[:40]!r}: not MAJOR.MINOR.PATCH")
    return int(m[1]), int(m[2]), int(m[3])


@dataclass(frozen=True)
class Rollout:
    """Who installs it: every kiosk (percent 100), a share of the fleet chosen by a hash of
    the kiosk id and the version (the same share widens, never reshuffles), or named kiosks."""

    percent: int = 100
    kiosks: tuple[str, ...] = ()

    def includes(self, kiosk_id: str, version: str) -> bool:
        if kiosk_id in self.kiosks:
            return True
        bucket = int.from_bytes(hashlib.sha256(f"{version}/{kiosk_id}".encode()).digest()[:4], "big") % 100
        return bucket < self.percent


@dataclass(frozen=True)
class Release:
    version: str
    files: Mapping[str, str]  # wheel file name -> SHA-256 (hex)
    project: str  # the project's own wheel among them
    rollout: Rollout = field(default_factory=Rollout)

    def encode(self) -> bytes:
        return (
            json.dumps(
                {
                    "version": self.version,
                    "project": self.project,
                    "files": dict(sorted(self.files.items())),
                    "rollout": {"percent": self.rollout.percent, "kiosks": sorted(self.rollout.kiosks)},
                },
                indent=1,
                sort_keys=True,
            ).encode()
            + b"\n"
        )


def read_release(data: bytes) -> Release:
    try:
        d: dict[str, Any] = json.loads(data)
        files = {str(k): str(v) for k, v in dict(d["files"]).items()}
        r = d.get("rollout") or {}
        release = Release(
            version=str(d["version"]),
            project=str(d["project"]),
            files=files,
            rollout=Rollout(int(r.get("percent", 100)), tuple(str(k) for k in r.get("kiosks", []))),
        )
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"{RELEASE_FILE}: malformed") from None
    version_key(release.version)
    if release.project not in release.files:
        raise ReleaseError(f"{RELEASE_FILE}: the project's wheel {release.project!r} is not among its files")
    for name, digest in release.files.items():
        if not FILE_RE.match(name) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ReleaseError(f"{RELEASE_FILE}: {name[:60]!r}: not a wheel with its SHA-256")
    if not 0 <= release.rollout.percent <= 100:
        raise ReleaseError(f"{RELEASE_FILE}: rollout percent {release.rollout.percent} not 0..100")
    return release


def target_path(version: str, name: str) -> str:
    """Where a release's file is among the TUF targets."""
    return f"{version}/{name}"
