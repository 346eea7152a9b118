"""The server's own two online keys, read from its keys folder: one signs freshness ("for this
kiosk, nothing newer than version N"), the other upload receipts. Neither can grant power:
what kiosks trust (issuer keys, sealing periods, policy, member keys, and these two keys
themselves) comes from manifests the offline root signed, which the server only relays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.keys import (
    BUNDLE_KEY,
    RECEIPT_KEY,
    ROOT_PUB,
    load_ed25519_private,
    load_ed25519_public,
    raw_public,
)


@dataclass(frozen=True)
class Authority:
    bundle_key: Ed25519PrivateKey  # signs freshness only
    receipt_key: Ed25519PrivateKey  # signs upload receipts only
    # The offline root's public key (root.pub beside them), raw: the /check page is built with
    # it, to check the manifest it fetches. None where the folder holds no root.pub.
    root_public: bytes | None = None

    @classmethod
    def from_dir(cls, keys_dir: Path) -> Authority:
        keys_dir = Path(keys_dir)
        root = keys_dir / ROOT_PUB
        return cls(
            load_ed25519_private(keys_dir / BUNDLE_KEY),
            load_ed25519_private(keys_dir / RECEIPT_KEY),
            raw_public(load_ed25519_public(root)) if root.exists() else None,
        )
