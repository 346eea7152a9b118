"""The decision core: a decoded QR text in, a frozen Decision out.

Pure by design: no camera, GPIO, SQLite or network here. The clock (``now``), the trusted
keys, the risk list and the policy are passed in, so every rule is table-testable.
``decide`` never raises, whatever it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.core.passes import PassClaims, PassError, pass_ref, verify_pass
from kiosk.core.reasons import Outcome, Reason

MAX_RISK = 3


@dataclass(frozen=True)
class Policy:
    deny_level: int = MAX_RISK  # the public rules: only the highest level is refused
    clock_skew_s: int = 300  # tolerance on issued-at and expiry for a drifting clock

    def __post_init__(self) -> None:
        if not 1 <= self.deny_level <= MAX_RISK:
            raise ValueError(f"deny_level must be 1..{MAX_RISK}, not {self.deny_level}")
        if not 0 <= self.clock_skew_s <= 86_400:
            raise ValueError("clock_skew_s must be 0..86400")


@dataclass(frozen=True)
class RiskList:
    """Pass refs (see :func:`kiosk.core.passes.pass_ref`) whose level has risen since issue."""

    levels: Mapping[str, int] = field(default_factory=dict)
    version: str = ""
    issued_at: float | None = None  # when the server made it; None = never downloaded
    # pass ref -> when its entry stops applying (the member-signed expiry), on the kiosk's clock
    expires: Mapping[str, float] = field(default_factory=dict)

    def level_for(self, pass_id: bytes, *, now: float | None = None) -> int:
        if not self.levels:
            return 0
        ref = pass_ref(pass_id)
        expires = self.expires.get(ref)
        if now is not None and expires is not None and now >= expires:
            return 0
        return self.levels.get(ref, 0)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: Reason
    risk_level: int | None = None  # the level used (higher of pass and list); None if invalid
    claims: PassClaims | None = None  # None unless the pass verified

    @property
    def recordable(self) -> bool:
        """Admitted and refused scans are recorded; invalid ones are only counted."""
        return self.outcome is not Outcome.INVALID


def invalid(reason: Reason) -> Decision:
    return Decision(Outcome.INVALID, reason)


def decide(
    text: object,
    *,
    trusted: Mapping[bytes, Ed25519PublicKey],
    risk_list: RiskList,
    policy: Policy,
    now: float,
    risk_now: float | None = None,
) -> Decision:
    """Verify ``text`` and decide admit / exposed / deny / invalid at wall-clock time ``now``
    (``risk_now``: the time risk entries' expiry is judged at, when the kiosk's clock and the
    server's disagree: kiosk.core.timing.door_time). A pass at a level above 0 and below the
    deny level is admitted as EXPOSED: the door tells its holder to get tested."""
    try:
        if not isinstance(text, str):
            return invalid(Reason.NOT_A_PASS)
        try:
            claims = verify_pass(text, trusted)
        except PassError as e:
            return invalid(e.reason)
        if now + policy.clock_skew_s < claims.issued_at:
            return invalid(Reason.NOT_YET_VALID)
        if now - policy.clock_skew_s > claims.expires_at:
            return invalid(Reason.EXPIRED)
        listed = risk_list.level_for(claims.pass_id, now=now if risk_now is None else risk_now)
        level = max(claims.risk_level, listed)
        if level >= policy.deny_level:
            reason = Reason.RISK_LEVEL if claims.risk_level >= policy.deny_level else Reason.RISK_LIST
            return Decision(Outcome.DENY, reason, level, claims)
        if level > 0:  # below the deny level: admitted, and told to get tested
            reason = Reason.RISK_LEVEL if claims.risk_level >= listed else Reason.RISK_LIST
            return Decision(Outcome.EXPOSED, reason, level, claims)
        return Decision(Outcome.ADMIT, Reason.VALID, level, claims)
    except Exception:  # belt and braces: the core must never take the loop down
        return invalid(Reason.MALFORMED)
