"""What the server's API answers (pydantic models, the OpenAPI error bodies), and the one
exception a route raises to refuse a request. An upload's body: batchwire.py."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")  # ASCII digits only: never int('²'), never 5000 digits


class Accepted(BaseModel):
    batch_id: str
    accepted: list[str]
    duplicates: list[str]
    receipt: str = Field(
        description="the record ids stored (accepted and duplicates), signed by the server's receipt key "
        "that the root's manifest names: a kiosk marks a record synced only on this"
    )
    padding: str = Field(default="", description="fills the answer to its size bucket (ignored)")


class ErrorBody(BaseModel):
    """Every 4xx: nothing of the request was stored."""

    error: str = Field(
        description="a code: malformed, too_large, bad_capture_time, "
        "record_id_conflict, bad_signature, unknown_kiosk, revoked, "
        "stale_timestamp"
    )
    detail: str
    server_time: int | None = Field(default=None, description="with stale_timestamp")


def error_responses(*pairs) -> dict:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {str(s): {"description": d, "content": {"application/json": {"schema": schema}}} for s, d in pairs}


AUTH_ERRORS = (
    ("401", "unknown kiosk, bad signature or stale timestamp (then with server_time)"),
    ("403", "kiosk revoked"),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra):
        self.status, self.code, self.detail, self.extra = status, code, detail, extra
