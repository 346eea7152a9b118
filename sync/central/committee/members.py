"""The committee's actions, each signed by the acting member and appended to the audit log
(sync/central/audit.py) after the log has been verified: adding members, opening,
approving and closing outbreak cases, reading records, changing the risk list.

Nothing reads sealed records without an approved, open case, and no read reaches outside
its case's window. A case needs a second member's approval, so no single person can open
records.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.keys import raw_public
from kiosk.core.passes import pass_ref
from kiosk.core.retention import SIGNIFICANT_DAYS
from kiosk.core.signed import doc_hash
from kiosk.core.timing import DAY
from sync.central.committee.audit import (
    BOOTSTRAP,
    ROOT,
    AuditError,
    Case,
    Entry,
    State,
    check_rules,
    cosigned,
    extend,
    held_digests,
    make_entry,
    member_id,
    replay,
)
from sync.central.storage.interface import CommitteeLog

CASE_MAX_AGE_DAYS = SIGNIFICANT_DAYS  # a window reaches back at most the longest retention
CASE_MAX_AHEAD_DAYS = 14  # and ends at most this far ahead
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")


def state_of(storage: CommitteeLog, *, head: str | None = None, head_count: int | None = None) -> State:
    """The verified log, folded: raises AuditError if any entry was tampered with, or if the
    log is shorter than the length the store recorded (entries deleted from its end)."""
    return read_log(storage, head=head, head_count=head_count)[1]


def read_log(
    storage: CommitteeLog, *, head: str | None = None, head_count: int | None = None
) -> tuple[list[Entry], State]:
    """The log's entries and their verified state, read once (:func:`state_of`)."""
    entries = [Entry.parse(*row) for row in storage.audit_entries()]
    recorded = storage.audit_length()
    if len(entries) < recorded:
        raise AuditError(
            f"tampering: the audit log holds {len(entries)} entries but the store recorded {recorded}: "
            "entries were deleted from its end; every command refuses until it is restored from a backup"
        )
    return entries, replay(entries, head=head, head_count=head_count)


def _append(
    storage,
    *,
    action: str,
    detail: dict,
    key: Ed25519PrivateKey | None,
    now: float,
    check=None,
    second: Ed25519PrivateKey | None = None,
    statement: tuple[str, str, float] | None = None,
    signer: str | None = None,
    state: State | None = None,
) -> State:
    """Check the signer (and ``check(state)``) against the verified log, append, and return
    the state after the entry. ``state``: the log as this command verified it already (read
    once a command, handed down; kept current here), else verified now. ``second``: the other
    member acting with the signer (opening records needs two): named in the entry and
    countersigning its action and detail."""
    state = state if state is not None else state_of(storage)
    founding = action == "member_found" or (action == "member_add" and key is None)
    if not founding and not state.founded:
        raise AuditError(NOT_FOUNDED)
    if key is not None and action != "member_found" and signer is None:
        state.active_member(key)
    if second is not None:
        state.active_member(second)
        if key is None or member_id(second.public_key()) == member_id(key.public_key()):
            raise AuditError("the second member must be a different member from the first")
        detail = cosigned(action, detail, second)
    if check:
        check(state)
    who = signer or (member_id(key.public_key()) if key else BOOTSTRAP)
    # The committee's rules, as `audit verify` applies them: a command refuses what the log
    # would then fail on (one source of the rules: audit.check_rules).
    check_rules(state, Entry(state.count + 1, now, who, action, detail, state.head, "", None, ""))

    made: list[tuple[str, str, str | None]] = []

    def build(seq: int, prev: str):
        made.append(
            make_entry(seq=seq, at=now, prev=prev, action=action, detail=detail, key=key, signer=signer)
        )
        return made[-1]

    if statement is None:
        storage.audit_append(build)
    else:  # a risk statement, kept in the same transaction as its entry
        statement_id, doc, expires_at = statement
        state.risk_version = storage.audit_append_statement(build, statement_id, doc, expires_at=expires_at)
    _follow(storage, state, Entry.parse(*made[-1]))
    return state


def _follow(storage: CommitteeLog, state: State, entry: Entry) -> None:
    """``state`` after the entry this command appended; if another command appended in
    between, the whole log verified again (in place: whoever holds ``state`` sees it)."""
    if entry.seq == state.count + 1 and entry.prev == state.head:
        extend(state, entry)
        return
    fresh = state_of(storage)
    fresh.risk_version = state.risk_version
    vars(state).update(vars(fresh))


NOT_FOUNDED = (
    "the committee is not founded yet: it is founded by two people before anything else, each "
    "signing in with their own key: `kiosk-central member found --name NAME --member-key FILE` "
    "(with the store's --data or --database), one each"
)


def found_member(
    storage, *, name: str, key: Ed25519PrivateKey, now: float, state: State | None = None
) -> str:
    """A founder signs in with their own key: the first (on an empty store, by `init`) or the
    second (`member found`). The entry names the founder's public key and is signed by it, so
    nobody can found the committee with someone else's key; the two founders are independent
    of each other (either approves the other's case). Returns the member id."""
    if not name.strip():
        raise AuditError("a founder needs a name")
    mid = member_id(key.public_key())

    def check(state: State) -> None:
        if mid in state.members:
            raise AuditError(
                f"{mid} ({state.members[mid].name}) is a member already: a founder is another person"
            )
        if not state.founding_open:
            raise AuditError(
                "the committee is founded already (two founders signed in): later members are added "
                "by a member (`kiosk-central member add`) and approved by another"
            )
        if not state.members and storage.audit_length() > 0:
            raise AuditError("tampering: this store was initialised but its audit log is empty")

    _append(
        storage,
        action="member_found",
        now=now,
        key=key,
        check=check,
        state=state,
        detail={
            "member_id": mid,
            "name": name.strip(),
            "public_key": base64.b64encode(raw_public(key.public_key())).decode(),
        },
    )
    return mid


def found_committee(
    storage: CommitteeLog, founders: list[tuple[str, Ed25519PrivateKey]], *, now: float
) -> list[str]:
    """Both founders signing in, one after the other (the tests' and tools' shortcut for the
    two `init` / `member found` commands, which two people run with their own keys)."""
    return [found_member(storage, name=name, key=key, now=now) for name, key in founders]


def add_member(
    storage,
    *,
    name: str,
    public_key: Ed25519PublicKey,
    key: Ed25519PrivateKey | None,
    now: float,
    bootstrap: bool = False,
    state: State | None = None,
) -> str:
    """The first member is the bootstrap, added only by `kiosk-central init` on an empty
    store (``bootstrap``); every later one is added by an active member, and once two are
    active it waits for a second member's approval."""
    if not name.strip():
        raise AuditError("a member needs a name")

    def check(state: State) -> None:
        if state.members and key is None:
            raise AuditError("adding a member needs --member-key of an active member")
        if not state.members and (key is not None or not bootstrap):
            raise AuditError("the first member is added only by `kiosk-central init` on an empty store")
        if not state.members and storage.audit_length() > 0:
            raise AuditError("tampering: this store was initialised but its audit log is empty")
        if member_id(public_key) in state.members:
            raise AuditError(f"{member_id(public_key)} is already a member")

    _append(
        storage,
        action="member_add",
        now=now,
        key=key,
        check=check,
        state=state,
        detail={
            "member_id": member_id(public_key),
            "name": name.strip(),
            "public_key": base64.b64encode(raw_public(public_key)).decode(),
        },
    )
    return member_id(public_key)


def approve_member(
    storage, *, key: Ed25519PrivateKey, member: str, now: float, state: State | None = None
) -> str:
    """A second member approves a pending addition or confirms a requested revocation.
    ``member``: the member's id or name. Returns what was done."""

    def target(state: State):
        found = [m for m in state.members.values() if member in (m.member_id, m.name)]
        if len(found) != 1:
            raise AuditError(f"member {member!r}: no such member (or the name is not unique: use the id)")
        return found[0]

    state = state if state is not None else state_of(storage)
    m = target(state)
    me = member_id(key.public_key())
    if not m.approved:
        if me in (m.added_by, m.member_id):
            raise AuditError(f"{m.name} was added by this member: a second member approves the addition")
        _append(
            storage, action="member_approve", now=now, key=key, detail={"member_id": m.member_id}, state=state
        )
        return f"member {m.name} ({m.member_id}) approved: active"
    if m.revoke_requested_by is not None and m.revoked_at is None:
        if me == m.revoke_requested_by:
            raise AuditError(f"this member asked to revoke {m.name}: a second member confirms it")
        _append(
            storage, action="member_revoke", now=now, key=key, detail={"member_id": m.member_id}, state=state
        )
        return f"member {m.name} ({m.member_id}) revoked"
    raise AuditError(f"member {m.name}: nothing waits for approval")


def revoke_member(
    storage, *, key: Ed25519PrivateKey, member: str, now: float, state: State | None = None
) -> str:
    """Revoke a member: at once while one member is active, else a request a second member
    confirms with `member approve`."""
    state = state if state is not None else state_of(storage)
    found = [m for m in state.members.values() if member in (m.member_id, m.name)]
    if len(found) != 1:
        raise AuditError(f"member {member!r}: no such member (or the name is not unique: use the id)")
    m = found[0]
    if m.revoked_at is not None or m.revoke_requested_by is not None:
        raise AuditError(f"member {m.name} is revoked already, or a revocation waits for approval")
    after = _append(
        storage, action="member_revoke", now=now, key=key, detail={"member_id": m.member_id}, state=state
    )
    if len(after.active_members()) >= 2:
        return f"revocation of {m.name} requested: a second member confirms it with `member approve`"
    return f"member {m.name} ({m.member_id}) revoked"


def open_case(
    storage,
    *,
    key: Ed25519PrivateKey,
    case_id: str,
    reason: str,
    from_ts: float | None,
    to_ts: float | None,
    now: float,
    state: State | None = None,
) -> None:
    if not CASE_ID.match(case_id):
        raise AuditError(f"case id {case_id!r}: 3 to 64 letters, digits, '.', '_' or '-'")
    if len(reason.strip()) < 10:
        raise AuditError("a case needs a reason (what outbreak, who reported it): at least 10 characters")
    if from_ts is None or to_ts is None or not from_ts < to_ts:
        raise AuditError("a case needs the time window it covers: --from T --to T, from before to")
    if from_ts < now - CASE_MAX_AGE_DAYS * DAY:
        raise AuditError(
            f"--from: a case window starts at most {CASE_MAX_AGE_DAYS} days ago (the longest retention): "
            "nothing older is kept"
        )
    if to_ts > now + CASE_MAX_AHEAD_DAYS * DAY:
        raise AuditError(f"--to: a case window ends at most {CASE_MAX_AHEAD_DAYS} days ahead")

    def check(state: State) -> None:
        if case_id in state.cases:
            raise AuditError(f"case {case_id!r} exists already")

    _append(
        storage,
        action="case_open",
        now=now,
        key=key,
        check=check,
        detail={"case": case_id, "reason": reason.strip(), "from": from_ts, "to": to_ts},
        state=state,
    )


def approve_case(
    storage, *, key: Ed25519PrivateKey, case_id: str, now: float, state: State | None = None
) -> None:
    def check(state: State) -> None:
        case = state.cases.get(case_id)
        if case is None:
            raise AuditError(f"case {case_id!r}: no such case")
        if case.approved_by or case.closed_at:
            raise AuditError(f"case {case_id!r} is {case.state} already")
        me = member_id(key.public_key())
        if case.opened_by == me:
            raise AuditError(f"case {case_id!r} was opened by this member: a second member approves it")
        if state.members[me].added_by == case.opened_by:
            raise AuditError(
                f"case {case_id!r}: this member was added by the case's opener, so cannot approve "
                "the opener's case (a member independent of the opener approves it)"
            )

    _append(
        storage, action="case_approve", now=now, key=key, check=check, detail={"case": case_id}, state=state
    )


def close_case(
    storage, *, key: Ed25519PrivateKey, case_id: str, now: float, state: State | None = None
) -> None:
    def check(state: State) -> None:
        case = state.cases.get(case_id)
        if case is None or case.closed_at:
            raise AuditError(f"case {case_id!r}: no such open case")

    _append(
        storage, action="case_close", now=now, key=key, check=check, detail={"case": case_id}, state=state
    )
    storage.release_holds(case_id)  # its records go at their own deletion time again


def authorise_read(
    storage,
    *,
    key: Ed25519PrivateKey,
    case_id: str,
    action: str,
    from_ts: float | None,
    to_ts: float | None,
    detail: dict,
    touched,
    hash_key: bytes | None = None,
    second: Ed25519PrivateKey | None = None,
    now: float,
    state: State | None = None,
) -> tuple[State, Case, float, float]:
    """Before any record is opened: an active member, an approved, open case, a window inside
    the case's (the case's own when none is asked), and the read logged with the rows it
    will open (``touched(start, end)``): how many, the kiosks they come from and, with
    ``hash_key``, their record ids as keyed hashes (the committee's: the server cannot tell
    which of its records were opened).
    Returns (state, case, from, to)."""
    state = state if state is not None else state_of(storage)
    state.active_member(key)
    case = state.usable_case(case_id)
    case_from, case_to = case.window()
    start = case_from if from_ts is None else from_ts
    end = case_to if to_ts is None else to_ts
    if start < case_from or end > case_to or not start < end:
        raise AuditError(
            f"case {case_id!r} covers {_iso(case_from)} to {_iso(case_to)}: a read cannot reach outside it"
        )
    rows = list(touched(start, end))
    logged = {"case": case_id, "from": start, "to": end, **detail, "records": len(rows)}
    logged["kiosks"] = sorted({r["kiosk_id"] for r in rows})
    if hash_key is not None:
        logged["opened"] = sorted(opened_hash(hash_key, r["record_id"]) for r in rows)
    # What the case holds after this, per day: a hold deleted or added around the log shows.
    held = [(r, t) for _, r, t in storage.held_rows(case_id)] + [
        (r["record_id"], r["captured_at"]) for r in rows
    ]
    logged["held"] = held_digests(held)
    _append(storage, action=action, now=now, key=key, detail=logged, second=second, state=state)
    storage.hold_records(case_id, rows)  # kept while the case is open
    return state, case, start, end


def readers(state: State, key: Ed25519PrivateKey, second: Ed25519PrivateKey | None) -> str:
    """Who read, as the reads table names them: both members when two acted."""
    names = [state.active_member(key).name] + ([state.active_member(second).name] if second else [])
    return " + ".join(names)


def opened_hash(hash_key: bytes, record_id: str) -> str:
    """A record id (or a pass id in hex) as the audit log names it: a keyed hash only the
    committee can match, while it holds the key (destroyed with the day's keys)."""
    import hashlib
    import hmac

    return hmac.new(hash_key, record_id.encode(), hashlib.sha256).hexdigest()[:24]


def entry_expiry(level: int, asked: float, *, now: float) -> float:
    """When a risk entry stops applying: when asked, but a lowering (level 0) lasts as long as
    anything it could lower (the longest an entry lives), so it outlasts the raise it undoes."""
    from kiosk.core.riskstatements import MAX_EXPIRY_DAYS

    return now + MAX_EXPIRY_DAYS * DAY if level == 0 else asked


def change_risk(
    storage,
    *,
    key: Ed25519PrivateKey,
    case_id: str,
    pass_ids: list[bytes],
    level: int,
    expires_at: float,
    hash_key: bytes,
    second: Ed25519PrivateKey | None = None,
    deny_level: int = 3,
    now: float,
    state: State | None = None,
) -> int:
    """The one way a risk level changes (`set-risk`, `trace --raise-risk`): the acting member
    must be active and the case usable; the member signs a statement kiosks verify against
    the member keys in the root's manifest (so the server cannot make one), the audit entry
    is appended first, then the statement is kept for kiosks. A lowering (level 0) lasts at
    least as long as what it lowers. At the deny level (refused entry) a second, independent
    member (``second``) signs the statement too: kiosks count it only then. Returns the risk
    list's version."""
    import secrets

    from kiosk.core.riskstatements import MAX_EXPIRY_DAYS, sign_statement, statement_payload

    if not now < expires_at <= now + MAX_EXPIRY_DAYS * DAY:
        raise AuditError(f"a risk entry expires after now and within {MAX_EXPIRY_DAYS} days")
    state = state if state is not None else state_of(storage)
    state.active_member(key)
    state.usable_case(case_id)
    if level >= deny_level:
        if second is None:
            raise AuditError(
                f"level {level} refuses entry at every door: it takes two independent members (give "
                "--member-key twice, one file of each); one member alone may set levels below it"
            )
        if not state.independent(key, second):
            raise AuditError(
                "the second member must be independent of the first (neither added the other): "
                "a refusal is two people's decision"
            )
    refs = sorted(pass_ref(p) for p in pass_ids)
    expires_at = entry_expiry(level, expires_at, now=now)
    detail: dict = {"case": case_id, "level": level, "expires": expires_at}
    # The log names the passes by keyed hashes under a key retired with the periods: once it
    # is gone, nobody can tell from the log which passes a case exposed.
    detail["passes"] = sorted(opened_hash(hash_key, p.hex()) for p in pass_ids)
    statement_id = secrets.token_hex(16)
    detail["statement"] = statement_id
    payload = statement_payload(
        statement_id=statement_id,
        pass_refs=refs,
        level=level,
        case_id=case_id,
        at=now,
        expires_at=expires_at,
        member_id=member_id(key.public_key()),
        cosigner=member_id(second.public_key()) if second is not None and level >= deny_level else None,
    )
    doc = sign_statement(payload, key, second if level >= deny_level else None).decode("ascii")
    detail["doc_hash"] = doc_hash(doc)  # the statement the store keeps is this one
    detail["deny_level"] = deny_level
    after = _append(
        storage,
        action="risk_change",
        now=now,
        key=key,
        detail=detail,
        second=second,
        statement=(statement_id, doc, expires_at),
        state=state,
    )
    return after.risk_version


def log_keys_shared(
    storage,
    *,
    key: Ed25519PrivateKey,
    wrap_id: str,
    members: list[str],
    reissued: bool,
    now: float,
    second: Ed25519PrivateKey | None = None,
    state: State | None = None,
) -> None:
    """Who holds a share of the committee's wrap key from now on (and who re-issued it)."""
    _append(
        storage,
        action="keys_share",
        now=now,
        key=key,
        second=second,
        state=state,
        detail={"wrap_id": wrap_id, "members": members, "reissued": reissued},
    )


def log_keys_retired(
    storage,
    *,
    key: Ed25519PrivateKey,
    periods: list,
    now: float,
    kept: list | None = None,
    second: Ed25519PrivateKey | None = None,
    state: State | None = None,
) -> None:
    _append(
        storage,
        action="keys_retire",
        now=now,
        key=key,
        second=second,
        state=state,
        detail={
            "periods": [{"kid": k.kid, "class": k.klass, "from": k.valid_from} for k in periods],
            "kept_for_cases": [{"kid": k.kid, "class": k.klass, "from": k.valid_from} for k in kept or []],
        },
    )


def log_exposures(
    storage,
    *,
    key: Ed25519PrivateKey,
    version: int,
    doc: str,
    expires_at: float,
    now: float,
    state: State | None = None,
) -> None:
    """An exposure list a member publishes, named in the log before the store keeps it."""
    _append(
        storage,
        action="exposures_publish",
        now=now,
        key=key,
        state=state,
        detail={"version": int(version), "hash": doc_hash(doc), "expires": float(expires_at)},
    )


def log_manifest(
    storage,
    *,
    root: Ed25519PrivateKey,
    version: int,
    doc: str,
    next_root=None,
    now: float,
    state: State | None = None,
) -> bool:
    """A manifest the root publishes, named in the log (signed by the root itself) before the
    store keeps it: a manifest written around the log shows. Before the committee is founded
    there is no log to write to yet: False, nothing logged."""
    import base64

    state = state if state is not None else state_of(storage)
    if not state.founded:
        return False
    detail = {
        "version": int(version),
        "hash": doc_hash(doc),
        "root": base64.b64encode(root.public_key().public_bytes_raw()).decode(),
    }
    if next_root is not None:
        detail["next_root"] = base64.b64encode(next_root.public_bytes_raw()).decode()
    _append(storage, action="manifest_publish", now=now, key=root, detail=detail, signer=ROOT, state=state)
    return True


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def unlock_committee(keys_dir, state: State, first: Ed25519PrivateKey, second: Ed25519PrivateKey):
    """The committee's wrap key, rebuilt in memory from two members' shares: both must be
    active members in the verified log (``state``), and their shares must open."""
    from pathlib import Path

    from sync.central.committee.custody import unlock

    state.active_member(first)
    state.active_member(second)
    return unlock(Path(keys_dir), [first, second], active={m.member_id for m in state.active_members()})
