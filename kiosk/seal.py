"""Sealing check-in records to the health committee's public key (HPKE, RFC 9180).

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, in base mode, from
``cryptography``. The kiosk holds only the public half, so it cannot read its own log.
The record id is bound into the HPKE ``info``: a sealed field cannot be moved to
another record.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.keys import sealing_kid

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
INFO = b"venue-kiosk record v1\x00"


@dataclass(frozen=True)
class SealingKey:
    kid: str
    public: X25519PublicKey

    @classmethod
    def of(cls, public: X25519PublicKey) -> "SealingKey":
        return cls(sealing_kid(public), public)


def seal(fields: dict, key: SealingKey, *, record_id: str) -> bytes:
    return SUITE.encrypt(cbor2.dumps(fields), key.public, info=INFO + record_id.encode())


def open_sealed(blob: bytes, private_key: X25519PrivateKey, *, record_id: str) -> dict:
    """The committee's side: open one record. Raises on a wrong key or a tampered blob."""
    return cbor2.loads(SUITE.decrypt(blob, private_key, info=INFO + record_id.encode()))
