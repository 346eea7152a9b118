"""POST /v1/batches: a kiosk's sealed check-ins, authenticated, parsed, stored idempotently."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kiosk.core import protocol
from kiosk.core.bundle import sign_receipt
from kiosk.core.recordids import placed
from kiosk.core.timing import time_bucket
from sync.central.server.auth import authenticate, check_digest, report_head, report_seen
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import AUTH_ERRORS, Accepted, ApiError, Batch, error_responses
from sync.central.storage.interface import RecordIdConflict
from sync.central.storage.rows import IngestResult

log = logging.getLogger("kiosk-central")
# What an older kiosk still sends and the server never keeps: each tells a record's class apart.
NEVER_KEPT = {"retention", "delete_after", "seal_kid"}
BODY_DEADLINE_S = 30.0  # a whole batch (at most 4 MiB) from an authenticated kiosk
router = APIRouter()


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > protocol.MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"body over {protocol.MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > protocol.MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"body over {protocol.MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_batch(ctx: ServerContext, request: Request, body: bytes) -> tuple[Batch, list[dict]]:
    if request.headers.get("content-encoding", "").lower() != "gzip":
        raise ApiError(400, "malformed", "the batch must be sent with Content-Encoding: gzip")
    try:
        raw = protocol.decompress_limited(body)
    except ValueError as e:
        code = "too_large" if "too large" in str(e) else "malformed"
        raise ApiError(413 if code == "too_large" else 400, code, str(e)) from None
    except Exception:  # zlib.error, EOFError: not gzip at all
        raise ApiError(400, "malformed", "the body is not valid gzip") from None
    try:
        batch = Batch.model_validate_json(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        if err["type"] == "too_long" and where == "records":
            raise ApiError(413, "too_large", f"more than {protocol.MAX_RECORDS} records") from None
        raise ApiError(400, "malformed", f"{where}: {err['msg']}"[:300]) from None
    rows = []
    now = ctx.clock()
    for i, r in enumerate(batch.records):
        try:
            sealed = base64.b64decode(r.sealed, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "malformed", f"records.{i}.sealed: not base64") from None
        problem = ctx.storage.retention.capture_problem(r.captured_at, now=now)
        if problem:
            raise ApiError(400, protocol.BAD_CAPTURE_TIME, f"records.{i}.captured_at: {problem}")
        if placed(r.record_id, r.captured_at) is False:
            raise ApiError(
                400,
                "malformed",
                f"records.{i}.record_id: a time-ordered (v7) id whose time is not the record's capture time",
            )
        # kept in clear: the 5-minute bucket only (the exact time is sealed, for the committee)
        rows.append(
            {
                **r.model_dump(exclude=NEVER_KEPT),
                "sealed": sealed,
                "captured_at": time_bucket(r.captured_at),
            }
        )
    return batch, rows


def ingest(ctx: ServerContext, request: Request, kiosk_id: str, body: bytes) -> dict[str, Any]:
    """``kiosk_id``: authenticated from the headers before the body was read; the body has
    been checked against the digest they signed."""
    batch, rows = parse_batch(ctx, request, body)
    try:  # an empty batch (a round with nothing to send) stores nothing, and is answered alike
        result = (
            ctx.storage.ingest(kiosk_id, batch.batch_id, rows, now=ctx.clock())
            if rows
            else IngestResult([], [])
        )
    except RecordIdConflict as e:
        raise ApiError(409, protocol.RECORD_ID_CONFLICT, f"{e}: {', '.join(e.record_ids[:5])}") from None
    log.debug(
        "batch from %s: %d records, %d accepted, %d duplicates",
        kiosk_id,
        len(rows),
        len(result.accepted),
        len(result.duplicates),
    )
    ctx.metrics.batches.inc()
    ctx.metrics.accepted.inc(len(result.accepted))
    ctx.metrics.duplicates.inc(len(result.duplicates))
    receipt = sign_receipt(
        kiosk_id=kiosk_id,
        batch_id=batch.batch_id,
        stored=result.accepted + result.duplicates,
        at=ctx.clock(),
        key=ctx.authority.receipt_key,
    )
    report_head(ctx, request, kiosk_id)
    report_seen(ctx, request, kiosk_id, upload=True)
    return protocol.pad_answer(
        {
            "batch_id": batch.batch_id,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "receipt": receipt,
        }
    )


batch_schema = Batch.model_json_schema(ref_template="#/components/schemas/{model}")
batch_schema.pop("$defs", None)


@router.post(
    protocol.UPLOAD_PATH,
    response_model=Accepted,
    summary="Upload a batch of sealed check-ins (JSON, gzip, signed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the batch as JSON, sent with "
            "Content-Encoding: gzip (anything else is a 400 malformed)",
            "content": {"application/json": {"schema": batch_schema}},
        },
        "parameters": [
            {"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
            for n in ("X-Kiosk-Id", "X-Timestamp", "X-Signature", "X-Content-SHA256")
        ],
        "responses": error_responses(
            ("400", "malformed batch, or a capture time outside what the server keeps"),
            ("408", "the body did not arrive within the deadline (slow_body)"),
            *AUTH_ERRORS,
            ("409", "a record id already held for another kiosk (record_id_conflict)"),
            ("413", "body or batch too large"),
        ),
    },
)
async def upload(request: Request, ctx: Ctx) -> dict[str, Any]:
    # Who is sending, from the signed headers, before a byte of the body is read: a stranger's
    # body is never read, and a kiosk's must arrive within a deadline.
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > protocol.MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"body over {protocol.MAX_BODY_BYTES} bytes")
    kiosk_id = await run_in_threadpool(authenticate, ctx, request)
    try:
        body = await asyncio.wait_for(read_body(request), timeout=BODY_DEADLINE_S)
    except TimeoutError:
        raise ApiError(408, "slow_body", f"the body did not arrive within {BODY_DEADLINE_S:g} s") from None
    check_digest(request, body)
    async with ctx.ingest_gate:
        return await run_in_threadpool(ingest, ctx, request, kiosk_id, body)
