"""/v1/enrolment/{token}: a kiosk joins the fleet with a token the committee made. GET: the
token's root-signed document (the kiosk checks it against the root it carries, and that it is
its code's own); POST: the kiosk's new keys, signed with the code's key, registered once.
Nothing here needs a registered kiosk: the code is the credential, and it never reaches
the server (see kiosk.core.enroltokens)."""

from __future__ import annotations

import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Path, Request

from kiosk.core import enroltokens as enrolment
from kiosk.core import protocol
from kiosk.core.signed import SignedDocError
from sync.central.server.context import Ctx, ServerContext
from sync.central.server.models import ApiError, error_responses
from sync.central.storage.rows import EnrolmentToken

router = APIRouter()
log = logging.getLogger("kiosk-central")

TOKEN = Path(pattern=r"^[0-9a-f]{32}$", description="the lookup derived from the enrolment code")
MAX_REQUEST_BYTES = 4096
REFUSALS = {
    "unknown": (
        404,
        "unknown_token",
        "no enrolment token with this code: check the code, or ask for a new one",
    ),
    "used": (410, "token_used", "this enrolment token was used already (one kiosk, once): ask for a new one"),
    "expired": (410, "token_expired", "this enrolment token has expired: ask the committee for a new one"),
    "key_in_use": (409, "key_in_use", "this device key is registered to another active kiosk"),
}
ERRORS = error_responses(
    ("404", "no token with this lookup"),
    ("410", "the token was used or has expired"),
)


def _token(ctx: ServerContext, lookup: str, *, now: float) -> tuple[EnrolmentToken, enrolment.Token]:
    """The stored token and its document read, if the root signed it; refused otherwise."""
    from kiosk.core.roots import RootHistory

    row = ctx.storage.enrolment_token(lookup)
    if row is None:
        raise ApiError(*REFUSALS["unknown"])
    if row.used_at is None and row.expires_at <= now:
        raise ApiError(*REFUSALS["expired"])
    if ctx.authority.root_public is None:
        raise ApiError(503, "no_root", "this server's keys folder has no root.pub: tokens cannot be checked")
    history = RootHistory.pinned(Ed25519PublicKey.from_public_bytes(ctx.authority.root_public))
    history = history.extend(ctx.storage.succession_manifests())
    try:
        return row, enrolment.read_token(row.doc, [key for key, _ in history.roots])
    except (SignedDocError, enrolment.CodeError):  # written around the committee
        log.error("enrolment token for kiosk %s does not verify against the root: refused", row.kiosk_id)
        ctx.metrics.rejected.labels(reason="bad_token").inc()
        raise ApiError(*REFUSALS["unknown"]) from None


@router.get(
    protocol.ENROL_PATH + "/{token}",
    summary="An enrolment token's root-signed document (the kiosk checks it)",
    responses=ERRORS,
)
def token_document(ctx: Ctx, token: str = TOKEN) -> Any:
    now = ctx.clock()
    row, _ = _token(ctx, token, now=now)
    # used: the kiosk that used it may be asking again (its answer was lost); it POSTs its
    # same keys and gets its id; any other device is refused there
    return {"token": row.doc, "used": row.used_at is not None, "server_time": int(now)}


@router.post(
    protocol.ENROL_PATH + "/{token}",
    summary="Enrol: register the kiosk the token names with the device's keys (once)",
    responses={
        **ERRORS,
        **error_responses(
            ("400", "malformed request, or not signed with this token's code"),
            ("409", "the device key is registered to another kiosk"),
            ("413", "request too large"),
        ),
    },
)
async def enrol(request: Request, ctx: Ctx, token: str = TOKEN) -> Any:
    from starlette.concurrency import run_in_threadpool

    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise ApiError(413, "too_large", f"body over {MAX_REQUEST_BYTES} bytes")
    return await run_in_threadpool(_enrol, ctx, token, body)


def _enrol(ctx: ServerContext, lookup: str, body: bytes) -> dict[str, Any]:
    now = ctx.clock()
    _, token = _token(ctx, lookup, now=now)
    try:
        req = enrolment.read_request(body, token)
    except ValueError as e:
        raise ApiError(400, "bad_request", f"{e}") from None
    done = ctx.storage.enrol_kiosk(lookup, public_key=req.device_public, tag_public=req.tag_public, now=now)
    if done.outcome != "ok":
        raise ApiError(*REFUSALS.get(done.outcome, (409, done.outcome, "refused")))
    log.info("kiosk %s enrolled for venue %s", done.kiosk_id, token.venue)
    return {"kiosk_id": done.kiosk_id, "venue": token.venue, "server_time": int(now)}
