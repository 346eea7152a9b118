"""/check/: the visitor's exposure check, a static page (sync/central/checkpage) with the root's
latest manifest, its hand-overs to successor roots and the committee's latest exposure list
beside it. The page asks for those documents once and never sends anything about a pass: the
server learns only that someone opened the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from sync.central.checkpage import (
    EXPOSURES,
    MANIFEST,
    PAGE,
    SCRIPT,
    SUCCESSION,
    TYPES,
    WASM,
    WORKER,
    page,
    static_file,
    succession_file,
)
from sync.central.server.context import Ctx
from sync.central.server.models import ApiError

router = APIRouter(include_in_schema=False)
# The page may be cached a while; the two documents are re-fetched (they change).
STATIC_CACHE = "public, max-age=3600"
NO_STORE = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/check")
def check_redirect() -> Any:
    return RedirectResponse("/check/", status_code=308)


@router.get("/check/")
def check_page(ctx: Ctx) -> Any:
    root = ctx.authority.root_public
    if root is None:
        raise ApiError(
            503, "no_root_key", "the server's keys folder holds no root.pub: the page cannot be built"
        )
    return Response(page(root), media_type=TYPES[PAGE], headers=NO_STORE)


@router.get("/check/{name}")
def check_file(name: str, ctx: Ctx) -> Any:
    if name == WORKER:  # never cached by the browser's HTTP cache: updates take at once
        return Response(static_file(name), media_type=TYPES[name], headers=NO_STORE)
    if name in (SCRIPT, WASM):
        return Response(
            static_file(name), media_type=TYPES[name], headers={**NO_STORE, "Cache-Control": STATIC_CACHE}
        )
    if name == MANIFEST:
        held = ctx.manifest()  # the newest the root signed
        if held is None:
            raise ApiError(404, "no_manifest", "no manifest has been published yet")
        return Response(held[1], media_type=TYPES[name], headers=NO_STORE)
    if name == SUCCESSION:  # the root's hand-overs, each signed by the root before (the page checks)
        docs = ctx.storage.succession_manifests()
        return Response(succession_file(docs), media_type=TYPES[name], headers=NO_STORE)
    if name == EXPOSURES:
        held = ctx.storage.latest_exposure_list(now=ctx.clock())
        if held is None:
            raise ApiError(404, "no_exposure_list", "the committee has published no exposure list in force")
        return Response(held[1], media_type=TYPES[name], headers=NO_STORE)
    raise ApiError(404, "not_found", "no such file")
