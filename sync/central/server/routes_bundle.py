"""GET /v1/bundle: a kiosk's signed bundle (keys, sealing periods, its tag keys, the risk list
whole or as a delta, the policy), with an ETag so an unchanged bundle costs one small answer."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response

from kiosk.core import protocol
from kiosk.core.bundle import make_bundle
from kiosk.core.timing import DAY
from sync.central.server.auth import authenticate, report_head, report_seen
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import AUTH_ERRORS, ApiError, error_responses

router = APIRouter()


def etag_of(ctx: ServerContext, kiosk_id: str, version: int, tag: str = "") -> str:
    digest = hashlib.sha256(f"{kiosk_id}/{ctx.keys_fingerprint}/{tag}".encode()).hexdigest()[:12]
    return f'"{version}-{digest}"'


def bundle_for(
    ctx: ServerContext,
    kiosk_id: str,
    if_none_match: str | None,
    since: str | None = None,
    *,
    margin_days: int = protocol.KEY_MARGIN_DAYS,
) -> Response:
    """Relay what the root and the members signed, sign only the freshness. The common
    answer, 304, reads a few small rows; the statements only when something changed."""
    now = ctx.clock()
    manifest = ctx.manifest()  # the newest the root signed (one written around it is skipped)
    if manifest is None:
        raise ApiError(
            503,
            "no_manifest",
            "no manifest published yet: the committee runs `kiosk-central manifest publish`",
        )
    manifest_version, manifest_doc = manifest
    succession = ctx.succession(manifest_version)
    # Only the tag keys of today and the kiosk's offline margin: a stolen kiosk holds no more.
    tag_docs = ctx.storage.tag_key_docs(kiosk_id, now, until=now + margin_days * DAY)
    head = ctx.storage.audit_head_doc()
    stored = ctx.storage.stored_summary(kiosk_id)  # what this server holds of the kiosk's numbers
    held = f"{stored['epoch']}:{stored['high']}:{len(stored['gaps'])}" if stored else ""
    tag = f"{manifest_version}/{len(tag_docs)}/{_short(tag_docs)}/{head['hash'] if head else ''}/{held}"
    etag = etag_of(ctx, kiosk_id, ctx.storage.risk_version(), tag)
    if if_none_match == etag:
        ctx.metrics.bundles.labels(answer="304").inc()
        return Response(status_code=304, headers={"ETag": etag})
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
    return Response(
        body, media_type="application/json", headers={"ETag": etag_of(ctx, kiosk_id, version, tag)}
    )


def _short(docs: list[str]) -> str:
    return hashlib.sha256("".join(docs[:1] + docs[-1:]).encode()).hexdigest()[:8] if docs else ""


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
def bundle(request: Request, ctx: Ctx) -> Response:
    kiosk_id = authenticate(ctx, request, b"")
    report_head(ctx, request, kiosk_id)
    report_seen(ctx, request, kiosk_id, upload=False)
    return bundle_for(
        ctx,
        kiosk_id,
        request.headers.get("if-none-match"),
        request.headers.get(protocol.RISK_SINCE_HEADER.lower()),
        margin_days=protocol.key_margin_days(request.headers.get(protocol.KEY_MARGIN_HEADER.lower())),
    )
