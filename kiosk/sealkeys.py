"""Per-period sealing keys (crypto-shredding): which committee key seals a record.

The committee makes one X25519 key pair per period (a day) and retention class, weeks ahead
(`kiosk-central keys rotate`), and destroys each private half once its period's retention is
over (`kiosk-central keys retire`): after that no copy of those records anywhere (kiosk,
server, backup, a copied WAL) can be opened. The bundle hands kiosks the public halves with
their schedule; :class:`Sealer` picks the key of a record's capture time and class. When no
key covers that time (a kiosk offline past its keys), it falls back to the newest key it
holds for the class and the record is marked. Pure: time and keys are passed in.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from kiosk.keys import sealing_kid
from kiosk.seal import SealingKey

CLASSES = ("normal", "significant")


@dataclass(frozen=True)
class PeriodKey:
    kid: str
    klass: str              # "normal" or "significant"
    valid_from: float       # seals records captured in [valid_from, valid_to)
    valid_to: float
    destroy_after: float    # the end of its period plus its class's retention
    public: bytes           # raw X25519 public key

    def sealing_key(self) -> SealingKey:
        return SealingKey(self.kid, X25519PublicKey.from_public_bytes(self.public))

    def to_wire(self) -> dict:
        return {"kid": self.kid, "class": self.klass, "valid_from": self.valid_from,
                "valid_to": self.valid_to, "destroy_after": self.destroy_after,
                "public": base64.b64encode(self.public).decode("ascii")}

    @classmethod
    def from_wire(cls, d: dict) -> "PeriodKey":
        key = cls(kid=str(d["kid"]), klass=str(d["class"]), valid_from=float(d["valid_from"]),
                  valid_to=float(d["valid_to"]), destroy_after=float(d["destroy_after"]),
                  public=base64.b64decode(d["public"], validate=True))
        if key.klass not in CLASSES or not key.valid_from < key.valid_to <= key.destroy_after:
            raise ValueError("bad sealing period")
        if sealing_kid(X25519PublicKey.from_public_bytes(key.public)) != key.kid:
            raise ValueError("sealing period kid does not match its key")
        return key


class Sealer:
    """The key for each record: the period key of its capture time and class; without any
    period keys (a deployment that has not started rotating), the configured committee key.

    ``periods`` is asked on every record (the kiosk's verified bundle can change while it
    runs); ``key_for`` returns (key, fell_back)."""

    def __init__(self, *, fallback: SealingKey | None,
                 periods: Callable[[], Sequence[PeriodKey]] = tuple):
        self.fallback, self.periods = fallback, periods

    @property
    def kid(self) -> str:                        # what the store names when no record is made
        return self.fallback.kid if self.fallback else ""

    def key_for(self, klass: str, captured_at: float) -> tuple[SealingKey, bool]:
        keys = [k for k in self.periods() if k.klass == klass]
        covering = [k for k in keys if k.valid_from <= captured_at < k.valid_to]
        if covering:
            return max(covering, key=lambda k: k.valid_from).sealing_key(), False
        if keys:                                 # none covers now: the newest held, marked
            return max(keys, key=lambda k: k.valid_to).sealing_key(), True
        if self.fallback is None:
            raise LookupError("no sealing key at all: neither period keys nor [keys] sealing_key")
        return self.fallback, False


def covered_until(periods: Sequence[PeriodKey], now: float) -> float | None:
    """Until when every class has a key without a gap from ``now``; None if one has none now."""
    ends = []
    for klass in CLASSES:
        keys = sorted((k for k in periods if k.klass == klass), key=lambda k: k.valid_from)
        end = now
        for k in keys:
            if k.valid_from <= end < k.valid_to:
                end = k.valid_to
        if end == now:
            return None
        ends.append(end)
    return min(ends)
