"""The committee's unwrapped period keys, and which of them may have sealed a record.

The server keeps no record's key id (issue 33: the public schedule names each key's class, so
a key id in clear would tell which check-ins were significant). A record is opened by trying
the keys of its day, the normal key first (most records are normal): one failed AES-GCM tag
at most. A record a kiosk sealed with an older key (``seal_fallback``: offline past its keys)
is then tried with every other key, the nearest earlier ones first. Pure: the keys and their schedule are
passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.core.timing import TIME_BUCKET_S


@dataclass(frozen=True)
class Period:
    kid: str
    klass: str
    valid_from: float
    valid_to: float


@dataclass(frozen=True)
class Keychain(Mapping[str, X25519PrivateKey]):
    """kid -> private key (a mapping, as before), with each key's period."""

    by_kid: Mapping[str, X25519PrivateKey]
    periods: tuple[Period, ...] = ()

    @classmethod
    def of(cls, keys: Mapping[str, X25519PrivateKey], schedule: Iterable[dict]) -> Keychain:
        """From the unwrapped keys and the schedule's entries (sealing-periods.json)."""
        periods = tuple(
            Period(str(e["kid"]), str(e["class"]), float(e["valid_from"]), float(e["valid_to"]))
            for e in schedule
            if e["kid"] in keys
        )
        return cls(dict(keys), periods)

    def __getitem__(self, kid: str) -> X25519PrivateKey:
        return self.by_kid[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_kid)

    def __len__(self) -> int:
        return len(self.by_kid)

    def candidates(self, captured_at: float, *, fallback: bool = False) -> list[X25519PrivateKey]:
        """The keys that may have sealed a record kept in clear with this 5-minute bucket:
        those whose period overlaps the bucket (normal first); with ``fallback``, then every
        other key, the nearest earlier periods first."""
        end = captured_at + TIME_BUCKET_S
        day = [p for p in self.periods if p.valid_from < end and p.valid_to > captured_at]
        day.sort(key=lambda p: (p.klass != "normal", -p.valid_from))
        out = [self.by_kid[p.kid] for p in day]
        if fallback:  # the kiosk's newest key before that time, as a rule: nearest first
            rest = sorted(
                (p for p in self.periods if p not in day),
                key=lambda p: (p.valid_from > captured_at, abs(captured_at - p.valid_to)),
            )
            out += [self.by_kid[p.kid] for p in rest]
        return out


def keys_to_try(keys: Mapping[str, X25519PrivateKey], row: Mapping) -> list[X25519PrivateKey]:
    """The keys to try on a stored record: a :class:`Keychain`'s candidates; with a bare
    mapping (no schedule: tools and tests with a key or two), every key."""
    if isinstance(keys, Keychain) and keys.periods:
        return keys.candidates(float(row["captured_at"]), fallback=bool(row.get("seal_fallback")))
    return list(keys.values())
