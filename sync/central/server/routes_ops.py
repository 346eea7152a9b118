"""What operators ask: /healthz (the server and its database answer). /metrics is on a listener
of its own (server/metrics.py), never on the port kiosks reach."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
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
