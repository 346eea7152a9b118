"""The committee's audit log: append-only, hash-chained, each entry signed by the member who
acted. It is also the one record of who the members are and which outbreak cases are open:
:func:`replay` folds the verified log into that state, so nothing a committee command relies
on can be changed without breaking the chain or a signature.

An entry is canonical JSON::

    {"seq": n, "at": unix time, "member": member id, "action": "...", "detail": {...},
     "prev": hash of entry n-1 (64 zeros for the first)}

``hash`` = SHA-256 of ``b"venue-kiosk audit v1\\0" + entry``; ``signature`` = the member's
Ed25519 signature over the hash.

The committee is founded by two people, each signing their own entry with their own key
(``member_found``: the entry names the founder's public key and is signed by it), before
anything else is logged; the two founders are independent of each other. A store made by
an older `init` starts with an unsigned bootstrap ``member_add`` instead (``member`` =
"bootstrap"), which still counts as the first founder. Every later ``member_add`` names the
new member's public key, so anyone holding the log can verify every signature with nothing
else. Publishing the head (count and hash) outside the system pins the log: changing,
deleting, reordering or truncating any entry at or below a published head fails
:func:`verify`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.auditheads import CONTEXT, GENESIS, entry_hash, member_id  # noqa: F401 (re-exported)
from kiosk.core.faults import Refusal

BOOTSTRAP = "bootstrap"
ROOT = "root"  # the signer of a manifest_publish entry: the authority's offline root key
FOUNDER = "founder"  # who added a founder: nobody (each founder signs their own entry)
FOUNDERS = 2  # the committee acts once this many founders have signed in


class AuditError(Refusal):
    """The log does not verify, or an action is not allowed; the message says which entry."""


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass(frozen=True)
class Entry:
    seq: int
    at: float
    member: str
    action: str
    detail: dict
    prev: str
    hash: str
    signature: str | None
    raw: str  # the canonical JSON the hash covers

    @classmethod
    def parse(cls, raw: str, hash_: str, signature: str | None) -> Entry:
        e = json.loads(raw)
        return cls(
            int(e["seq"]),
            float(e["at"]),
            str(e["member"]),
            str(e["action"]),
            dict(e["detail"]),
            str(e["prev"]),
            hash_,
            signature,
            raw,
        )


def make_entry(
    *,
    seq: int,
    at: float,
    prev: str,
    action: str,
    detail: dict,
    key: Ed25519PrivateKey | None,
    signer: str | None = None,
) -> tuple[str, str, str | None]:
    """(canonical JSON, hash, signature) of a new entry; ``key`` None only for the bootstrap;
    ``signer``: who the entry names as its signer when it is not a member (the root)."""
    who = signer or (member_id(key.public_key()) if key else BOOTSTRAP)
    raw = canonical({"seq": seq, "at": at, "member": who, "action": action, "detail": detail, "prev": prev})
    h = entry_hash(raw)
    sig = base64.b64encode(key.sign(bytes.fromhex(h))).decode() if key else None
    return raw, h, sig


@dataclass
class Member:
    member_id: str
    name: str
    public_key: Ed25519PublicKey
    added_at: float
    revoked_at: float | None = None
    added_by: str = BOOTSTRAP
    approved: bool = True  # an addition made once two members were active waits for a second
    revoke_requested_by: str | None = None  # a revocation waiting for a second member

    @property
    def active(self) -> bool:
        return self.approved and self.revoked_at is None


@dataclass
class Case:
    case_id: str
    reason: str
    from_ts: float | None
    to_ts: float | None
    opened_by: str
    opened_at: float
    approved_by: str | None = None
    approved_at: float | None = None
    closed_by: str | None = None
    closed_at: float | None = None

    @property
    def usable(self) -> bool:
        return self.approved_by is not None and self.closed_at is None

    def window(self) -> tuple[float, float]:
        """(from, to) of the case; a case logged without one (never made by `case open`)
        allows no read at all."""
        if self.from_ts is None or self.to_ts is None:
            raise AuditError(f"case {self.case_id!r} has no time window: nothing can be read for it")
        return self.from_ts, self.to_ts

    @property
    def state(self) -> str:
        return "closed" if self.closed_at else "approved" if self.approved_by else "awaiting approval"


@dataclass
class State:
    members: dict[str, Member] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    count: int = 0
    head: str = GENESIS
    risk_version: int = 0  # set by a risk change: the list's version with its statement
    founders: list[str] = field(default_factory=list)  # member ids, in the order they signed in
    founded: bool = False  # two members have been active together: the committee may act
    share_holders: set[str] = field(default_factory=set)  # who holds a share of the wrap key now
    # What the store must hold, as the log says it (kiosk-central audit verify compares):
    root: Ed25519PublicKey | None = None  # the root that signs manifests, from its own entries
    manifests: dict[int, str] = field(default_factory=dict)  # version -> hash of the document
    # statement id -> (hash of its document, expiry, the members who signed it)
    statements: dict[str, tuple[str, float, tuple[str, ...]]] = field(default_factory=dict)
    exposures: tuple[int, str, float] | None = None  # the last list: version, hash, expires
    holds: dict[str, dict[str, str]] = field(default_factory=dict)  # case -> day -> digest of ids

    @property
    def founding_open(self) -> bool:
        """A second founder may still sign in: fewer than two founders, nothing else logged."""
        return not self.founded and len(self.founders) < FOUNDERS and self.count == len(self.founders)

    def active_member(self, key: Ed25519PrivateKey | Ed25519PublicKey) -> Member:
        pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        m = self.members.get(member_id(pub))
        if m is None or m.revoked_at is not None:
            raise AuditError(f"this key ({member_id(pub)}) is not a registered, active committee member")
        if not m.approved:
            raise AuditError(
                f"member {m.name} ({m.member_id}) is not approved yet: a second member runs "
                "`kiosk-central member approve`"
            )
        return m

    def independent(
        self, a: Ed25519PrivateKey | Ed25519PublicKey, b: Ed25519PrivateKey | Ed25519PublicKey
    ) -> bool:
        """Two different active members, neither of whom added the other."""
        x, y = self.active_member(a), self.active_member(b)
        return x.member_id != y.member_id and x.added_by != y.member_id and y.added_by != x.member_id

    def active_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.active]

    def name_of(self, mid: str | None) -> str:
        m = self.members.get(mid or "")
        return m.name if m else (mid or "-")

    def usable_case(self, case_id: str) -> Case:
        case = self.cases.get(case_id)
        if case is None:
            raise AuditError(f"case {case_id!r}: no such outbreak case (kiosk-central case open)")
        if case.closed_at is not None:
            raise AuditError(f"case {case_id!r} is closed")
        if case.approved_by is None:
            raise AuditError(
                f"case {case_id!r} is not approved yet: a second member must run `kiosk-central case approve`"
            )
        return case


COSIGNER, COSIGNATURE = "with", "with_signature"


def _cosigned_bytes(action: str, detail: dict) -> bytes:
    plain = {k: v for k, v in detail.items() if k not in (COSIGNER, COSIGNATURE)}
    return b"venue-kiosk audit cosign v1\0" + canonical({"action": action, "detail": plain}).encode()


def cosigned(action: str, detail: dict, second: Ed25519PrivateKey) -> dict:
    """``detail`` naming a second member, who signs the action and the detail: two people
    acted, and the log shows both."""
    sig = second.sign(_cosigned_bytes(action, detail))
    return {**detail, COSIGNER: member_id(second.public_key()), COSIGNATURE: base64.b64encode(sig).decode()}


def _check_cosigner(state: State, e: Entry) -> None:
    if COSIGNER not in e.detail:
        return
    m = state.members.get(str(e.detail[COSIGNER]))
    if m is None or not m.approved or (m.revoked_at is not None and m.revoked_at <= e.at):
        raise AuditError(
            f"entry {e.seq}: its second member {e.detail[COSIGNER]} was not an active member then"
        )
    if m.member_id == e.member:
        raise AuditError(f"entry {e.seq}: the second member is the signer")
    try:
        m.public_key.verify(
            base64.b64decode(e.detail.get(COSIGNATURE, "")), _cosigned_bytes(e.action, e.detail)
        )
    except (InvalidSignature, ValueError):
        raise AuditError(f"entry {e.seq}: the second member's signature does not verify") from None


# Actions two members take together: the entry names the second and carries their signature.
TWO_MEMBER_ACTIONS = {"read", "trace", "keys_retire"}


def _usable_then(state: State, e: Entry) -> Case:
    """The entry's case, approved and not closed when the entry was made."""
    case = state.cases.get(str(e.detail.get("case")))
    if case is None:
        raise AuditError(
            f"entry {e.seq}: {e.action} for case {e.detail.get('case')!r}, which no entry opened"
        )
    if case.approved_by is None or case.closed_at is not None:
        raise AuditError(
            f"entry {e.seq}: {e.action} for case {case.case_id!r}, which was not approved and open then"
        )
    return case


def _independent_pair(state: State, a: str, b: str) -> bool:
    x, y = state.members.get(a), state.members.get(b)
    return x is not None and y is not None and a != b and x.added_by != b and y.added_by != a


def check_rules(state: State, e: Entry) -> None:
    """What the committee's rules say of an entry, beyond its signature: who may do what, for
    which case, with whom (kiosk-central audit verify fails on any breach)."""
    d = e.detail
    needs_two = e.action in TWO_MEMBER_ACTIONS or (e.action == "keys_share" and d.get("reissued"))
    if needs_two and COSIGNER not in d:
        raise AuditError(f"entry {e.seq}: {e.action} by one member alone (it takes two)")
    if e.action in ("read", "trace"):
        case = _usable_then(state, e)
        lo, hi = case.window()
        if float(d.get("from", lo)) < lo or float(d.get("to", hi)) > hi:
            raise AuditError(f"entry {e.seq}: a {e.action} reaching outside case {case.case_id!r}'s window")
    elif e.action == "risk_change":
        _usable_then(state, e)
        if int(d["level"]) >= int(d.get("deny_level", 3)) and not (
            COSIGNER in d and _independent_pair(state, e.member, str(d[COSIGNER]))
        ):
            raise AuditError(
                f"entry {e.seq}: a refusal (level {d['level']}) by one member, or by two who are not "
                "independent (it takes two independent members)"
            )
    elif e.action == "case_close":
        closing = state.cases.get(str(d.get("case")))
        if closing is None or closing.closed_at is not None:
            raise AuditError(f"entry {e.seq}: closes case {d.get('case')!r}, which is not open")
    elif e.action == "member_revoke":  # a request, or its confirmation: either would leave ...
        m = state.members.get(str(d.get("member_id")))
        if m is not None and m.member_id in state.share_holders:
            left = {x.member_id for x in state.active_members()} & state.share_holders - {m.member_id}
            if len(left) < 2:
                raise AuditError(
                    f"entry {e.seq}: revoking {m.name} left fewer than two members holding a share of the "
                    "committee's keys (nobody could open records or share them again)"
                )


def _apply(state: State, e: Entry) -> None:
    d = e.detail
    _check_cosigner(state, e)
    check_rules(state, e)
    if e.action == "manifest_publish":
        state.manifests[int(d["version"])] = str(d["hash"])
        if d.get("next_root"):
            state.root = Ed25519PublicKey.from_public_bytes(base64.b64decode(d["next_root"]))
        return
    if e.action == "keys_share":
        state.share_holders = {str(x) for x in d.get("members", [])}
    elif e.action == "risk_change" and d.get("statement"):
        signers = (e.member, *([str(d[COSIGNER])] if d.get(COSIGNER) else []))
        hashed, expires = str(d.get("doc_hash", "")), float(d.get("expires", 0))
        state.statements[str(d["statement"])] = (hashed, expires, signers)
    elif e.action == "exposures_publish":
        state.exposures = (int(d["version"]), str(d["hash"]), float(d["expires"]))
    if e.action in ("read", "trace") and isinstance(d.get("held"), dict):
        state.holds[str(d["case"])] = {str(k): str(v) for k, v in d["held"].items()}
    if e.action == "case_close":
        state.holds.pop(str(d["case"]), None)
    if e.action == "member_found":
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(d["public_key"]))
        mid = member_id(pub)
        if mid != d["member_id"] or mid != e.member or mid in state.members:
            raise AuditError(f"entry {e.seq}: a founder's entry names and is signed by that founder")
        if not state.founding_open:
            raise AuditError(f"entry {e.seq}: a founder signs in only while the committee is being founded")
        state.members[mid] = Member(mid, str(d["name"]), pub, e.at, added_by=FOUNDER)
        state.founders.append(mid)
    elif e.action == "member_add":
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(d["public_key"]))
        mid = member_id(pub)
        if mid != d["member_id"] or mid in state.members:
            raise AuditError(f"entry {e.seq}: bad or repeated member_add")
        # Once two members are active, an addition waits for a second member's approval.
        pending = len(state.active_members()) >= 2
        state.members[mid] = Member(mid, str(d["name"]), pub, e.at, added_by=e.member, approved=not pending)
        if e.member == BOOTSTRAP:
            state.founders.append(mid)
    elif e.action == "member_approve":
        m = state.members[d["member_id"]]
        if m.approved or e.member in (m.added_by, m.member_id):
            raise AuditError(f"entry {e.seq}: an addition is approved by a member other than who made it")
        m.approved = True
    elif e.action == "member_revoke":
        m = state.members[d["member_id"]]
        if m.revoked_at is not None:
            raise AuditError(f"entry {e.seq}: member revoked twice")
        if len(state.active_members()) >= 2 and m.revoke_requested_by is None:
            m.revoke_requested_by = e.member  # a request: a second member confirms it
        elif m.revoke_requested_by is not None and e.member == m.revoke_requested_by:
            raise AuditError(f"entry {e.seq}: a revocation is confirmed by a second member")
        else:
            m.revoked_at = e.at
    elif e.action == "case_open":
        if d["case"] in state.cases:
            raise AuditError(f"entry {e.seq}: case {d['case']!r} opened twice")
        state.cases[d["case"]] = Case(d["case"], d["reason"], d.get("from"), d.get("to"), e.member, e.at)
    elif e.action == "case_approve":
        case = state.cases[d["case"]]
        if e.member == case.opened_by:
            raise AuditError(f"entry {e.seq}: a case is approved by a second member")
        if state.members[e.member].added_by == case.opened_by:
            raise AuditError(f"entry {e.seq}: a member the opener added cannot approve the opener's case")
        case.approved_by, case.approved_at = e.member, e.at
    elif e.action == "case_close":
        state.cases[d["case"]].closed_by, state.cases[d["case"]].closed_at = e.member, e.at
    if len(state.active_members()) >= FOUNDERS:
        state.founded = True


def held_digests(rows) -> dict[str, str]:
    """A case's held records as the log names them: per capture day (UTC), a digest of the
    sorted record ids held that day. ``rows``: (record id, capture time). A row deleted or
    added around the log changes its day's digest; a day past the longest retention is
    dropped by the purge as a whole."""
    import hashlib
    from datetime import UTC, datetime

    days: dict[str, list[str]] = {}
    for record_id, captured_at in rows:
        day = datetime.fromtimestamp(float(captured_at), UTC).strftime("%Y-%m-%d")
        days.setdefault(day, []).append(str(record_id))
    return {
        day: hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()[:16]
        for day, ids in sorted(days.items())
    }


def _b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def extend(state: State, e: Entry) -> State:
    """``state`` after one more entry: its link, hash and signature verified, the committee's
    rules checked, its effect folded in (in place; returned for convenience). The one step
    both a whole replay and a command that has just appended an entry take."""
    i = state.count + 1
    if e.seq != i:
        raise AuditError(f"entry {i}: sequence {e.seq} where {i} was expected (deleted or reordered entries)")
    if entry_hash(e.raw) != e.hash:
        raise AuditError(f"entry {i}: its content does not match its hash (changed)")
    if e.prev != state.head:
        raise AuditError(f"entry {i}: does not follow entry {i - 1} (the chain is broken)")
    if e.action == "member_found":  # signed by the founder it names (proof of their key)
        try:
            founder = Ed25519PublicKey.from_public_bytes(base64.b64decode(e.detail["public_key"]))
            founder.verify(base64.b64decode(e.signature or ""), bytes.fromhex(e.hash))
        except (InvalidSignature, ValueError, KeyError, TypeError):
            raise AuditError(f"entry {i}: the founder's signature does not verify") from None
    elif i == 1:
        if e.member != BOOTSTRAP or e.action != "member_add" or e.signature is not None:
            raise AuditError("entry 1: the log must start with a founder (or the bootstrap member_add)")
    elif e.member == ROOT:  # a manifest the root published, signed by the root itself
        if e.action != "manifest_publish":
            raise AuditError(f"entry {i}: the root signs only manifest_publish entries")
        try:
            root = state.root or Ed25519PublicKey.from_public_bytes(base64.b64decode(e.detail["root"]))
            if state.root is not None and e.detail.get("root") not in (None, _b64(state.root)):
                raise ValueError("another root")
            root.verify(base64.b64decode(e.signature or ""), bytes.fromhex(e.hash))
        except (InvalidSignature, ValueError, KeyError, TypeError):
            raise AuditError(f"entry {i}: a manifest entry not signed by the authority's root") from None
        state.root = root
    else:
        signer = state.members.get(e.member)
        if (
            signer is None
            or not signer.approved
            or (signer.revoked_at is not None and signer.revoked_at <= e.at)
        ):
            raise AuditError(f"entry {i}: signed by {e.member}, not an active member then")
        try:
            signer.public_key.verify(base64.b64decode(e.signature or ""), bytes.fromhex(e.hash))
        except (InvalidSignature, ValueError):
            raise AuditError(f"entry {i}: the signature does not verify") from None
    try:
        _apply(state, e)
    except (KeyError, ValueError, TypeError) as err:
        raise AuditError(f"entry {i}: {e.action} does not fit the log ({err})") from None
    state.count, state.head = i, e.hash
    return state


def replay(entries: list[Entry], *, head: str | None = None, head_count: int | None = None) -> State:
    """Verify every link and signature, in order, and fold the log into members and cases.
    ``head``: a published head hash (and its count, if known) the log must contain."""
    state = State()
    for e in entries:
        extend(state, e)
    if head is not None:
        pinned = [e for e in entries if e.hash == head]
        if not pinned or (head_count is not None and pinned[0].seq != head_count):
            raise AuditError(
                f"the published head {head[:16]}... is not in this log (entries "
                "below it were changed, removed or truncated)"
            )
    return state
