"""The pass format: a CWT (RFC 8392) in a COSE_Sign1 (RFC 9052), zlib, base45 (RFC 9285).

    VC1:<base45(zlib(COSE_Sign1))>

The protected header carries ``alg`` (-8, EdDSA/Ed25519) and ``kid`` (8 bytes naming the
issuer key). The payload is a CWT claims map: iss (1), exp (4), iat (6) and two private
claims, the pseudonymous pass id (16 random bytes) and the risk level (0..3).

Parsing is strict and never raises anything but :class:`PassError`, whose ``reason`` says
which layer refused the text. This module is pure: no clock, no files, no network.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.core.reasons import Reason

PREFIX = "VC1:"
MAX_TEXT = 2048  # a version-40 QR code in alphanumeric mode holds 4296 chars; a pass is ~150
MAX_INFLATED = 2048

COSE_SIGN1_TAG = 18
HDR_ALG = 1
HDR_KID = 4
ALG_EDDSA = -8
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_PASS_ID = -65537  # private-use claim keys (RFC 8392 section 9.1: < -65536)
CLAIM_RISK = -65538
PASS_ID_BYTES = 16
RISK_LEVELS = range(0, 4)


class PassError(Exception):
    """The text is not a pass this kiosk can accept; ``reason`` says why."""

    def __init__(self, reason: Reason):
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class PassClaims:
    """The signed content of a verified pass."""

    kid: bytes
    issuer: str
    issued_at: int
    expires_at: int
    pass_id: bytes = b""  # never logged: excluded from repr
    risk_level: int = 0

    def __repr__(self) -> str:
        return (
            f"PassClaims(kid={self.kid.hex()}, issuer={self.issuer!r}, issued_at={self.issued_at}, "
            f"expires_at={self.expires_at}, risk_level={self.risk_level})"
        )


def key_id(public_key: Ed25519PublicKey) -> bytes:
    """The 8-byte kid of an Ed25519 public key: a SHA-256 prefix of its raw bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def pass_ref(pass_id: bytes) -> str:
    """The name a risk list uses for a pass: a hash, so the list holds no pass ids."""
    return hashlib.sha256(b"venue-kiosk risk-list v1\x00" + pass_id).hexdigest()[:32]


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def encode_pass(
    *,
    signing_key: Ed25519PrivateKey,
    issuer: str,
    issued_at: int,
    expires_at: int,
    pass_id: bytes,
    risk_level: int,
) -> str:
    """Issue a pass (the authority's side). Returns the text a QR code holds."""
    if risk_level not in RISK_LEVELS:
        raise ValueError(f"risk level must be 0..3, not {risk_level}")
    if len(pass_id) != PASS_ID_BYTES:
        raise ValueError(f"pass id must be {PASS_ID_BYTES} bytes")
    kid = key_id(signing_key.public_key())
    protected = cbor2.dumps({HDR_ALG: ALG_EDDSA, HDR_KID: kid})
    payload = cbor2.dumps(
        {
            CLAIM_ISS: issuer,
            CLAIM_IAT: int(issued_at),
            CLAIM_EXP: int(expires_at),
            CLAIM_PASS_ID: pass_id,
            CLAIM_RISK: risk_level,
        }
    )
    signature = signing_key.sign(_sig_structure(protected, payload))
    cose = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))
    encoded: bytes = base45.b45encode(zlib.compress(cose, 9))
    return PREFIX + encoded.decode("ascii")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise PassError(Reason.TOO_LARGE)
    out += inflater.flush()
    if not inflater.eof or inflater.unused_data:
        raise PassError(Reason.BAD_COMPRESSION)
    return out


def _cose_parts(cose: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    obj = cbor2.loads(cose)
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise PassError(Reason.MALFORMED)
        obj = obj.value
    if not (isinstance(obj, Sequence) and not isinstance(obj, (bytes, str)) and len(obj) == 4):
        raise PassError(Reason.MALFORMED)
    protected, unprotected, payload, signature = obj
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, Mapping)
        and isinstance(payload, bytes)
        and isinstance(signature, bytes)
    ):
        raise PassError(Reason.MALFORMED)
    header = cbor2.loads(protected)
    if not isinstance(header, Mapping) or header.get(HDR_ALG) != ALG_EDDSA:
        raise PassError(Reason.MALFORMED)
    kid = header.get(HDR_KID)
    if not isinstance(kid, bytes) or not kid:
        raise PassError(Reason.MALFORMED)
    return protected, payload, signature, kid


def _claims(kid: bytes, payload: bytes) -> PassClaims:
    claims = cbor2.loads(payload)
    if not isinstance(claims, Mapping):
        raise PassError(Reason.BAD_CLAIMS)
    iss, iat, exp = claims.get(CLAIM_ISS), claims.get(CLAIM_IAT), claims.get(CLAIM_EXP)
    pass_id, risk = claims.get(CLAIM_PASS_ID), claims.get(CLAIM_RISK)
    if not (
        isinstance(iss, str)
        and type(iat) is int
        and type(exp) is int
        and exp > iat
        and isinstance(pass_id, bytes)
        and len(pass_id) == PASS_ID_BYTES
        and type(risk) is int
        and risk in RISK_LEVELS
    ):
        raise PassError(Reason.BAD_CLAIMS)
    return PassClaims(kid=kid, issuer=iss, issued_at=iat, expires_at=exp, pass_id=pass_id, risk_level=risk)


def _open(text: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(protected, payload, signature, kid) of a pass text; PassError if it is not one."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise PassError(Reason.NOT_A_PASS)
    if len(text) > MAX_TEXT:
        raise PassError(Reason.TOO_LARGE)
    try:
        compressed = base45.b45decode(text[len(PREFIX) :])
    except Exception:
        raise PassError(Reason.BAD_ENCODING) from None
    try:
        cose = _inflate(compressed)
    except zlib.error:
        raise PassError(Reason.BAD_COMPRESSION) from None
    return _cose_parts(cose)


def verify_pass(text: str, trusted: Mapping[bytes, Ed25519PublicKey]) -> PassClaims:
    """Decode and verify a pass text against the trusted issuer keys (kid -> key).

    Checks format and signature only; validity in time is the caller's (it holds the clock).
    Raises :class:`PassError` and nothing else.
    """
    try:
        protected, payload, signature, kid = _open(text)
        key = trusted.get(kid)
        if key is None:
            raise PassError(Reason.UNKNOWN_KEY)
        try:
            key.verify(signature, _sig_structure(protected, payload))
        except InvalidSignature:
            raise PassError(Reason.BAD_SIGNATURE) from None
        return _claims(kid, payload)
    except PassError:
        raise
    except Exception:  # cbor2 and friends raise many types on hostile input; all mean one thing
        raise PassError(Reason.MALFORMED) from None


def unverified_claims(text: str) -> PassClaims:
    """What a pass says, its signature NOT checked: for showing a pass to the authority that
    has no key at hand, never for a decision. Raises :class:`PassError` and nothing else."""
    try:
        _protected, payload, _signature, kid = _open(text)
        return _claims(kid, payload)
    except PassError:
        raise
    except Exception:
        raise PassError(Reason.MALFORMED) from None
