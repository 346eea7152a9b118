"""Risk changes, each signed by the committee member who made it.

A statement names the passes (by pass ref), the level, the outbreak case it serves, when it
was made and when it stops applying. A kiosk accepts one only when a member key in the
root-signed manifest verifies it, and applies it only until its expiry on the kiosk's own
clock, offline too. The server relays statements: it can withhold one (delay), never make
one, so it cannot refuse anyone by itself. For each pass the newest statement wins (a
level 0 statement takes a pass off the list).

Refusing entry is the one power the system holds over a person, so it takes two: a statement
at the deny level counts at a kiosk only when a second, independent member (neither added the
other) signed it too (``with`` in the payload names them; the document carries their
``cosignature`` over the same bytes). One member's statement at that level counts one below
it: the visitor is admitted and told to get tested (:func:`effective_level`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.decision import MAX_RISK
from kiosk.core.retention import SIGNIFICANT_DAYS
from kiosk.core.signed import SignedDocError, b64, open_doc, sign_doc, unb64
from kiosk.core.timing import DAY

KIND = "venue-kiosk risk statement v1"
MAX_EXPIRY_DAYS = SIGNIFICANT_DAYS  # an entry stops applying within the longest retention


class StatementError(Exception):
    """A statement that must not be used."""


@dataclass(frozen=True)
class RiskStatement:
    statement_id: str
    pass_refs: tuple[str, ...]
    level: int
    case_id: str
    at: float
    expires_at: float
    member_id: str
    cosigner: str | None = None  # the second member who signed it too (deny-level statements)

    @property
    def order(self) -> tuple[float, str]:
        return (self.at, self.statement_id)


def statement_payload(
    *,
    statement_id: str,
    pass_refs: Iterable[str],
    level: int,
    case_id: str,
    at: float,
    expires_at: float,
    member_id: str,
    cosigner: str | None = None,
) -> dict[str, Any]:
    refs = sorted(set(pass_refs))
    if not refs or not all(isinstance(r, str) and len(r) == 32 for r in refs):
        raise ValueError("a risk statement names one or more pass refs")
    if not 0 <= level <= MAX_RISK:
        raise ValueError(f"risk level must be 0..{MAX_RISK}")
    if not at < expires_at <= at + MAX_EXPIRY_DAYS * DAY:
        raise ValueError(f"a risk statement expires after it is made and within {MAX_EXPIRY_DAYS} days")
    if cosigner is not None and cosigner == member_id:
        raise ValueError("the second member of a statement is another member")
    return {
        "id": statement_id,
        "pass_refs": refs,
        "level": int(level),
        "case": case_id,
        "at": float(at),
        "expires": float(expires_at),
        "member": member_id,
        **({"with": cosigner} if cosigner else {}),
    }


def sign_statement(
    payload: Mapping[str, Any], member_key: Ed25519PrivateKey, second: Ed25519PrivateKey | None = None
) -> bytes:
    """Signed by the member it names; with ``second``, countersigned by the member ``with``
    names (over the same bytes)."""
    doc = sign_doc(KIND, payload, member_key)
    if second is None:
        if payload.get("with"):
            raise ValueError("a statement naming a second member needs that member's signature")
        return doc
    outer = json.loads(doc)
    outer["cosignature"] = b64(second.sign(KIND.encode() + b"\0" + unb64(outer["payload"])))
    return json.dumps(outer).encode()


def verify_statement(data: bytes | str, members: Mapping[str, Ed25519PublicKey]) -> RiskStatement:
    try:
        p, key = open_doc(data, KIND, members.values())
    except SignedDocError as e:
        raise StatementError(str(e)) from None
    try:
        st = RiskStatement(
            statement_id=str(p["id"]),
            pass_refs=tuple(str(r) for r in p["pass_refs"]),
            level=int(p["level"]),
            case_id=str(p["case"]),
            at=float(p["at"]),
            expires_at=float(p["expires"]),
            member_id=str(p["member"]),
        )
    except (KeyError, TypeError, ValueError):
        raise StatementError("malformed risk statement") from None
    if members.get(st.member_id) is not key:
        raise StatementError("risk statement signed by another member than it names")
    if "with" in p:  # countersigned: the second member must have signed the same bytes
        second = members.get(str(p["with"]))
        try:
            outer = json.loads(data)
            if second is None or str(p["with"]) == st.member_id:
                raise InvalidSignature
            second.verify(unb64(outer["cosignature"]), KIND.encode() + b"\0" + unb64(outer["payload"]))
        except (InvalidSignature, ValueError, KeyError, TypeError):
            raise StatementError("risk statement's second signature does not verify") from None
        st = replace(st, cosigner=str(p["with"]))
    if not 0 <= st.level <= MAX_RISK or not st.at < st.expires_at <= st.at + MAX_EXPIRY_DAYS * DAY:
        raise StatementError("risk statement out of bounds")
    if not st.pass_refs or not all(len(r) == 32 for r in st.pass_refs):
        raise StatementError("malformed risk statement")
    return st


def effective_level(st: RiskStatement, *, deny_level: int, independent: Callable[[str, str], bool]) -> int:
    """The level a statement counts at a kiosk: at or above the deny level only when a second,
    independent member signed it too; one member alone raises a pass to one below (enter, and
    get tested), never to a refusal."""
    if st.level < deny_level:
        return st.level
    if st.cosigner is not None and independent(st.member_id, st.cosigner):
        return st.level
    return deny_level - 1


def merge(
    statements: Iterable[RiskStatement],
    *,
    deny_level: int = MAX_RISK,
    independent: Callable[[str, str], bool] = lambda a, b: a != b,
) -> dict[str, tuple[int, float, tuple[float, str]]]:
    """pass ref -> (level, expires_at, order) from the newest statement naming it, each at its
    effective level."""
    out: dict[str, tuple[int, float, tuple[float, str]]] = {}
    for st in statements:
        level = effective_level(st, deny_level=deny_level, independent=independent)
        for ref in st.pass_refs:
            held = out.get(ref)
            if held is None or st.order > held[2]:
                out[ref] = (level, st.expires_at, st.order)
    return out
