"""Which kiosk sent a request: its signature over method, path, time and body, checked
against its registered device key before anything else of the request is used."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Request

from kiosk.core import protocol
from kiosk.core.auditheads import AuditHead
from kiosk.core.timing import REQUEST_SKEW_S
from sync.central.server.context import ServerContext
from sync.central.server.models import TIMESTAMP_RE, ApiError

log = logging.getLogger(__name__)


def report_head(ctx: ServerContext, request: Request, kiosk_id: str) -> None:
    """Keep the highest audit head this kiosk says it has seen (X-Audit-Head: SEQ:HASH),
    for `audit verify` to check the log against: a tail deleted after kiosks saw it shows."""
    text = request.headers.get(protocol.AUDIT_HEAD_HEADER.lower())
    if not text:
        return
    try:
        head = AuditHead.parse(text)
    except ValueError:
        return
    ctx.storage.report_head(kiosk_id, head.seq, head.hash, now=ctx.clock())


def authenticate(ctx: ServerContext, request: Request, body: bytes | None = None, *, known=None) -> str:
    """Who sent it, from the headers alone: the kiosk id, the time, and the signature over
    method, path, time and the body's digest. For a body not read yet (``body`` None), the
    digest is the one its X-Content-SHA256 header claims (required): the caller reads the body
    only after this, and checks it against that digest (:func:`check_digest`)."""
    h = request.headers
    kiosk_id, ts, sig = h.get("x-kiosk-id"), h.get("x-timestamp"), h.get("x-signature")
    if not (kiosk_id and ts and sig) or not TIMESTAMP_RE.match(ts):
        raise ApiError(401, "bad_signature", "X-Kiosk-Id, X-Timestamp and X-Signature are required")
    digest = h.get(protocol.DIGEST_HEADER.lower())
    if body is None and not digest:
        raise ApiError(401, "bad_signature", f"{protocol.DIGEST_HEADER} is required (the body's SHA-256)")
    # ``known``: the kiosk's key and revocation as the caller just read them (a poll's one query)
    kiosk = known if known is not None else ctx.storage.kiosk(kiosk_id)
    if kiosk is None:
        raise ApiError(401, "unknown_kiosk", "no kiosk registered with this id")
    if kiosk.revoked_at is not None:
        raise ApiError(403, "revoked", "this kiosk's registration was revoked")
    now = ctx.clock()
    if abs(now - int(ts)) > REQUEST_SKEW_S:
        raise ApiError(
            401, protocol.STALE, "request timestamp too far from the server's clock", server_time=int(now)
        )
    if not protocol.verify_request(
        Ed25519PublicKey.from_public_bytes(kiosk.public_key),
        kiosk_id=kiosk_id,
        method=request.method,
        path=request.url.path,
        timestamp=ts,
        signature=sig,
        body=body,
        digest=digest if body is None else None,
    ):
        raise ApiError(401, "bad_signature", "the signature does not match this kiosk's key")
    ctx.metrics.seen(kiosk_id)
    request.state.kiosk_key = kiosk.public_key
    request.state.skew_s = int(ts) - now
    request.state.signed_at = int(ts)
    return kiosk_id


HEALTH_WINDOW_S = 600  # a summary made further than this from its request's signed time is old news


def report_seen(ctx: ServerContext, request: Request, kiosk_id: str, *, upload: bool) -> None:
    """Keep when this kiosk was seen (and uploaded), its clock's distance from ours, and the
    health summary it signed (X-Kiosk-Health). A summary that does not verify is dropped
    and counted, the request itself stands: health is news, not a condition."""
    text = request.headers.get(protocol.HEALTH_HEADER.lower())
    summary = None
    if text:
        try:
            import json

            opened = protocol.open_health(
                text, Ed25519PublicKey.from_public_bytes(request.state.kiosk_key), kiosk_id
            )
            if abs(float(opened["at"]) - request.state.signed_at) > HEALTH_WINDOW_S:
                raise ValueError("a summary older (or newer) than its request: a replayed one")
            summary = json.dumps(opened, sort_keys=True, separators=(",", ":"))
        except ValueError as e:
            ctx.metrics.rejected.labels(reason="bad_health").inc()
            log.warning("kiosk %s: health summary dropped: %s", kiosk_id, e)
    ctx.storage.record_seen(  # kept only if made later than the one held (no replay of older news)
        kiosk_id,
        now=ctx.clock(),
        skew_s=float(request.state.skew_s),
        summary=summary,
        upload=upload,
        summary_at=float(opened["at"]) if summary is not None else None,
    )
    if summary is not None and opened.get("audit_head"):  # what it saw of the log, signed by it
        try:
            head = AuditHead.parse(str(opened["audit_head"]))
            ctx.storage.report_head(kiosk_id, head.seq, head.hash, now=ctx.clock())
        except ValueError:
            pass


def check_digest(request: Request, body: bytes) -> None:
    """The body read after :func:`authenticate` is the one the kiosk signed."""
    import hashlib

    if hashlib.sha256(body).hexdigest() != request.headers.get(protocol.DIGEST_HEADER.lower()):
        raise ApiError(401, "bad_signature", f"the body does not match its signed {protocol.DIGEST_HEADER}")
