"""What the server signs bundles with and hands to kiosks, read from its keys folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.decision import Policy
from kiosk.core.keys import (
    BUNDLE_KEY,
    ISSUER_PUB,
    SEALING_PUB,
    load_ed25519_private,
    load_ed25519_public,
    load_x25519_public,
    raw_public,
    sealing_kid,
)


@dataclass(frozen=True)
class Authority:
    """What the server signs bundles with and hands to kiosks."""

    bundle_key: Ed25519PrivateKey
    issuer_keys: tuple[Ed25519PublicKey, ...]
    sealing_keys: tuple[tuple[str, bytes], ...]
    policy: Policy = Policy()
    sealing_periods: tuple = ()  # kiosk.core.sealkeys.PeriodKey, from sealing-periods.json

    def periods_at(self, now: float) -> tuple:
        """The period keys a kiosk needs: every period not yet over."""
        return tuple(k for k in self.sealing_periods if k.valid_to > now)

    @classmethod
    def from_dir(cls, keys_dir: Path, *, policy: Policy = Policy()) -> Authority:
        keys_dir = Path(keys_dir)
        issuers = tuple(load_ed25519_public(p) for p in sorted(keys_dir.glob("issuer*.pub")))
        if not issuers:
            raise FileNotFoundError(f"{keys_dir / ISSUER_PUB}: no issuer public key")
        sealing = []
        for p in sorted(keys_dir.glob("sealing*.pub")):
            pub = load_x25519_public(p)
            sealing.append((sealing_kid(pub), raw_public(pub)))
        from sync.central.keyring import public_periods

        periods = tuple(public_periods(keys_dir))
        if not sealing and not periods:
            raise FileNotFoundError(
                f"{keys_dir / SEALING_PUB}: no sealing public key (nor sealing-periods.json)"
            )
        return cls(load_ed25519_private(keys_dir / BUNDLE_KEY), issuers, tuple(sealing), policy, periods)
