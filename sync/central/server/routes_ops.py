"""What operators ask: /healthz (the server and its database answer) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from sync.central.server.context import Ctx

router = APIRouter()


@router.get(
    "/healthz",
    summary="liveness: the server answers and its database does",
    responses={503: {"description": "the database does not answer"}},
)
def healthz(ctx: Ctx) -> Any:
    try:
        ctx.storage.risk_version()
    except Exception as e:
        return JSONResponse({"status": "database unavailable", "detail": type(e).__name__}, status_code=503)
    return {"status": "ok"}


@router.get(
    "/metrics",
    summary="Prometheus metrics: ingest, rejections by reason, bundles, per-kiosk last upload and lag",
    response_class=Response,
)
def metrics_endpoint(ctx: Ctx) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
