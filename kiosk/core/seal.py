"""Sealing check-in records to the health committee's public key (HPKE, RFC 9180).

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, in base mode, from
``cryptography``. The kiosk holds only the public half, so it cannot read its own log.
The record id is bound into the HPKE ``info``: a sealed field cannot be moved to
another record.

The plaintext is padded to one fixed length (v2): a 2-byte length, the CBOR fields, zeros
up to :data:`PADDED_LEN`. Every sealed record is then the same size whatever was decided
(unpadded, an admit, a refusal on the list and a refusal on the pass's level differed by
a few bytes). Records sealed before padding (v1) still open.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.core.keys import sealing_kid

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
INFO_V1 = b"venue-kiosk record v1\x00"
INFO = b"venue-kiosk record v2\x00"
PADDED_LEN = 160  # bytes of plaintext: the largest record's CBOR is about 110


@dataclass(frozen=True)
class SealingKey:
    kid: str
    public: X25519PublicKey

    @classmethod
    def of(cls, public: X25519PublicKey) -> SealingKey:
        return cls(sealing_kid(public), public)

    def key_for(self, klass: str, captured_at: float) -> tuple[SealingKey, bool]:
        """One key for every record (see kiosk.core.sealkeys.Sealer for per-period keys)."""
        return self, False


def pad(body: bytes) -> bytes:
    if len(body) > PADDED_LEN - 2:
        raise ValueError(f"sealed fields of {len(body)} bytes exceed the padded length")
    return struct.pack(">H", len(body)) + body + bytes(PADDED_LEN - 2 - len(body))


def unpad(plain: bytes) -> bytes:
    (n,) = struct.unpack(">H", plain[:2])
    if len(plain) != PADDED_LEN or n > PADDED_LEN - 2 or any(plain[2 + n :]):
        raise ValueError("bad padding")
    return plain[2 : 2 + n]


def seal(fields: dict[str, Any], key: SealingKey, *, record_id: str) -> bytes:
    return SUITE.encrypt(pad(cbor2.dumps(fields)), key.public, info=INFO + record_id.encode())


def open_sealed(blob: bytes, private_key: X25519PrivateKey, *, record_id: str) -> dict[str, Any]:
    """The committee's side: open one record. Raises on a wrong key or a tampered blob."""
    try:
        plain = unpad(SUITE.decrypt(blob, private_key, info=INFO + record_id.encode()))
    except Exception:
        # A record sealed before padding (v1): the other info string, no padding.
        plain = SUITE.decrypt(blob, private_key, info=INFO_V1 + record_id.encode())
    opened: dict[str, Any] = cbor2.loads(plain)
    return opened
