"""GET /v1/bundle: a kiosk's signed bundle (keys, sealing periods, its tag keys, the risk list
whole or as a delta, the policy), with an ETag so an unchanged bundle costs one small answer."""

from __future__ import annotations

import asyncio
import hashlib
import json

from fastapi import APIRouter, Request, Response

from kiosk.core import protocol
from kiosk.core.bundle import make_bundle
from kiosk.core.timing import DAY
from sync.central.server.auth import authenticate, report_head, report_seen
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import AUTH_ERRORS, ApiError, error_responses
from sync.central.storage.rows import PollState

router = APIRouter()


def etag_of(ctx: ServerContext, kiosk_id: str, version: int, tag: str = "") -> str:
    digest = hashlib.sha256(f"{kiosk_id}/{ctx.keys_fingerprint}/{tag}".encode()).hexdigest()[:12]
    return f'"{version}-{digest}"'


def no_manifest() -> ApiError:
    return ApiError(
        503, "no_manifest", "no manifest published yet: the committee runs `kiosk-central manifest publish`"
    )


def bundle_tag(ctx: ServerContext, state: PollState) -> str:
    """What a kiosk's bundle is made of, as its ETag names it (with the risk version), from
    the poll's one read: the same for a 304 and a 200."""
    manifest = ctx.manifest_of(state.manifest_version)
    if manifest is None:
        raise no_manifest()
    head = json.loads(state.audit_head)["hash"] if state.audit_head else ""
    count, first, last = state.tag_docs
    short = hashlib.sha256((first + last).encode()).hexdigest()[:8] if count else ""
    return f"{manifest[0]}/{count}/{short}/{head}/{state.held}"


def answer_poll(ctx: ServerContext, request: Request) -> Response:
    """A kiosk's poll, on the poll lane: one read for who it is and what its bundle's ETag is
    now; a 304 when it holds that (the common answer), else the bundle. What it says of its
    health and the log it saw is written after the answer, by the writer thread."""
    h = request.headers
    now = ctx.clock()
    margin_days = protocol.key_margin_days(h.get(protocol.KEY_MARGIN_HEADER.lower()))
    claimed = h.get("x-kiosk-id")
    state = ctx.storage.poll_state(claimed, now, now + margin_days * DAY) if claimed else None
    kiosk_id = authenticate(ctx, request, b"", known=state)
    ctx.later(report_head, ctx, request, kiosk_id)
    ctx.later(report_seen, ctx, request, kiosk_id, upload=False)
    if state is None:  # (a kiosk registered between the read and the check: read it again)
        state = ctx.storage.poll_state(kiosk_id, now, now + margin_days * DAY)
    if state is None:
        raise no_manifest()
    tag = bundle_tag(ctx, state)
    etag = etag_of(ctx, kiosk_id, state.risk_version, tag)
    if h.get("if-none-match") == etag:
        ctx.metrics.bundles.labels(answer="304").inc()
        return Response(status_code=304, headers={"ETag": etag})
    return bundle_for(ctx, kiosk_id, tag, h.get(protocol.RISK_SINCE_HEADER.lower()), margin_days=margin_days)


def bundle_for(
    ctx: ServerContext,
    kiosk_id: str,
    tag: str,
    since: str | None = None,
    *,
    margin_days: int = protocol.KEY_MARGIN_DAYS,
) -> Response:
    """The whole bundle (200): relay what the root and the members signed, sign only the
    freshness. ``tag``: what bundle_tag made of the same state."""
    now = ctx.clock()
    manifest = ctx.manifest()  # the newest the root signed (one written around it is skipped)
    if manifest is None:
        raise no_manifest()
    manifest_version, manifest_doc = manifest
    succession = ctx.succession(manifest_version)
    # Only the tag keys of today and the kiosk's offline margin: a stolen kiosk holds no more.
    tag_docs = ctx.storage.tag_key_docs(kiosk_id, now, until=now + margin_days * DAY)
    head = ctx.storage.audit_head_doc()
    stored = ctx.storage.stored_summary(kiosk_id)  # what this server holds of the kiosk's numbers
    ctx.metrics.bundles.labels(answer="200").inc()
    wanted = int(since) if since and since.isascii() and since.isdigit() and len(since) < 19 else None
    delta = ctx.storage.statements(now=now, since=wanted) if wanted is not None else None
    version, statements = delta if delta is not None else ctx.storage.statements(now=now) or (0, [])
    body = make_bundle(
        manifest=manifest_doc,
        statements=statements,
        tag_keys=tag_docs,
        audit_head=head,
        kiosk_id=kiosk_id,
        version=version,
        manifest_version=manifest_version,
        issued_at=now,
        since=wanted if delta is not None else None,
        key=ctx.authority.bundle_key,
        succession=succession,
        stored=stored,
    )
    # the ETag names the risk version the body carries (a statement added since the read: the
    # next poll sees a different one and fetches again)
    return Response(
        body, media_type="application/json", headers={"ETag": etag_of(ctx, kiosk_id, version, tag)}
    )


@router.get(
    protocol.BUNDLE_PATH,
    summary="This kiosk's signed bundle (keys, risk list, policy)",
    openapi_extra={
        "parameters": [
            {"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
            for n in ("X-Kiosk-Id", "X-Timestamp", "X-Signature")
        ]
    },
    responses={
        304: {"description": "unchanged since the ETag in If-None-Match"},
        **error_responses(*AUTH_ERRORS, ("503", "no manifest published yet (no_manifest)")),
    },
)
async def bundle(request: Request, ctx: Ctx) -> Response:
    # On a lane of its own (threads that uploads never hold): a poll is a kiosk asking whether
    # its risk list is current, and must not wait behind a burst of uploads.
    return await asyncio.get_running_loop().run_in_executor(ctx.poll_lane, answer_poll, ctx, request)
