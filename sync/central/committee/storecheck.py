"""What the store holds, checked against what the audit log says it should hold.

Holds, the exposure list, the risk statements and the manifests change only through entries
signed into the log (by a member, or by the root for a manifest). A change made around the
log, with a database login, leaves the store and the log disagreeing: this module lists
every disagreement in words. `kiosk-central audit verify` fails on any; the commands that
rely on these tables (keys retire on the holds, exposures publish and the server on the
manifests) refuse on the ones that concern them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kiosk.core.retention import SIGNIFICANT_DAYS, TOMBSTONE_DAYS
from kiosk.core.signed import doc_hash
from kiosk.core.timing import DAY
from sync.central.committee.audit import State, held_digests
from sync.central.storage.interface import CommitteeLog, RelayedDocuments, Storage

HOLD_DAYS = SIGNIFICANT_DAYS  # a hold never outlives the longest retention: older days go with the purge
STATEMENT_KEPT_DAYS = TOMBSTONE_DAYS  # the purge keeps an expired statement this long (a tombstone)


def manifest_problems(state: State, storage: RelayedDocuments) -> list[str]:
    out = []
    docs = storage.manifest_docs()
    first_logged = min(state.manifests) if state.manifests else None
    held = {v for v, _ in docs}
    for version, doc in docs:
        logged = state.manifests.get(version)
        if logged is None:
            if first_logged is not None and version > first_logged:
                out.append(
                    f"manifest version {version} is in the store, in no entry of the log (written around it)"
                )
        elif logged != doc_hash(doc):
            out.append(f"manifest version {version} in the store is not the one the log names (changed)")
    for version in sorted(set(state.manifests) - held):
        out.append(f"manifest version {version}, named in the log, is missing from the store (deleted)")
    return out


def statement_problems(state: State, storage: RelayedDocuments, *, now: float) -> list[str]:
    out = []
    rows = storage.statement_rows()
    held = set()
    for sid, doc, _ in rows:
        held.add(sid)
        logged = state.statements.get(sid)
        if logged is None:
            out.append(f"risk statement {sid} is in the store but in no entry of the log (written around it)")
        elif logged[0] and logged[0] != doc_hash(doc):
            out.append(f"risk statement {sid} in the store is not the one the log names (changed)")
    for sid, (_, expires, _signers) in sorted(state.statements.items()):
        if sid not in held and expires + STATEMENT_KEPT_DAYS * DAY > now:
            out.append(f"risk statement {sid}, named in the log and not yet purged, is missing (deleted)")
    return out


def exposure_problems(state: State, storage: RelayedDocuments, *, now: float) -> list[str]:
    held = storage.latest_exposure_list(now=0.0)
    if state.exposures is None:
        return (
            []
            if held is None
            else [f"exposure list version {held[0]} is in no entry of the log (written around it)"]
        )
    version, h, expires = state.exposures
    if held is None:
        return [] if expires <= now else [f"exposure list version {version}, in force, is missing (deleted)"]
    if held[0] != version or doc_hash(held[1]) != h:
        return [
            f"the exposure list in the store (version {held[0]}) is not the one the log names ({version})"
        ]
    return []


def hold_problems(state: State, storage: CommitteeLog, *, now: float) -> list[str]:
    """Each open case holds exactly what its readings and traces said, day by day (days past the
    longest retention left to the purge); a closed case holds nothing."""
    out = []
    rows = storage.held_rows()
    by_case: dict[str, list[tuple[str, float]]] = {}
    for case_id, record_id, captured_at in rows:
        by_case.setdefault(case_id, []).append((record_id, captured_at))
    oldest = datetime.fromtimestamp(now - (HOLD_DAYS + 1) * DAY, UTC).strftime("%Y-%m-%d")
    for case_id in sorted(set(by_case) | set(state.holds)):
        case = state.cases.get(case_id)
        if case is None or case.closed_at is not None:
            if by_case.get(case_id):
                out.append(
                    f"case {case_id} is {'closed' if case else 'unknown'} but the store holds records for it"
                )
            continue
        now_days = held_digests(by_case.get(case_id, []))
        logged = state.holds.get(case_id, {})
        for day in sorted(set(now_days) | set(logged)):
            if day < oldest:
                continue
            if now_days.get(day) != logged.get(day):
                out.append(
                    f"case {case_id}: what the store holds of {day} is not what the log says "
                    "(holds added or deleted around it)"
                )
    return out


def store_problems(state: State, storage: Storage, *, now: float) -> list[str]:
    """Every way the store disagrees with the log, in words (empty: they agree)."""
    return (
        manifest_problems(state, storage)
        + statement_problems(state, storage, now=now)
        + exposure_problems(state, storage, now=now)
        + hold_problems(state, storage, now=now)
    )
