"""The fleet at a glance: each kiosk's state from what the server keeps (when it was last
seen and last uploaded, the health summary it signed, the sequence aggregates ingest keeps),
and the reasons one needs attention. Read from a row per kiosk, never from the records, so
`status` takes about the same time at 10,000 kiosks as at ten. Pure: ``now`` is passed in."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiosk.core.timing import DAY
from sync.central.storage.interface import Storage

HOUR = 3600.0


@dataclass(frozen=True)
class Thresholds:
    silent_h: float = 6.0  # no request at all for this long
    stale_bundle_h: float = 26.0  # the bundle the kiosk holds is older than this
    skew_s: float = 60.0  # its clock this far from the server's
    disk_low_mb: int = 200
    fault_h: float = 24.0  # a fault this recent


@dataclass(frozen=True)
class Epoch:
    epoch: int
    records: int
    low: int
    high: int
    missing_runs: tuple[tuple[int, int], ...]
    reused: int


@dataclass(frozen=True)
class KioskState:
    kiosk_id: str
    venue: str
    revoked: bool
    registered_at: float
    seen_at: float | None
    last_upload_at: float | None
    skew_s: float | None
    health: dict[str, Any] | None
    health_at: float | None
    epochs: tuple[Epoch, ...]
    untagged: int
    reasons: tuple[str, ...] = field(default=())

    @property
    def records(self) -> int:
        return sum(e.records for e in self.epochs)

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for e in self.epochs for a, b in e.missing_runs)

    def bundle_age(self, now: float) -> float | None:
        """How old the kiosk's bundle is now: the age it reported, plus the time since it did."""
        age = (self.health or {}).get("bundle_age_s")
        if age is None or self.health_at is None:
            return None
        return float(age) + (now - self.health_at)

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        return "attention" if self.reasons else "ok"


def _h(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def reasons_for(k: KioskState, *, now: float, t: Thresholds) -> tuple[str, ...]:
    """Why a kiosk needs someone to look at it, most urgent first (empty: it is fine)."""
    if k.revoked:
        return ()
    out: list[str] = []
    if k.seen_at is None:
        out.append("never seen")
    elif now - k.seen_at > t.silent_h * HOUR:
        out.append(f"silent {ago(now - k.seen_at)}")
    h = k.health or {}
    fault_at = h.get("fault_at")
    if h.get("fault") and fault_at and now - fault_at <= t.fault_h * HOUR:
        out.append(f"fault: {h['fault']} {ago(now - fault_at)} ago")
    age = k.bundle_age(now)
    if age is not None and age > t.stale_bundle_h * HOUR:
        out.append(f"stale bundle ({ago(age)})")
    if h and not h.get("clock_synced", True):
        out.append("clock unsynced")
    if k.skew_s is not None and abs(k.skew_s) > t.skew_s:
        out.append(f"clock {round(k.skew_s):+d} s off")
    disk = h.get("disk_free_mb")
    if disk is not None and disk < t.disk_low_mb:
        out.append(f"disk low ({disk} MB free)")
    if h.get("set_aside"):
        out.append(f"{h['set_aside']} records set aside")
    if k.missing:
        out.append(f"{k.missing} missing records")
    if any(e.reused for e in k.epochs):
        out.append("sequence numbers reused")
    update = str(h.get("update") or "")
    if update.startswith(("rolled back", "refused")):  # the kiosk said why, signed
        out.append(f"update {update}")
    return tuple(out)


def fleet(storage: Storage, *, now: float, thresholds: Thresholds = Thresholds()) -> list[KioskState]:
    """Every kiosk, those needing attention first (then by kiosk id), revoked ones last."""
    seen = storage.kiosks_seen()
    gaps: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for kid, epoch, low, high in storage.sequence_gaps():
        gaps.setdefault((kid, epoch), []).append((low, high))
    epochs: dict[str, list[Epoch]] = {}
    for s in storage.sequence_summary():
        epochs.setdefault(s.kiosk_id, []).append(
            Epoch(s.epoch, s.received, s.low, s.high, tuple(gaps.get((s.kiosk_id, s.epoch), [])), s.reused)
        )
    untagged = storage.untagged_by_kiosk()
    out = []
    for k in storage.kiosks():
        h = seen.get(k.kiosk_id)
        state = KioskState(
            kiosk_id=k.kiosk_id,
            venue=k.venue,
            revoked=k.revoked_at is not None,
            registered_at=k.registered_at,
            seen_at=h.seen_at if h else None,
            last_upload_at=h.last_upload_at if h else None,
            skew_s=h.skew_s if h else None,
            health=_h(h.summary) if h else None,
            health_at=h.summary_at if h else None,
            epochs=tuple(epochs.get(k.kiosk_id, [])),
            untagged=untagged.get(k.kiosk_id, 0),
        )
        out.append(_with_reasons(state, now, thresholds))
    order = {"attention": 0, "ok": 1, "revoked": 2}
    return sorted(out, key=lambda k: (order[k.state], k.kiosk_id))


def _with_reasons(k: KioskState, now: float, t: Thresholds) -> KioskState:
    from dataclasses import replace

    return replace(k, reasons=reasons_for(k, now=now, t=t))


# The kinds of reasons, as summaries and /metrics count them.
REASON_KINDS = (
    "never seen",
    "silent",
    "fault",
    "stale bundle",
    "clock",
    "disk low",
    "set aside",
    "missing",
    "reused",
    "update",
)


def reason_kind(reason: str) -> str:
    """The kind of a reason, for counting: 'silent 7 h' -> 'silent'."""
    for kind in REASON_KINDS:
        if kind in reason:
            return kind
    return reason


def summary(kiosks: list[KioskState]) -> dict[str, Any]:
    states = Counter(k.state for k in kiosks)
    kinds = Counter(reason_kind(r) for k in kiosks for r in k.reasons)
    return {
        "kiosks": len(kiosks),
        "ok": states["ok"],
        "attention": states["attention"],
        "revoked": states["revoked"],
        "reasons": dict(sorted(kinds.items())),
        "versions": dict(
            sorted(
                Counter(
                    str(k.health["version"])
                    for k in kiosks
                    if k.health and not k.revoked and k.health.get("version")
                ).items()
            )
        ),
    }


def summary_line(kiosks: list[KioskState]) -> str:
    s = summary(kiosks)
    why = ", ".join(f"{kind} {n}" for kind, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1]))
    return (
        f"{s['kiosks']} kiosks: {s['ok']} ok, {s['attention']} need attention"
        + (f" ({why})" if why else "")
        + f", {s['revoked']} revoked"
        + ("; versions " + ", ".join(f"{v} ({n})" for v, n in s["versions"].items()) if s["versions"] else "")
    )


def day_of(ts: float | None) -> str:
    """A day as the server keeps an upload's time (no time of day: issue 33)."""
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def iso(ts: float | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def ago(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * HOUR:
        return f"{s / 60:.0f} min"
    if s < 2 * DAY:
        return f"{s / HOUR:.0f} h"
    return f"{s / DAY:.0f} days"


def _runs(runs: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs) or "none"


def lines(kiosks: list[KioskState], *, now: float) -> list[str]:
    """What `status` prints: a line per kiosk (and one per epoch after a database reset),
    then the summary."""
    out = []
    for k in kiosks:
        h = k.health or {}
        one = len(k.epochs) <= 1
        head = f"{k.kiosk_id}  {k.venue}  {'revoked' if k.revoked else 'active'}  records {k.records}  "
        if one:
            e = k.epochs[0] if k.epochs else None
            head += "missing seq: " + (_runs(e.missing_runs) if e else "none")
            if e and e.reused:
                head += f"  REUSED seq: {e.reused}"
        else:
            head += f"epochs {len(k.epochs)}: the kiosk's database was reset {len(k.epochs) - 1} time(s)"
        seen = "never" if k.seen_at is None else f"{iso(k.seen_at)} ({ago(now - k.seen_at)} ago)"
        parts = [f"last seen {seen}", f"last upload {day_of(k.last_upload_at)}"]
        if h:
            age = k.bundle_age(now)
            parts += [
                f"pending {h.get('pending', '?')}",
                f"bundle {h.get('bundle_version') if h.get('bundle_version') is not None else 'none'}"
                + (f" ({ago(age)} old)" if age is not None else ""),
                f"clock {'synced' if h.get('clock_synced') else 'UNSYNCED'}"
                + (f" {round(k.skew_s):+d} s" if k.skew_s is not None else ""),
                f"disk {h.get('disk_free_mb', '?')} MB free",
                f"version {h.get('version') or '?'}",
                f"fault {h['fault']} at {iso(h.get('fault_at'))}" if h.get("fault") else "no fault",
            ]
        else:
            parts.append("no health reported")
        line = head + "  " + "  ".join(parts)
        if k.untagged:
            line += f"  UNTAGGED {k.untagged}: records without a search tag (trace cannot find them)"
        if k.reasons:
            line += "  ATTENTION: " + "; ".join(k.reasons)
        out.append(line)
        if not one:
            for e in k.epochs:
                out.append(
                    f"  epoch {e.epoch}: {e.records} records, seq {e.low}-{e.high}, missing seq: "
                    f"{_runs(e.missing_runs)}" + (f"  REUSED seq: {e.reused}" if e.reused else "")
                )
    out.append(summary_line(kiosks))
    return out


def as_json(kiosks: list[KioskState], *, now: float) -> dict[str, Any]:
    def one(k: KioskState) -> dict[str, Any]:
        h = k.health or {}
        return {
            "kiosk_id": k.kiosk_id,
            "venue": k.venue,
            "state": k.state,
            "reasons": list(k.reasons),
            "last_seen": None if k.seen_at is None else iso(k.seen_at),
            "last_seen_ago_s": None if k.seen_at is None else round(now - k.seen_at),
            "last_upload": None if k.last_upload_at is None else day_of(k.last_upload_at),
            "clock_skew_s": k.skew_s,
            "records": k.records,
            "missing": k.missing,
            "epochs": [
                {
                    "epoch": e.epoch,
                    "records": e.records,
                    "low": e.low,
                    "high": e.high,
                    "missing": [list(r) for r in e.missing_runs],
                    "reused": e.reused,
                }
                for e in k.epochs
            ],
            "untagged": k.untagged,
            "health": (
                {k2: v for k2, v in h.items() if k2 != "at"}
                | {"fault_at": iso(h["fault_at"]) if h.get("fault_at") else None}
                if h
                else None
            ),
            "health_reported": None if k.health_at is None else iso(k.health_at),
        }

    return {"generated": iso(now), "summary": summary(kiosks), "kiosks": [one(k) for k in kiosks]}


def status_lines(
    storage: Storage, *, now: float | None = None, thresholds: Thresholds | None = None
) -> list[str]:
    """What `status` prints: a line per kiosk, those needing attention first with the
    reasons, then a summary; from a row per kiosk, never from the records."""
    import time

    now = time.time() if now is None else now
    return lines(fleet(storage, now=now, thresholds=thresholds or Thresholds()), now=now)
