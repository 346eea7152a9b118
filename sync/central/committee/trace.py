"""Contact tracing for an approved outbreak case, without reading everyone's movements.

1. The infected pass's check-ins are found by their search tags (an HMAC of the pass id
   under each period's tag key, which only the committee and the capturing kiosk can make):
   one index look-up per period, nothing opened.
2. Only the records at those kiosks within the overlap (default 30 minutes either side) are
   opened, plus the pass's own check-ins to confirm them; nothing else in the window is.
3. The other passes present are listed per visit; ``raise_level`` puts them on the risk list
   the kiosks download, tied to the case and expiring.

Records show only their 5-minute bucket in clear (the exact time is sealed): a trace opens
the pass's own check-ins first, then only the records whose bucket can fall within the
overlap of one of them, and keeps those within it by their sealed times. Each of the two
steps is logged in the audit log (case, filter, overlap, the records it will open) before
anything of it is opened. A record whose sealed venue differs from its kiosk's
registered venue is flagged, not silently mixed in. Records without a search tag (kiosks
from before tags, or without their period's key) cannot be found this way: they are
counted and reported, never opened wholesale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kiosk.core.timing import DAY, time_bucket  # noqa: E402
from sync.central.committee import members as committee
from sync.central.committee.audit import State
from sync.central.committee.reading import exact_time, open_record
from sync.central.committee.tagsearch import records_of_pass


@dataclass
class Visit:
    kiosk_id: str
    venue: str
    at: float
    record_id: str
    exposed: dict[str, list[float]] = field(default_factory=dict)  # pass id hex -> times


@dataclass
class TraceResult:
    case_id: str
    from_ts: float
    to_ts: float
    visits: list[Visit]
    decrypted: int
    untagged: int
    flagged: list[str]  # one line per record whose venue does not match
    raised: int = 0

    @property
    def exposed_passes(self) -> set[str]:
        return {p for v in self.visits for p in v.exposed}

    def to_json(self) -> dict:
        return {
            "case": self.case_id,
            "from": _iso(self.from_ts),
            "to": _iso(self.to_ts),
            "records_opened": self.decrypted,
            "untagged_in_window": self.untagged,
            "flagged": self.flagged,
            "raised": self.raised,
            "visits": [
                {
                    "kiosk_id": v.kiosk_id,
                    "venue": v.venue,
                    "at": _iso(v.at),
                    "exposed": [
                        {"pass_id": p, "times": [_iso(t) for t in ts], "count": len(ts)}
                        for p, ts in sorted(v.exposed.items())
                    ],
                }
                for v in self.visits
            ],
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _need(hash_key: bytes | None) -> bytes:
    if hash_key is None:
        raise ValueError("raising risk needs the audit hash key (the exposed passes are logged by it)")
    return hash_key


def _logged_and_opened(
    storage, rows: list[dict], sealing_keys: Mapping, *, key, second, case_id: str, start: float,
    end: float, detail: dict, hash_key: bytes | None, now: float, state: State,
) -> dict[str, dict | None]:  # fmt: skip
    """One step of a trace: logged (the audit log, the reads table, the holds), then opened."""
    committee.authorise_read(
        storage, key=key, case_id=case_id, action="trace", from_ts=start, to_ts=end, detail=detail,
        touched=lambda a, b: rows, hash_key=hash_key, second=second, now=now, state=state,
    )  # fmt: skip
    storage.log_read(
        reader=committee.readers(state, key, second), case_id=case_id, kiosk_id=None, from_ts=start,
        to_ts=end, records=len(rows), now=now, kind="trace",
    )  # fmt: skip
    return {r["record_id"]: open_record(r, sealing_keys) for r in rows}


def trace(
    storage,
    sealing_keys: Mapping,
    tag_keys: dict,
    *,
    member_key,
    second_key=None,
    case_id: str,
    pass_id: bytes,
    from_ts: float | None = None,
    to_ts: float | None = None,
    overlap_s: float = 1800,
    raise_level: int | None = None,
    risk_days: float = 14,
    hash_key: bytes | None = None,
    deny_level: int = 3,
    now: float,
    state: State | None = None,
) -> TraceResult:
    """``sealing_keys``: kid -> committee private key; ``tag_keys``: valid_from ->
    (valid_to, key), as sync.central.keyring.tag_keys gives them. ``state``: the log as the
    command verified it (read once, handed down), else verified here."""
    state = state if state is not None else committee.state_of(storage)
    state.active_member(member_key)
    case_from, case_to = state.usable_case(case_id).window()
    start = case_from if from_ts is None else from_ts
    end = case_to if to_ts is None else to_ts
    # Records show only their 5-minute bucket in clear; the exact time is sealed. So, in two
    # steps, each logged before anything of it is opened: the pass's own check-ins (found by
    # their tags, per venue and day), opened for their exact times; then only the records at
    # those kiosks whose bucket can fall within the overlap of one of them.
    venues = {k.kiosk_id: k.venue for k in storage.kiosks()}  # read once: a fleet is long
    own = records_of_pass(storage, tag_keys, list(venues), pass_id, start, end)  # per venue and day
    detail = {
        "pass": committee.opened_hash(hash_key, pass_id.hex()) if hash_key else None,
        "overlap_s": overlap_s,
        "raise_level": raise_level,
    }
    opened = _logged_and_opened(
        storage, own, sealing_keys, key=member_key, second=second_key, case_id=case_id,
        start=start, end=end, detail={**detail, "step": "own"}, hash_key=hash_key, now=now, state=state,
    )  # fmt: skip
    visits = []
    rows = {r["record_id"]: r for r in own}
    for row in own:
        content = opened.get(row["record_id"])
        if content is None or content["pass_id"] != pass_id:
            continue  # not this pass (or its key is gone)
        at = exact_time(row, content)
        if start <= at < end:
            visits.append(Visit(row["kiosk_id"], venues.get(row["kiosk_id"], "?"), at, row["record_id"]))
    around: dict[str, dict] = {}
    for v in visits:
        for r in storage.records_between(
            v.kiosk_id,
            max(time_bucket(start), time_bucket(v.at - overlap_s)),
            min(end, v.at + overlap_s + 1e-6),
        ):
            if r["record_id"] not in rows:
                around[r["record_id"]] = r
    if around:
        opened |= _logged_and_opened(
            storage, list(around.values()), sealing_keys, key=member_key, second=second_key,
            case_id=case_id, start=start, end=end, detail={**detail, "step": "around"},
            hash_key=hash_key, now=now, state=state,
        )  # fmt: skip
        rows |= around
    flagged = []
    for rid, content in opened.items():
        r = rows[rid]
        registered = venues.get(r["kiosk_id"], "?")
        if content is not None and content["venue"] != registered:
            flagged.append(
                f"record {rid} at kiosk {r['kiosk_id']}: sealed venue "
                f"{content['venue']!r}, registered venue {registered!r}"
            )
    for v in visits:
        for rid, content in opened.items():
            r = rows[rid]
            if content is None or content["pass_id"] == pass_id or r["kiosk_id"] != v.kiosk_id:
                continue
            at = exact_time(r, content)
            if abs(at - v.at) <= overlap_s:
                v.exposed.setdefault(content["pass_id"].hex(), []).append(at)
    result = TraceResult(
        case_id,
        start,
        end,
        visits,
        decrypted=len(opened),
        untagged=storage.untagged_between(start, end),
        flagged=flagged,
    )
    if raise_level is not None and result.exposed_passes:
        expires = now + risk_days * DAY
        committee.change_risk(
            storage,
            key=member_key,
            case_id=case_id,
            pass_ids=[bytes.fromhex(p) for p in result.exposed_passes],
            level=raise_level,
            expires_at=expires,
            hash_key=_need(hash_key),
            second=second_key,
            deny_level=deny_level,
            now=now,
            state=state,
        )
        result.raised = len(result.exposed_passes)
    return result
