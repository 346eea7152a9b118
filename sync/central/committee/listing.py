"""What the committee reads, in words and in CSV: a trace and a reading for a call centre,
the cases, the log's entries, the readings. Shaped here, in the library, so the command line
only prints it and the tests check the same text. Every CSV cell is neutralised against
spreadsheet formulas (kiosk.core.console.csv_cell); every line is printable text."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from kiosk.core.console import csv_cell

RECORD_COLUMNS = (
    "captured_at",
    "venue",
    "kiosk_id",
    "pass_id",
    "risk_level",
    "decision",
    "reason",
    "record_id",
)
TRACE_COLUMNS = ("exposed_pass_id", "venue", "kiosk_id", "visit_at", "check_ins", "check_in_times")


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else "-"


def times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def write_records_csv(records: Iterable[dict[str, Any]], out: TextIO) -> None:
    """A reading for a call centre: a header, then one row a record."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(RECORD_COLUMNS)
    for rec in records:
        w.writerow([csv_cell(rec[c]) for c in RECORD_COLUMNS])


def reading_notes(reading: Any, case_id: str) -> list[str]:
    """What a reading says beside its records: what was logged, what was flagged, what could
    not be searched."""
    lines = [
        f"reading {reading.read_id} logged for case {case_id}: {len(reading.records)} records "
        f"shown, {reading.unopenable} sealed to keys no longer held"
    ]
    lines += [f"FLAGGED {line}" for line in reading.flagged]
    if reading.unsearched:
        lines.append(
            f"{reading.unsearched} records in the window carry no search tag and could not be searched "
            "for this pass (kiosks that had no tag keys then); open the window without --pass-id to "
            "read them"
        )
    return lines


def write_trace_csv(result: Any, out: TextIO) -> None:
    """A trace for a call centre: one row per exposed pass and visit it shared."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(TRACE_COLUMNS)
    for v in result.to_json()["visits"]:
        for e in v["exposed"]:
            row = (e["pass_id"], v["venue"], v["kiosk_id"], v["at"], e["count"], " ".join(e["times"]))
            w.writerow([csv_cell(x) for x in row])


def trace_lines(result: Any, *, overlap_min: float, raised_level: int | None, risk_days: float) -> list[str]:
    """A trace in words: the pass's visits, the passes present around each, what was flagged
    or not searched, what was raised."""
    out = result.to_json()
    lines = [
        f"case {result.case_id}: the pass checked in {times(len(result.visits))} "
        f"({out['from']} to {out['to']}); {result.decrypted} records opened"
    ]
    for v in out["visits"]:
        lines.append(
            f"  {v['at']}  {v['venue']} ({v['kiosk_id']}): {len(v['exposed'])} other passes "
            f"within {overlap_min:g} minutes"
        )
        for e in v["exposed"]:
            lines.append(f"      {e['pass_id']}  {e['count']} check-in(s): {', '.join(e['times'])}")
    lines += [f"  FLAGGED {line}" for line in result.flagged]
    if result.untagged:
        lines.append(
            f"  {result.untagged} records in the window carry no search tag and were not searched "
            "(kiosks without tag keys)"
        )
    if result.raised:
        lines.append(
            f"  raised {result.raised} passes to level {raised_level} on the risk list, for "
            f"{risk_days:g} days, tied to case {result.case_id}"
        )
    return lines


def case_lines(state: Any) -> list[str]:
    """Every case, its state, window, who opened and approved it, and why."""
    names = {m.member_id: m.name for m in state.members.values()}

    def day(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")

    lines = [
        f"{c.case_id}  {c.state}  {day(c.from_ts or 0)} to {day(c.to_ts or 0)}  opened by "
        f"{names.get(c.opened_by, c.opened_by)}"
        + (f", approved by {names.get(c.approved_by, c.approved_by)}" if c.approved_by else "")
        + f"  {c.reason}"
        for c in state.cases.values()
    ]
    return lines or ["no cases yet (a member opens one: kiosk-central case open ...)"]


def audit_lines(entries: Iterable[Any]) -> list[str]:
    """Every entry of the log: number, time, who (by name, from the log's own additions),
    action, detail (times as ISO 8601 in UTC), hash."""
    entries = list(entries)
    names = {
        str(e.detail["member_id"]): str(e.detail["name"])
        for e in entries
        if e.action in ("member_add", "member_found")
    }

    def shown(x: object) -> object:
        if isinstance(x, int | float) and not isinstance(x, bool):
            return datetime.fromtimestamp(float(x), UTC).isoformat(timespec="seconds")
        return x

    lines = []
    for e in entries:
        detail = {
            k: shown(v) if k in ("from", "to", "expires") else names.get(v, v) if k == "with" else v
            for k, v in e.detail.items()
            if k != "with_signature"
        }
        lines.append(
            f"{e.seq:5d}  {iso(e.at)}  {names.get(e.member, e.member):20s}  {e.action:13s}  "
            f"{json.dumps(detail, sort_keys=True, ensure_ascii=False)}  {e.hash}"
        )
    return lines


def reads_lines(reads: Iterable[dict[str, Any]]) -> list[str]:
    """Every reading and trace: who, when, for which case, kiosk, window and count."""
    lines = [
        f"{r['read_id']}  {iso(r['read_at'])}  {r['reader']}  case {r['case_id']}  "
        f"kiosk {r['kiosk_id'] or 'all'}  {r['records']} records  ({r.get('kind', 'read')}, "
        f"window {iso(r['from_ts'])} to {iso(r['to_ts'])})"
        for r in reads
    ]
    return lines or ["no readings and no traces yet: no sealed record has been opened"]
