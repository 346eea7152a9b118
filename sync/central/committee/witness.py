"""Witnessed audit: what a member's machine, and the kiosks, remember of the log's head.

Each member's machine keeps the last head it verified (per store) in a small file; every
committee command checks that the log still extends it and refuses otherwise, so deleting
or rewriting the tail is caught by the next member who acts, without anyone publishing a
head by hand. Kiosks report the highest head their bundles carried; `audit verify` checks
the log against every one of those too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sync.central.committee.audit import AuditError, Entry

WITNESS_ENV = "KIOSK_CENTRAL_WITNESS"  # the file; default ~/.local/state/kiosk-central/witnessed.json


def witness_file() -> Path:
    configured = os.environ.get(WITNESS_ENV)
    if configured:
        return Path(configured)
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "kiosk-central" / "witnessed.json"


def _load(path: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AuditError(f"{path}: the heads this machine verified cannot be read ({e}): fix or remove it")
    return data if isinstance(data, dict) else {}


def check_extends(store: str, entries: list[Entry], *, path: Path | None = None) -> None:
    """Refuse a log that no longer extends the head this machine verified for ``store``."""
    path = path or witness_file()
    seen = _load(path).get(store)
    if not seen:
        return
    count, head = int(seen[0]), str(seen[1])  # type: ignore[call-overload]
    if len(entries) < count or entries[count - 1].hash != head:
        raise AuditError(
            f"tampering: the audit log no longer extends the head this machine verified (entry {count}, "
            f"hash {head[:16]}...): entries were deleted or rewritten since; every command refuses until "
            "it is restored from a backup"
        )


def remember(store: str, count: int, head: str, *, path: Path | None = None) -> None:
    path = path or witness_file()
    data = _load(path)
    held = data.get(store)
    if held and int(held[0]) > count:  # type: ignore[call-overload]
        return
    data[store] = [count, head]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".witnessed-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_reported(entries: list[Entry], reported: Sequence[tuple[str, int, str, float]]) -> list[str]:
    """What kiosks saw that the log no longer holds: one line each (empty when all match)."""
    problems = []
    for kiosk_id, seq, head, _ in reported:
        if seq > len(entries) or entries[seq - 1].hash != head:
            problems.append(
                f"kiosk {kiosk_id} saw entry {seq} with hash {head[:16]}..., which the log no longer has"
            )
    return problems
