"""What operators and kiosks ask about the service: /healthz (the server and its database
answer), /v1/kiosk (what the server last heard from the kiosk asking). /metrics is on a
listener of its own (server/metrics.py), never on the port kiosks reach."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kiosk.core import protocol
from sync.central.server.auth import authenticate, report_head, report_seen
from sync.central.server.context import Ctx
from sync.central.server.models import AUTH_ERRORS, error_responses

router = APIRouter()


@router.get(
    "/healthz",
    summary="liveness: the server answers and its database does",
    responses={503: {"description": "the database does not answer"}},
)
async def healthz(ctx: Ctx) -> Any:
    """The database asked on a thread of its own, answered within a second either way: a
    balancer's health check never waits on a database that does not answer (one probe at a
    time: a slow one is not piled upon)."""
    import asyncio

    try:
        await asyncio.wait_for(asyncio.wrap_future(ctx.probe()), HEALTH_TIMEOUT_S)
    except TimeoutError:
        return JSONResponse(
            {"status": "database unavailable", "detail": f"no answer within {HEALTH_TIMEOUT_S:g} s"},
            status_code=503,
        )
    except Exception as e:
        return JSONResponse({"status": "database unavailable", "detail": type(e).__name__}, status_code=503)
    return {"status": "ok"}


HEALTH_TIMEOUT_S = 1.0


@router.get(
    protocol.KIOSK_PATH,
    summary="What the server last heard from this kiosk (its own doctor asks)",
    openapi_extra={
        "parameters": [
            {"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
            for n in ("X-Kiosk-Id", "X-Timestamp", "X-Signature")
        ]
    },
    responses=error_responses(*AUTH_ERRORS),
)
def kiosk_heard(request: Request, ctx: Ctx) -> Any:
    kiosk_id = authenticate(ctx, request, b"")
    heard = ctx.storage.kiosk_heard(kiosk_id)  # before this request is noted
    report_head(ctx, request, kiosk_id)
    report_seen(ctx, request, kiosk_id, upload=False)
    return {"kiosk_id": kiosk_id, "server_time": ctx.clock(), **heard}
