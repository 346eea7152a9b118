"""Enrolment tokens: how a kiosk joins the fleet in one step (pure: no file, network or clock).

The committee, offline, makes a token for one venue: a short secret code (the technician
types it, or shows its QR code) and a document the root signs, which the server holds:

    {"token": LOOKUP, "kiosk_id": ID, "venue": NAME, "issued_at": T, "expires_at": T,
     "enrol_key": <Ed25519 public key derived from the code>,
     "seal_key": <X25519 public key derived from the code>}

Everything comes from the code, and the code never leaves the kiosk: LOOKUP (which document
is this code's) and both key pairs are derived from it with HKDF. The kiosk fetches the
document, checks the root signed it (the root pinned from its installer, never from the
network), that its keys are the code's own (so the server cannot answer with another token)
and that it is for this kiosk's venue; it then sends its new device keys signed with the
code's Ed25519 key. The server, which saw only the document, can neither make a token (no
root key) nor use one it holds (no code). The search-tag keys the committee sealed with the
token are sealed to the code's X25519 key: the kiosk opens them with it; the server cannot.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.core.signed import b64, canonical, open_doc, sign_doc, unb64

TOKEN_KIND = "venue-kiosk enrolment token v1"
REQUEST_KIND = b"venue-kiosk enrolment request v1\0"
QR_PREFIX = "KIOSK-ENROL:"

# Crockford's base32: no I, L, O or U, so a code read out or typed is hard to get wrong.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = {"O": "0", "I": "1", "L": "1"}
CODE_CHARS = 20  # 19 of the secret (95 bits) and one check character
GROUP = 5


class CodeError(ValueError):
    """A code that cannot be this system's: the message says what to check."""


@dataclass(frozen=True)
class Code:
    """An enrolment code and what is derived from it."""

    text: str  # "XXXXX-XXXXX-XXXXX-XXXXX"

    @property
    def _secret(self) -> bytes:
        return self.text.replace("-", "").encode("ascii")

    def _derive(self, label: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(self._secret)

    @property
    def lookup(self) -> str:
        """Which token document is this code's (the server's key for it): 32 hex digits."""
        return self._derive("venue-kiosk enrolment lookup v1").hex()[:32]

    @property
    def enrol_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._derive("venue-kiosk enrolment sign v1"))

    @property
    def seal_key(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._derive("venue-kiosk enrolment seal v1"))


def _check_char(body: str) -> str:
    total = sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(body))
    return ALPHABET[total % len(ALPHABET)]


def new_code() -> Code:
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS - 1))
    return Code(_group(body + _check_char(body)))


def _group(chars: str) -> str:
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def parse_code(text: str) -> Code:
    """A code as typed (any case, spaces or dashes, O for 0, I or L for 1) or as its QR code
    reads; CodeError for one that cannot be right (a typo is caught here, offline)."""
    raw = text.strip()
    if raw.upper().startswith(QR_PREFIX):
        raw = raw[len(QR_PREFIX) :]
    chars = "".join(_READ_AS.get(c, c) for c in raw.upper() if c not in " -\t")
    bad = sorted({c for c in chars if c not in ALPHABET})
    if bad:
        raise CodeError(f"the code has characters no enrolment code has ({''.join(bad)[:8]}): check it")
    if len(chars) != CODE_CHARS:
        raise CodeError(
            f"the code has {len(chars)} characters, an enrolment code has {CODE_CHARS} (4 groups of 5)"
        )
    if _check_char(chars[:-1]) != chars[-1]:
        raise CodeError("the code's check character does not match: a character was mistyped")
    return Code(_group(chars))


@dataclass(frozen=True)
class Token:
    """A token's signed document, read."""

    lookup: str
    kiosk_id: str
    venue: str
    issued_at: float
    expires_at: float
    enrol_public: bytes  # raw Ed25519
    seal_public: bytes  # raw X25519

    def payload(self) -> dict[str, Any]:
        return {
            "token": self.lookup,
            "kiosk_id": self.kiosk_id,
            "venue": self.venue,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "enrol_key": b64(self.enrol_public),
            "seal_key": b64(self.seal_public),
        }

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> Token:
        try:
            token = cls(
                lookup=str(p["token"]),
                kiosk_id=str(p["kiosk_id"]),
                venue=str(p["venue"]),
                issued_at=float(p["issued_at"]),
                expires_at=float(p["expires_at"]),
                enrol_public=unb64(p["enrol_key"]),
                seal_public=unb64(p["seal_key"]),
            )
        except (KeyError, TypeError, ValueError):
            raise CodeError("the token's document is malformed") from None
        if len(token.enrol_public) != 32 or len(token.seal_public) != 32:
            raise CodeError("the token's document is malformed")
        return token


def make_token(
    code: Code, *, kiosk_id: str, venue: str, issued_at: float, expires_at: float, root: Ed25519PrivateKey
) -> tuple[Token, bytes]:
    """The committee's side: the token of ``code`` and its document, signed by the root."""
    from kiosk.core.keys import raw_public

    token = Token(
        lookup=code.lookup,
        kiosk_id=kiosk_id,
        venue=venue,
        issued_at=issued_at,
        expires_at=expires_at,
        enrol_public=raw_public(code.enrol_key.public_key()),
        seal_public=raw_public(code.seal_key.public_key()),
    )
    return token, sign_doc(TOKEN_KIND, token.payload(), root)


def read_token(doc: bytes | str, roots: list[Ed25519PublicKey]) -> Token:
    """A token document signed by one of ``roots``; SignedDocError or CodeError otherwise."""
    payload, _ = open_doc(doc, TOKEN_KIND, roots)
    return Token.from_payload(payload)


def belongs_to(token: Token, code: Code) -> bool:
    """The document is this code's own (its keys are the code's): a server that answers a
    code with another token's document is caught here."""
    from kiosk.core.keys import raw_public

    return (
        token.lookup == code.lookup
        and token.enrol_public == raw_public(code.enrol_key.public_key())
        and token.seal_public == raw_public(code.seal_key.public_key())
    )


def request_body(code: Code, *, device_public: bytes, tag_public: bytes) -> bytes:
    """What a kiosk sends to enrol: its new device and tag keys, signed with the code's key."""
    message = {"token": code.lookup, "device_key": b64(device_public), "tag_key": b64(tag_public)}
    signature = code.enrol_key.sign(REQUEST_KIND + canonical(message))
    return canonical({**message, "signature": b64(signature)})


@dataclass(frozen=True)
class EnrolRequest:
    lookup: str
    device_public: bytes
    tag_public: bytes


def read_request(body: bytes, token: Token) -> EnrolRequest:
    """The server's side: the request, if the code's key signed it for this token;
    ValueError otherwise."""
    import json

    from cryptography.exceptions import InvalidSignature

    try:
        data = json.loads(body)
        message = {k: data[k] for k in ("token", "device_key", "tag_key")}
        signature = unb64(data["signature"])
        device, tag = unb64(message["device_key"]), unb64(message["tag_key"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("malformed enrolment request") from None
    if set(data) != {*message, "signature"} or len(device) != 32 or len(tag) != 32:
        raise ValueError("malformed enrolment request")
    if message["token"] != token.lookup:
        raise ValueError("the request names another token")
    try:
        Ed25519PublicKey.from_public_bytes(token.enrol_public).verify(
            signature, REQUEST_KIND + canonical(message)
        )
    except InvalidSignature:
        raise ValueError("not signed with this token's code") from None
    return EnrolRequest(token.lookup, device, tag)
