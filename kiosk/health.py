"""The kiosk's health, as it reports it to the central server with each upload and bundle
poll (kiosk.core.protocol: signed by its device key): versions, the bundle's age, what waits to be
uploaded, the clock, free disk, the last fault, the epoch, uptime. Never a pass, a decision
or anything a visitor did. Faults are noted here by the loop (`note_fault`) and by sync."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from kiosk.syncstate import SyncKey

LAST_FAULT = "last_fault"  # state key: {"code": ..., "at": ...}
HEALTH_SLACK_S = 60.0  # a summary at most this far behind the last one sent is moved just past it
FAULT_CODES = ("camera", "store", "sealing", "sync", "signal")


def note_fault(store, code: str, *, now: float | None = None) -> None:
    """Remember the newest fault for the next health summary. Best effort: when the store
    itself is what fails, the fault shows as the store's (sync sees it fail too)."""
    try:
        store.set_state(LAST_FAULT, json.dumps({"code": code, "at": time.time() if now is None else now}))
    except Exception:
        pass


def _uptime() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _disk_free_mb(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return int(st.f_bavail * st.f_frsize // (1024 * 1024))


def collect_health(
    store,
    *,
    now: float,
    db_folder: Path,
    clock_synced: bool,
    clock_offset: float,
    version: str,
    manifest_version: int | None = None,
    audit_head: str | None = None,
    update: str | None = None,
) -> dict[str, Any]:
    """The summary a kiosk signs and sends (kiosk.core.protocol.HEALTH_FIELDS): its own
    figures from ``store``; what it trusts (the manifest version it holds, the audit head it
    saw) as its held trust (kiosk.trust) gives them."""
    stats = store.stats()

    def number(key: str) -> int | None:
        text = store.get_state(key)
        return int(text) if text and text.lstrip("-").isdigit() else None

    issued = store.get_state(SyncKey.BUNDLE_ISSUED_AT)
    fault: dict[str, Any] = {}
    try:
        fault = json.loads(store.get_state(LAST_FAULT) or "{}")
    except ValueError:
        pass
    sync_error, sync_at = (
        store.get_state(SyncKey.LAST_SYNC_ERROR),
        store.get_state(SyncKey.LAST_SYNC_ERROR_AT),
    )
    if sync_error and sync_at and float(sync_at) > float(fault.get("at") or 0):
        fault = {"code": "sync", "at": float(sync_at)}
    return {
        "at": round(now, 3),
        "version": version,
        "bundle_version": number(SyncKey.BUNDLE_VERSION),
        "manifest_version": manifest_version,
        "bundle_age_s": round(now - float(issued), 1) if issued else None,
        "pending": int(stats["pending"]),
        "set_aside": int(stats["set_aside"]),
        "clock_synced": bool(clock_synced),
        "clock_offset_s": round(float(clock_offset), 1),
        "disk_free_mb": _disk_free_mb(db_folder),
        "fault": str(fault["code"])[:32] if fault.get("code") else None,
        "fault_at": float(fault["at"]) if fault.get("at") else None,
        "epoch": int(store.epoch),
        "uptime_s": _uptime(),
        "audit_head": audit_head,
        "update": update,
        "oldest_pending_s": (
            None if stats.get("oldest_pending_age_s") is None else round(float(stats["oldest_pending_age_s"]))
        ),
    }


def later_than_sent(store, summary: dict[str, Any]) -> dict[str, Any]:
    """``summary``, made later than the last one this kiosk sent even when its clock's offset
    moved back a little (the server keeps only a newer summary, so a replay changes nothing);
    remembered as the last one sent. A clock set back further goes with its own time."""
    last = float(store.get_state(SyncKey.HEALTH_SENT_AT) or 0)
    if last - HEALTH_SLACK_S < float(summary["at"]) <= last:
        summary = {**summary, "at": round(last + 0.001, 3)}
    store.set_state(SyncKey.HEALTH_SENT_AT, f"{float(summary['at']):.3f}")
    return summary


def status_path(releases: Path) -> Path:
    """The updater's last outcome (kiosk.updater writes it; the health summary carries it)."""
    return releases / ".updates" / "status.json"


def read_status(releases: Path) -> dict[str, str]:
    try:
        data = json.loads(status_path(releases).read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
