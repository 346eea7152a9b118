"""Signed documents: one JSON shape for everything that grants power or proves something.

    {"format": KIND, "payload": "<base64 of the payload JSON bytes>",
     "signature": "<base64 Ed25519 signature over KIND + b"\\0" + payload bytes>"}

The signature covers the exact payload bytes (nothing is re-serialised before checking it),
and the kind is part of what is signed, so a document of one kind can never pass for another
(a receipt for a manifest, a risk statement for a bundle). Pure: no file, network or clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_DOC_BYTES = 64 * 1024 * 1024


class SignedDocError(Exception):
    """A document that must not be used; the message says why (never key material)."""


def doc_hash(doc: str | bytes) -> str:
    """How a signed document is named where it is listed (the committee's log, a manifest's
    statements in force by a former member): SHA-256 of its bytes, 32 hex digits."""
    import hashlib

    return hashlib.sha256(doc.encode() if isinstance(doc, str) else doc).hexdigest()[:32]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


def canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign_doc(kind: str, payload: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    body = canonical(payload)
    signature = key.sign(kind.encode() + b"\0" + body)
    return json.dumps({"format": kind, "payload": b64(body), "signature": b64(signature)}).encode()


def open_doc(
    data: bytes | str, kind: str, keys: Iterable[Ed25519PublicKey]
) -> tuple[dict[str, Any], Ed25519PublicKey]:
    """The payload of a ``kind`` document signed by one of ``keys``, and which key signed it.
    Raises SignedDocError for a malformed document, another kind, or no matching signature."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_DOC_BYTES:
        raise SignedDocError(f"{kind}: too large")
    try:
        outer = json.loads(raw)
        if not isinstance(outer, dict) or outer.get("format") != kind:
            raise SignedDocError(f"not a {kind!r} document")
        body = unb64(outer["payload"])
        signature = unb64(outer["signature"])
    except SignedDocError:
        raise
    except (ValueError, KeyError, TypeError):
        raise SignedDocError(f"malformed {kind}") from None
    for key in keys:
        try:
            key.verify(signature, kind.encode() + b"\0" + body)
        except InvalidSignature:
            continue
        try:
            payload = json.loads(body)
        except ValueError:
            raise SignedDocError(f"malformed {kind} payload") from None
        if not isinstance(payload, dict):
            raise SignedDocError(f"malformed {kind} payload")
        return payload, key
    raise SignedDocError(f"{kind}: not signed by a key trusted for it")
