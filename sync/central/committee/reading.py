"""The health committee's reading of check-ins: only for a recorded outbreak case, and
every reading logged (who, when, which case, which kiosk and time window, how many records)
before anything is opened. The server itself never holds the sealing private key; this
runs where the committee keeps it.

A record sealed to a key the committee no longer holds (destroyed when its retention period
ended: crypto-shredding) cannot be opened by anyone; it is counted, not shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kiosk.core.faults import UsageError
from kiosk.core.seal import open_sealed
from kiosk.core.timing import time_bucket
from sync.central.committee.keychain import keys_to_try


@dataclass(frozen=True)
class Reading:
    read_id: int
    records: list[dict]  # opened: when, where, which pass, at what level, what was decided
    unopenable: int  # sealed to a key not held (or damaged)
    unsearched: int = 0  # with a pass id: records in the window carrying no search tag
    flagged: tuple[str, ...] = ()  # one line per record whose sealed venue is not its kiosk's


def open_records(
    storage,
    keys: Mapping,
    *,
    case_id: str,
    member_key,
    second_key=None,
    kiosk_id: str | None = None,
    from_ts: float | None = None,
    to_ts: float | None = None,
    pass_id: bytes | None = None,
    tag_keys: dict | None = None,
    hash_key: bytes | None = None,
    now: float,
    state=None,
) -> Reading:
    """Open the records of an approved, open case's window (or a part of it), after logging
    the reading in the audit log (signed) and the reads table. With ``pass_id`` and the tag
    keys, only that pass's records are found (by search tag) and opened, nobody else's."""
    from sync.central.committee.members import authorise_read, opened_hash, readers
    from sync.central.committee.tagsearch import records_of_pass

    venues = {k.kiosk_id: k.venue for k in storage.kiosks()}  # read once: a fleet is long
    selected: list[dict] = []

    def select(a: float, b: float) -> list[dict]:
        """What the reading opens: asked once, by the authorisation that logs it first."""
        selected[:] = _select(a, b)
        return selected

    def _select(a: float, b: float) -> list[dict]:
        # by the 5-minute bucket kept in clear: a record of the window's first minutes may be
        # in the bucket before; its sealed time then says whether it is in the window
        if pass_id is not None and tag_keys:
            rows = records_of_pass(storage, tag_keys, list(venues), pass_id, a, b)
            return [r for r in rows if kiosk_id is None or r["kiosk_id"] == kiosk_id]
        return storage.records_between(kiosk_id, time_bucket(a), b)

    if kiosk_id is not None and storage.kiosk(kiosk_id) is None:
        raise UsageError(
            f"--kiosk {kiosk_id}: no such kiosk registered (`kiosk-central status` lists them): "
            "nothing was opened or logged"
        )
    filters = {
        "kiosk": kiosk_id,
        "pass": opened_hash(hash_key, pass_id.hex()) if pass_id and hash_key else None,
        "by_tag": bool(pass_id is not None and tag_keys),
    }
    state, case, start, end = authorise_read(
        storage,
        key=member_key,
        case_id=case_id,
        action="read",
        from_ts=from_ts,
        to_ts=to_ts,
        detail=filters,
        now=now,
        touched=select,
        hash_key=hash_key,
        second=second_key,
        state=state,
    )
    rows = selected  # what the log names, not asked a second time
    reader = readers(state, member_key, second_key)
    read_id = storage.log_read(
        reader=reader,
        case_id=case_id,
        kiosk_id=kiosk_id,
        from_ts=start,
        to_ts=end,
        records=len(rows),
        now=now,
    )
    opened, unopenable, flagged = [], 0, []
    for row in rows:
        content = open_record(row, keys)
        if content is None:
            unopenable += 1
            continue
        if pass_id is not None and content["pass_id"] != pass_id:
            continue
        if not start <= exact_time(row, content) < end:
            continue  # in the bucket before the window, not in the window
        shown = _shown(row, content)
        registered = venues.get(row["kiosk_id"], "?")
        shown["venue_matches"] = content["venue"] == registered
        if not shown["venue_matches"]:  # not silently mixed in: a kiosk moved, or lying
            flagged.append(
                f"record {row['record_id']} at kiosk {row['kiosk_id']}: sealed venue "
                f"{content['venue']!r}, registered venue {registered!r}"
            )
        opened.append(shown)
    unsearched = storage.untagged_between(start, end) if filters["by_tag"] else 0
    return Reading(read_id, opened, unopenable, unsearched, tuple(flagged))


def exact_time(row: dict, content: dict) -> float:
    """A record's time: the exact one sealed in it (kiosks since issue 33), else its bucket."""
    at = content.get("at")
    return float(at) if isinstance(at, (int, float)) else float(row["captured_at"])


def open_record(row: dict, keys: Mapping) -> dict | None:
    """A stored record's sealed content, or None when no key held opens it (its key was
    destroyed, or it is damaged). The server keeps no key id: the keys of the record's day
    are tried (sync.central.committee.keychain)."""
    for key in keys_to_try(keys, row):
        try:
            return open_sealed(row["sealed"], key, record_id=row["record_id"])
        except Exception:  # another day's key, or a damaged blob: InvalidTag and friends
            continue
    return None


def _shown(row: dict, content: dict) -> dict:
    return {
        "record_id": row["record_id"],
        "kiosk_id": row["kiosk_id"],
        "seq": row["seq"],
        "captured_at": datetime.fromtimestamp(exact_time(row, content), UTC).isoformat(),
        "clock_synced": bool(row["clock_synced"]),
        "venue": content["venue"],
        "pass_id": content["pass_id"].hex(),
        "risk_level": content["risk_level"],
        "decision": content["decision"],
        "reason": content["reason"],
    }
