"""POST /v1/batches: a kiosk's sealed check-ins, authenticated, parsed, stored idempotently."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from kiosk.core import protocol
from kiosk.core.bundle import sign_receipt
from kiosk.core.recordids import placed
from kiosk.core.timing import time_bucket
from sync.central.server.auth import authenticate, check_digest, report_head, report_seen
from sync.central.server.batchwire import Batch, Malformed, batch_schema, decode_batch
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import AUTH_ERRORS, Accepted, ApiError, error_responses
from sync.central.storage.interface import RecordIdConflict
from sync.central.storage.rows import IngestResult

log = logging.getLogger("kiosk-central")
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
        batch = decode_batch(raw)  # every field checked, the sealed bytes decoded: in C, once
    except Malformed as e:
        if e.too_many:
            raise ApiError(413, "too_large", f"more than {protocol.MAX_RECORDS} records") from None
        raise ApiError(400, "malformed", str(e)[:300]) from None
    records = batch.records
    if not records:
        return batch, []
    # The time checks once a batch: its earliest and latest capture bound all the others (a
    # record is named only when one fails); a time-ordered (v7) id, from a kiosk before issue
    # 33, only where one is sent.
    now = ctx.clock()
    retention = ctx.storage.retention
    times = [r.captured_at for r in records]
    if retention.capture_problem(min(times), now=now) or retention.capture_problem(max(times), now=now):
        for i, at in enumerate(times):
            problem = retention.capture_problem(at, now=now)
            if problem:
                raise ApiError(400, protocol.BAD_CAPTURE_TIME, f"records.{i}.captured_at: {problem}")
    for i, r in enumerate(records):
        if r.record_id[14] == "7" and placed(r.record_id, r.captured_at) is False:
            raise ApiError(
                400,
                "malformed",
                f"records.{i}.record_id: a time-ordered (v7) id whose time is not the record's capture time",
            )
    # kept in clear: the 5-minute bucket only (the exact time is sealed, for the committee);
    # never a class, a key id or a deletion time (an older kiosk's retention, delete_after and
    # seal_kid: each would tell a significant record apart)
    rows = [
        {
            "record_id": r.record_id,
            "seq": r.seq,
            "epoch": r.epoch,
            "captured_at": time_bucket(r.captured_at),
            "clock_synced": r.clock_synced,
            "sealed": r.sealed,
            "seal_fallback": r.seal_fallback,
            "tag": r.tag,
        }
        for r in records
    ]
    return batch, rows


def ingest(ctx: ServerContext, request: Request, kiosk_id: str, body: bytes) -> Response:
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
    answer = protocol.pad_answer(
        {
            "batch_id": batch.batch_id,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "receipt": receipt,
        }
    )  # encoded here, once (the documented model Accepted is not validated again)
    return Response(msgspec.json.encode(answer), media_type="application/json")


BATCH_SCHEMA, BATCH_COMPONENTS = batch_schema("#/components/schemas/{name}")


@router.post(
    protocol.UPLOAD_PATH,
    response_model=Accepted,
    summary="Upload a batch of sealed check-ins (JSON, gzip, signed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the batch as JSON, sent with "
            "Content-Encoding: gzip (anything else is a 400 malformed)",
            "content": {"application/json": {"schema": BATCH_SCHEMA}},
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
async def upload(request: Request, ctx: Ctx) -> Response:
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
        return await asyncio.get_running_loop().run_in_executor(
            ctx.ingest_lane, ingest, ctx, request, kiosk_id, body
        )
