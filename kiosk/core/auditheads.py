"""The committee's audit log as a kiosk sees it: the newest entry's head (sequence number and
hash), signed by the member who wrote it, carried in every bundle. Kiosks keep the highest
head they have seen and report it with their uploads, so a log whose tail was deleted or
rewritten no longer matches what kiosks saw, without anyone publishing a head by hand."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.core.keys import raw_public

CONTEXT = b"venue-kiosk audit v1\0"
GENESIS = "0" * 64


def member_id(public_key: Ed25519PublicKey) -> str:
    return "m-" + hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def entry_hash(entry_json: str) -> str:
    return hashlib.sha256(CONTEXT + entry_json.encode()).hexdigest()


@dataclass(frozen=True, order=True)
class AuditHead:
    seq: int
    hash: str

    def wire(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        seq, _, h = text.partition(":")
        if not seq.isdigit() or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError("an audit head is SEQ:HASH (64 hex digits)")
        return cls(int(seq), h)


def head_document(seq: int, hash_: str, signature: str) -> dict[str, Any]:
    """What a bundle carries of the log: the newest signed entry's number, hash and signature
    (the member signs the hash); nothing of the entry's content leaves the committee."""
    return {"seq": int(seq), "hash": hash_, "signature": signature}


def verify_head(doc: Mapping[str, Any], members: Mapping[str, Ed25519PublicKey]) -> AuditHead:
    """The head a member of the manifest signed; raises ValueError otherwise."""
    h, sig, seq = doc.get("hash"), doc.get("signature"), doc.get("seq")
    if not isinstance(h, str) or len(h) != 64 or not isinstance(sig, str) or not isinstance(seq, int):
        raise ValueError("malformed audit head")
    try:
        signature, digest = base64.b64decode(sig, validate=True), bytes.fromhex(h)
    except (binascii.Error, ValueError):
        raise ValueError("malformed audit head") from None
    for key in members.values():
        try:
            key.verify(signature, digest)
        except InvalidSignature:
            continue
        return AuditHead(seq, h)
    raise ValueError("audit head not signed by a member the manifest names")
