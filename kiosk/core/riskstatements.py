"""Risk changes, each signed by the committee member who made it.

A statement names the passes (by pass ref), the level, the outbreak case it serves, when it
was made and when it stops applying. A kiosk accepts one only when a member key in the
root-signed manifest verifies it, and applies it only until its expiry on the kiosk's own
clock, offline too. The server relays statements: it can withhold one (delay), never make
one, so it cannot refuse anyone by itself. For each pass the newest statement wins (a
level 0 statement takes a pass off the list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.decision import MAX_RISK
from kiosk.core.signed import SignedDocError, open_doc, sign_doc
from kiosk.core.timing import DAY

KIND = "venue-kiosk risk statement v1"
MAX_EXPIRY_DAYS = 90  # an entry stops applying within the longest retention


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
) -> dict[str, Any]:
    refs = sorted(set(pass_refs))
    if not refs or not all(isinstance(r, str) and len(r) == 32 for r in refs):
        raise ValueError("a risk statement names one or more pass refs")
    if not 0 <= level <= MAX_RISK:
        raise ValueError(f"risk level must be 0..{MAX_RISK}")
    if not at < expires_at <= at + MAX_EXPIRY_DAYS * DAY:
        raise ValueError(f"a risk statement expires after it is made and within {MAX_EXPIRY_DAYS} days")
    return {
        "id": statement_id,
        "pass_refs": refs,
        "level": int(level),
        "case": case_id,
        "at": float(at),
        "expires": float(expires_at),
        "member": member_id,
    }


def sign_statement(payload: Mapping[str, Any], member_key: Ed25519PrivateKey) -> bytes:
    return sign_doc(KIND, payload, member_key)


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
    if not 0 <= st.level <= MAX_RISK or not st.at < st.expires_at <= st.at + MAX_EXPIRY_DAYS * DAY:
        raise StatementError("risk statement out of bounds")
    if not st.pass_refs or not all(len(r) == 32 for r in st.pass_refs):
        raise StatementError("malformed risk statement")
    return st


def merge(statements: Iterable[RiskStatement]) -> dict[str, tuple[int, float, tuple[float, str]]]:
    """pass ref -> (level, expires_at, order) from the newest statement naming it."""
    out: dict[str, tuple[int, float, tuple[float, str]]] = {}
    for st in statements:
        for ref in st.pass_refs:
            held = out.get(ref)
            if held is None or st.order > held[2]:
                out[ref] = (st.level, st.expires_at, st.order)
    return out
