"""The wire between a kiosk and the central server, shared by both ends.

Every kiosk request carries three headers::

    X-Kiosk-Id:   the id `kiosk-central register-kiosk` printed
    X-Timestamp:  Unix seconds on the kiosk's clock
    X-Signature:  base64 Ed25519 signature, by the kiosk's device key, over
                  "venue-kiosk request v2\\n" KIOSK_ID "\\n" METHOD "\\n" PATH "\\n" TIMESTAMP "\\n"
                  hex(SHA-256(body))

The body is hashed exactly as sent (gzip bytes for an upload), so the server checks the
signature before it decompresses or parses anything.

Upload: ``POST /v1/batches``, ``Content-Encoding: gzip``, JSON::

    {"batch_id": "<uuid made by the kiosk>", "records": [
        {"record_id", "seq", "epoch", "captured_at", "clock_synced", "sealed" (base64),
         "seal_fallback", "tag"}, ...], "padding"}

No retention class, key id or deletion time: they would tell the server which check-ins were
significant (the committee finds a record's key among its day's keys). A server still accepts
them from an older kiosk, and keeps none of them.

Answer 200: ``{"batch_id", "accepted": [record ids], "duplicates": [record ids]}``: both lists
are stored on the server; the kiosk marks exactly those synced. A 4xx answer is
``{"error": "<code>", "detail": "<text>"}`` and nothing of the request was stored.

Bundle: ``GET /v1/bundle`` (signed, empty body), ``If-None-Match`` -> 304 when unchanged.

Kiosk: ``GET /v1/kiosk`` (signed, empty body): ``{"kiosk_id", "server_time", "seen_at",
"last_upload_at", "health_at", "epoch", "received", "highest_seq", "missing"}``, what the
server heard from this kiosk before this request (times in Unix seconds, or null).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

UPLOAD_PATH = "/v1/batches"
RISK_SINCE_HEADER = "X-Risk-Since"  # the risk-list version a kiosk holds: send the changes
AUDIT_HEAD_HEADER = "X-Audit-Head"  # SEQ:HASH, the highest audit head the kiosk has seen
BUNDLE_PATH = "/v1/bundle"
# What the server last heard from this kiosk (signed GET, empty body): the end of each sync
# round reports the kiosk's health after the round there, and `kiosk doctor` asks it.
KIOSK_PATH = "/v1/kiosk"
# Enrolment by a one-time token (kiosk.core.enroltokens): GET the token's document, POST the keys.
ENROL_PATH = "/v1/enrolment"
# The days ahead of search-tag keys a kiosk wants (its offline margin): it holds no more.
KEY_MARGIN_HEADER = "X-Key-Margin-Days"
KEY_MARGIN_DAYS, KEY_MARGIN_MAX_DAYS = 7, 56


def key_margin_days(text: str | None) -> int:
    """The margin a request asks for, clamped to 1..KEY_MARGIN_MAX_DAYS (default 7)."""
    if text and text.isascii() and text.isdigit() and len(text) < 4:
        return min(max(int(text), 1), KEY_MARGIN_MAX_DAYS)
    return KEY_MARGIN_DAYS


MAX_BODY_BYTES = 4 * 1024 * 1024  # gzip bytes on the wire
MAX_JSON_BYTES = 32 * 1024 * 1024  # after decompression (a gzip bomb stops here)
MAX_RECORDS = 5000  # per batch


_CONTEXT = b"venue-kiosk request v2\n"

# Error codes a 4xx carries, and what the kiosk does with them.
BAD_CAPTURE_TIME = "bad_capture_time"  # outside what the server keeps
RECORD_ID_CONFLICT = "record_id_conflict"  # the id is another kiosk's
PERMANENT = {
    "malformed",
    "too_large",
    BAD_CAPTURE_TIME,  # the batch itself: split, then set aside
    RECORD_ID_CONFLICT,
}
AUTH = {"unknown_kiosk", "revoked", "bad_signature"}  # the kiosk's set-up: keep, back off
STALE = "stale_timestamp"  # the kiosk's clock: correct and retry


def signing_input(method: str, path: str, timestamp: str, body: bytes, *, kiosk_id: str) -> bytes:
    return _signed_text(kiosk_id, method, path, timestamp, hashlib.sha256(body).hexdigest())


def _signed_text(kiosk_id: str, method: str, path: str, timestamp: str, digest: str) -> bytes:
    """What a kiosk signs: its own id too, so a request stays its own (a key registered again
    under a new id cannot replay what it signed under the old one)."""
    return _CONTEXT + "\n".join([kiosk_id, method.upper(), path, timestamp, digest]).encode()


# The body's SHA-256 (hex) travels in a header the signature covers, so the server checks
# who is sending before it reads a byte of the body, then checks the body against it.
DIGEST_HEADER = "X-Content-SHA256"


def sign_request(
    key: Ed25519PrivateKey, *, kiosk_id: str, method: str, path: str, timestamp: int, body: bytes
) -> dict[str, str]:
    ts = str(int(timestamp))
    sig = key.sign(signing_input(method, path, ts, body, kiosk_id=kiosk_id))
    return {
        "X-Kiosk-Id": kiosk_id,
        "X-Timestamp": ts,
        "X-Signature": base64.b64encode(sig).decode("ascii"),
        DIGEST_HEADER: hashlib.sha256(body).hexdigest(),
    }


def verify_request(
    key: Ed25519PublicKey,
    *,
    kiosk_id: str,
    method: str,
    path: str,
    timestamp: str,
    signature: str,
    body: bytes | None = None,
    digest: str | None = None,
) -> bool:
    """The signature over method, path, time and the body's digest: ``body`` itself, or
    (before the body is read) the ``digest`` its header claims, checked against it later."""
    if digest is None:
        digest = hashlib.sha256(body or b"").hexdigest()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return False
    text = _signed_text(kiosk_id, method, path, timestamp, digest)
    try:
        key.verify(base64.b64decode(signature, validate=True), text)
        return True
    except (InvalidSignature, ValueError):
        return False


# What an upload carries of each stored record (the rest of a row never leaves the kiosk: its
# class, the key that sealed it and its deletion time are the kiosk's own business).
RECORD_FIELDS = (
    "record_id",
    "seq",
    "epoch",
    "captured_at",
    "clock_synced",
    "sealed",
    "seal_fallback",
    "tag",
)

# Sizes on the wire say nothing of how many check-ins a batch holds: an upload is padded to
# the next size bucket (16 KiB, then doubling), and so is the server's answer to it.
MIN_BUCKET = 16 * 1024
# ... and the sync service uploads on a fixed schedule, once each 5 minutes (the time buckets
# records keep in clear), an empty batch when nobody came: nor does an upload's time.
UPLOAD_EVERY_S = 300


def bucket_size(n: int) -> int:
    size = MIN_BUCKET
    while size < n:
        size *= 2
    return size


def _gz(obj: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), compresslevel=5, mtime=0)


def encode_batch(batch_id: str, records: list[dict[str, Any]], *, pad: bool = True) -> bytes:
    """The gzip JSON body of an upload. ``pad``: filled with random bytes (which do not
    compress) up to its size bucket, within a few bytes, so its size no longer gives the
    number of records."""
    batch: dict[str, Any] = {"batch_id": batch_id, "records": records}
    plain = _gz(batch)
    if not pad:
        return plain
    target = bucket_size(len(plain) + 64)
    filler = os.urandom(target)
    k = max(0, target - len(plain) - 32)
    body = _gz({**batch, "padding": base64.b64encode(filler[:k]).decode()})
    for _ in range(4):  # random bytes grow the gzip body about one byte each: converge on it
        k = max(0, min(len(filler), k + (target - len(body)) - (1 if len(body) < target else 0)))
        body = _gz({**batch, "padding": base64.b64encode(filler[:k]).decode()})
        if target - 8 <= len(body) <= target:
            break
    while len(body) > target and k > 0:
        k -= 1
        body = _gz({**batch, "padding": base64.b64encode(filler[:k]).decode()})
    return body


def pad_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer's JSON padded (random characters) to exactly its size bucket."""
    size = len(json.dumps({**answer, "padding": ""}, separators=(",", ":")).encode())
    fill = bucket_size(size) - size
    return {**answer, "padding": base64.b64encode(os.urandom(fill))[:fill].decode()}


def decompress_limited(data: bytes, limit: int = MAX_JSON_BYTES) -> bytes:
    """gunzip, refusing output past ``limit`` bytes (ValueError), whatever the input claims."""
    import zlib

    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise ValueError("decompressed body too large")
    if not d.eof:
        raise ValueError("truncated gzip body")
    if d.unused_data:
        raise ValueError("data after the gzip member (trailing bytes or a second member)")
    return out


# -- a kiosk's health, on every request --------------------------------------------------------
# Each upload and bundle poll carries the kiosk's state, signed by its device key (the request
# signature does not cover headers):
#
#     X-Kiosk-Health: base64url(JSON) "." base64url(Ed25519 signature over
#                     "venue-kiosk health v1\n" KIOSK_ID "\n" JSON)
#
# Only these fields, each of its type; never a pass, a decision or anything a visitor did.
HEALTH_HEADER = "X-Kiosk-Health"
HEALTH_MAX = 1024  # characters of the header
HEALTH_TEXT_MAX = {"audit_head": 86}  # characters of a text field (64 unless named): SEQ:64 hex digits
_HEALTH_CONTEXT = b"venue-kiosk health v1\n"
HEALTH_FIELDS: dict[str, tuple[type, ...]] = {
    "at": (int, float),  # the kiosk's clock when it made the summary
    "version": (str,),  # the kiosk software's version
    "bundle_version": (int, type(None)),  # the risk-list version it holds
    "manifest_version": (int, type(None)),
    "bundle_age_s": (int, float, type(None)),  # since the server issued the bundle it holds
    "pending": (int,),  # records not yet acknowledged
    "set_aside": (int,),  # records the server refused, kept for a technician
    "clock_synced": (bool,),  # NTP synchronised, by the kiosk's own clock service
    "clock_offset_s": (int, float),  # the correction it applies to sign requests (server - kiosk)
    "disk_free_mb": (int, type(None)),  # on its database's file system
    "fault": (str, type(None)),  # the last fault's code (camera, store, sealing, sync, ...)
    "fault_at": (int, float, type(None)),
    "epoch": (int,),  # its database's sequence epoch
    "uptime_s": (int, float, type(None)),  # since the machine started
    # SEQ:HASH, the highest audit head its bundles carried: signed here, so a server cannot
    # forge what a kiosk saw of the committee's log (only fail to keep it)
    "audit_head": (str, type(None)),
    # the last software update round's outcome ("installed 0.2.0: ...", "rolled back 0.2.0:
    # why"); optional: kiosks from before updates send no such field
    "update": (str, type(None)),
    # how long its oldest record not yet acknowledged has waited: the fleet's upload lag,
    # from the kiosk (the server keeps no count or time of day of what each upload held)
    "oldest_pending_s": (int, float, type(None)),
}
HEALTH_OPTIONAL = frozenset({"update", "oldest_pending_s"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_health(key: Ed25519PrivateKey, kiosk_id: str, summary: dict[str, Any]) -> str:
    body = json.dumps({k: summary.get(k) for k in HEALTH_FIELDS}, sort_keys=True, separators=(",", ":"))
    sig = key.sign(_HEALTH_CONTEXT + kiosk_id.encode() + b"\n" + body.encode())
    return f"{_b64url(body.encode())}.{_b64url(sig)}"


def open_health(text: str, key: Ed25519PublicKey, kiosk_id: str) -> dict[str, Any]:
    """The summary a kiosk signed; ValueError for anything else (too long, not its signature,
    a field unknown or of another type)."""
    if len(text) > HEALTH_MAX or text.count(".") != 1:
        raise ValueError("malformed health summary")
    body_text, sig_text = text.split(".")
    try:
        body, sig = _unb64url(body_text), _unb64url(sig_text)
        key.verify(sig, _HEALTH_CONTEXT + kiosk_id.encode() + b"\n" + body)
        summary = json.loads(body)
    except (InvalidSignature, ValueError) as e:
        raise ValueError(f"health summary refused: {type(e).__name__}") from None
    if (
        not isinstance(summary, dict)
        or set(summary) - HEALTH_OPTIONAL != set(HEALTH_FIELDS) - HEALTH_OPTIONAL
    ):
        raise ValueError("health summary: unexpected fields")
    summary = {name: summary.get(name) for name in HEALTH_FIELDS}
    from kiosk.core.console import printable

    for name, types in HEALTH_FIELDS.items():
        value = summary[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"health summary: {name} is not {' or '.join(t.__name__ for t in types)}")
        if isinstance(value, str) and len(value) > HEALTH_TEXT_MAX.get(name, 64):
            raise ValueError(f"health summary: {name} too long")
        if isinstance(value, str) and printable(value) != value:  # it is shown on terminals and pages
            raise ValueError(f"health summary: {name} holds control characters")
    return summary
