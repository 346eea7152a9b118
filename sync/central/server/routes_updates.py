"""/v1/updates/: the kiosks' software releases as a TUF repository. The root and targets
metadata and the files are what the committee signed offline (relayed as stored); snapshot
and timestamp are signed here with the server's online key, as kiosks ask: all the server
can say is which signed release is current and that this is fresh."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Path, Request, Response

from kiosk.core.releasefiles import UPDATES_PATH
from sync.central.server.context import Ctx
from sync.central.server.models import ApiError, error_responses

router = APIRouter()
METADATA = r"^(?:[1-9][0-9]{0,8}\.root|timestamp|snapshot|targets)\.json$"
TARGET = r"^[0-9A-Za-z._+-]{1,40}(?:/[0-9A-Za-z._+-]{1,200})?$"  # release.json, VERSION/WHEEL
NOT_FOUND = error_responses(("404", "nothing published under this name"))


@router.get(
    UPDATES_PATH + "/{name}",
    summary="TUF metadata: N.root.json and targets.json as the committee signed them; "
    "snapshot.json and timestamp.json signed by this server",
    responses=NOT_FOUND,
)
def metadata(ctx: Ctx, name: str = Path(pattern=METADATA)) -> Any:
    from sync.central.tufrepo import fresh

    if name in ("snapshot.json", "timestamp.json"):
        signed = fresh(ctx.storage, ctx.authority.bundle_key, now=ctx.clock())
        body = signed.get(name) if signed else None
    else:
        doc = ctx.storage.update_doc(name)
        body = doc.encode() if doc is not None else None
    if body is None:
        raise ApiError(404, "not_published", f"{name}: no release published yet")
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    UPDATES_PATH + "/targets/{path:path}",
    summary="A file of the current release, as the committee's targets metadata lists it",
    responses=NOT_FOUND,
)
def target(request: Request, ctx: Ctx, path: str = Path(pattern=TARGET)) -> Any:
    data = ctx.storage.update_target(path)
    if data is None:
        raise ApiError(404, "not_published", "no such file in the current release")
    # A kiosk resumes a download cut off on the way: "Range: bytes=N-" gets the rest (206).
    wanted = re.fullmatch(r"bytes=(\d{1,12})-", request.headers.get("range", ""))
    if wanted and 0 < int(wanted[1]) < len(data):
        start = int(wanted[1])
        return Response(
            data[start:],
            status_code=206,
            media_type="application/octet-stream",
            headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "Accept-Ranges": "bytes"},
        )
    return Response(data, media_type="application/octet-stream", headers={"Accept-Ranges": "bytes"})
