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
import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.core.keys import sealing_kid
from kiosk.core.seal import SealingKey

CLASSES = ("normal", "significant")


@dataclass(frozen=True)
class PeriodKey:
    kid: str
    klass: str  # "normal" or "significant"
    valid_from: float  # seals records captured in [valid_from, valid_to)
    valid_to: float
    destroy_after: float  # the end of its period plus its class's retention
    public: bytes  # raw X25519 public key

    def sealing_key(self) -> SealingKey:
        return SealingKey(self.kid, X25519PublicKey.from_public_bytes(self.public))

    def to_wire(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "class": self.klass,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "destroy_after": self.destroy_after,
            "public": base64.b64encode(self.public).decode("ascii"),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> PeriodKey:
        key = cls(
            kid=str(d["kid"]),
            klass=str(d["class"]),
            valid_from=float(d["valid_from"]),
            valid_to=float(d["valid_to"]),
            destroy_after=float(d["destroy_after"]),
            public=base64.b64decode(d["public"], validate=True),
        )
        if key.klass not in CLASSES or not key.valid_from < key.valid_to <= key.destroy_after:
            raise ValueError("bad sealing period")
        if sealing_kid(X25519PublicKey.from_public_bytes(key.public)) != key.kid:
            raise ValueError("sealing period kid does not match its key")
        return key


class NoSealingKey(LookupError):
    """No period key at all: the record cannot be sealed, so it is not made (amber)."""


class Sealer:
    """The key for each record: the period key of its capture time and class (when none
    covers it, the newest held, and the record is marked). ``fallback``: a fixed key, for
    tools and tests only; the kiosk passes none, so without periods nothing is recorded.

    ``periods`` is asked on every record (the kiosk's verified bundle can change while it
    runs); ``key_for`` returns (key, fell_back)."""

    def __init__(self, *, fallback: SealingKey | None, periods: Callable[[], Sequence[PeriodKey]] = tuple):
        self.fallback, self.periods = fallback, periods
        self.installed: tuple[PeriodKey, ...] = ()  # what the kiosk was installed with

    @property
    def kid(self) -> str:  # what the store names when no record is made
        return self.fallback.kid if self.fallback else ""

    def key_for(self, klass: str, captured_at: float) -> tuple[SealingKey, bool]:
        keys = [k for k in self.periods() if k.klass == klass]
        covering = [k for k in keys if k.valid_from <= captured_at < k.valid_to]
        if covering:
            return max(covering, key=lambda k: k.valid_from).sealing_key(), False
        if keys:  # none covers now: the newest held, marked
            return max(keys, key=lambda k: k.valid_to).sealing_key(), True
        if self.fallback is None:
            raise NoSealingKey(
                "no sealing period key at all: install the committee's sealing-periods.json "
                "([keys] sealing_periods) or run `kiosk sync`"
            )
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


# -- search tags ----------------------------------------------------------------------------------
TAG_CONTEXT = b"venue-kiosk search tag v1\0"
TAG_KEY_INFO = b"venue-kiosk tag key v1\0"


def search_tag(tag_key: bytes, pass_id: bytes) -> str:
    """What a record carries in clear so the committee can find one pass's check-ins without
    opening everyone's: an HMAC of the pass id under the period's tag key. Only the committee
    and the kiosks (which get the key sealed to their own X25519 key) can compute it."""
    return hmac.new(tag_key, TAG_CONTEXT + pass_id, hashlib.sha256).hexdigest()[:32]


VENUE_TAG_INFO = b"venue-kiosk venue tag key v1\0"


def venue_tag_key(day_key: bytes, kiosk_id: str) -> bytes:
    """The tag key of one kiosk for one day, derived by the committee from the day's key
    (HKDF-SHA256 with the kiosk id): tags made at two venues never match, so nobody holding
    the records alone can join one pass's visits across venues; the committee computes the
    tag for each venue-day it searches."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=VENUE_TAG_INFO + kiosk_id.encode()
    ).derive(day_key)


def venue_tags(day_keys: Iterable[bytes], kiosk_ids: Iterable[str], pass_id: bytes) -> list[str]:
    """The tags one pass would carry at each of these venues on each of these days."""
    kiosks = list(kiosk_ids)
    return [search_tag(venue_tag_key(k, kid), pass_id) for k in day_keys for kid in kiosks]


def tag_key_info(kiosk_id: str, valid_from: float) -> bytes:
    return TAG_KEY_INFO + f"{kiosk_id}/{int(valid_from)}".encode()


@dataclass(frozen=True)
class SealedTagKey:
    valid_from: float
    valid_to: float
    sealed: bytes  # HPKE to the kiosk's tag key, info bound to kiosk and period

    def to_wire(self) -> dict[str, Any]:
        return {
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "sealed": base64.b64encode(self.sealed).decode("ascii"),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> SealedTagKey:
        key = cls(float(d["valid_from"]), float(d["valid_to"]), base64.b64decode(d["sealed"], validate=True))
        if not key.valid_from < key.valid_to:
            raise ValueError("bad tag key period")
        return key


class Tagger:
    """The kiosk's side: the search tag of a check-in, from the tag key of its capture
    period (opened with the kiosk's own X25519 key). Opened keys are kept in memory only and
    dropped once their period is over; no key for the period means no tag (the record can
    then be found only by opening the window's records)."""

    def __init__(
        self,
        *,
        private_key: X25519PrivateKey,
        kiosk_id: str,
        sealed_keys: Callable[[], Sequence[SealedTagKey]] = tuple,
        extra_keys: Sequence[X25519PrivateKey] = (),
    ):
        self.private_key, self.kiosk_id, self.sealed_keys = private_key, kiosk_id, sealed_keys
        # an enrolled kiosk's first days: sealed to its enrolment code's key (kiosk.enrol)
        self.keys = (private_key, *extra_keys)
        self._open: dict[float, tuple[float, bytes]] = {}

    def tag_for(self, pass_id: bytes, captured_at: float) -> str | None:
        from kiosk.core.seal import SUITE

        for start in [s for s, (end, _) in self._open.items() if end <= captured_at]:
            del self._open[start]  # its period is over: forget the key
        for start, (end, key) in self._open.items():
            if start <= captured_at < end:
                return search_tag(key, pass_id)
        for sk in self.sealed_keys():
            if sk.valid_from <= captured_at < sk.valid_to:
                for private in self.keys:
                    try:
                        key = SUITE.decrypt(
                            sk.sealed, private, info=tag_key_info(self.kiosk_id, sk.valid_from)
                        )
                    except Exception:
                        continue
                    self._open[sk.valid_from] = (sk.valid_to, key)
                    return search_tag(key, pass_id)
                return None
        return None
