"""GET /v1/bundle: a kiosk's signed bundle (keys, sealing periods, its tag keys, the risk list
whole or as a delta, the policy), with an ETag so an unchanged bundle costs one small answer."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response

from kiosk.core.bundle import bundle_payload, sign_bundle
from kiosk.core.sealkeys import SealedTagKey
from sync import protocol
from sync.central.server.auth import authenticate
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import AUTH_ERRORS, _errors

router = APIRouter()


def etag_of(ctx: ServerContext, kiosk_id: str, version: int, period_tag: str = "") -> str:
    tag = hashlib.sha256(f"{kiosk_id}/{ctx.keys_fingerprint}/{period_tag}".encode()).hexdigest()[:12]
    return f'"{version}-{tag}"'


def bundle_for(
    ctx: ServerContext, kiosk_id: str, if_none_match: str | None, since: str | None = None
) -> Response:
    # The common answer, 304, reads one row; the whole risk list only when it changed.
    # The period keys on offer change once a period: their first kid is in the ETag.
    now = ctx.clock()
    periods = ctx.authority.periods_at(now)
    tag_keys = ctx.storage.tag_keys_for(kiosk_id, now)
    period_tag = (
        (periods[0].kid if periods else "")
        + "/"
        + ",".join(str(int(v)) for v, _, _ in tag_keys[:1] + tag_keys[-1:])
    )
    etag = etag_of(ctx, kiosk_id, ctx.storage.risk_version(), period_tag)
    if if_none_match == etag:
        ctx.metrics.bundles.labels(answer="304").inc()
        return Response(status_code=304, headers={"ETag": etag})
    ctx.metrics.bundles.labels(answer="200").inc()
    delta = (
        ctx.storage.risk_delta(int(since))
        if since and since.isascii() and since.isdigit() and len(since) < 19
        else None
    )
    if delta is not None:  # only what changed since the kiosk's version
        version, levels = delta
    else:
        version, levels = ctx.storage.risk_list()
    payload = bundle_payload(
        version=version,
        issued_at=ctx.clock(),
        kiosk_id=kiosk_id,
        since=int(since) if delta is not None and since is not None else None,
        issuer_keys=ctx.authority.issuer_keys,
        sealing_keys=ctx.authority.sealing_keys,
        levels=levels,
        policy=ctx.authority.policy,
        sealing_periods=periods,
        tag_keys=[SealedTagKey(*k) for k in tag_keys],
    )
    return Response(
        sign_bundle(payload, ctx.authority.bundle_key),
        media_type="application/json",
        headers={"ETag": etag_of(ctx, kiosk_id, version, period_tag)},
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
    responses={304: {"description": "unchanged since the ETag in If-None-Match"}, **_errors(*AUTH_ERRORS)},
)
def bundle(request: Request, ctx: Ctx) -> Response:
    kiosk_id = authenticate(ctx, request, b"")
    return bundle_for(
        ctx,
        kiosk_id,
        request.headers.get("if-none-match"),
        request.headers.get(protocol.RISK_SINCE_HEADER.lower()),
    )
