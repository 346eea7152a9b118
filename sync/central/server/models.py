"""What the server's API accepts and answers (pydantic models, the OpenAPI error bodies), and
the one exception a route raises to refuse a request."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kiosk.core import protocol

TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")  # ASCII digits only: never int('²'), never 5000 digits
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
BASE64_RE = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
KID_RE = r"^[0-9A-Za-z._-]+$"


def _integral(value):
    """JSON has one number type: 7.0 is the integer 7 (as JSON Schema says), 7.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict otherwise: "7" and true are not integers.
JsonInt = Annotated[int, BeforeValidator(_integral)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    record_id: str = Field(
        pattern=UUID_RE,
        description="a UUID; a version-7 one must carry the record's capture time (else 400 malformed)",
    )
    seq: JsonInt = Field(ge=1, lt=2**63)
    epoch: JsonInt = Field(default=0, ge=0, lt=2**63)  # the kiosk database's sequence epoch
    captured_at: float = Field(ge=0, allow_inf_nan=False)
    clock_synced: bool
    # Sent by kiosks before issue 33, accepted and never stored: the server keeps no sign of
    # a record's class (its retention, its key id, its class's deletion time).
    retention: Literal["normal", "significant"] | None = None
    delete_after: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    seal_kid: str | None = Field(default=None, min_length=1, max_length=64, pattern=KID_RE)
    sealed: str = Field(min_length=4, max_length=8192, pattern=BASE64_RE)
    seal_fallback: bool = False  # no period key covered the capture time on the kiosk
    tag: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")  # search tag, if any


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    batch_id: str = Field(pattern=UUID_RE)
    # (an empty batch is a round with nothing to send: kiosks upload every round, so that an
    # upload says nothing about whether anybody came)
    records: list[Record] = Field(min_length=0, max_length=protocol.MAX_RECORDS)
    padding: str | None = Field(
        default=None,
        max_length=8 * 1024 * 1024,
        pattern=BASE64_RE,
        description="random bytes that fill the upload to its size bucket (ignored)",
    )


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
