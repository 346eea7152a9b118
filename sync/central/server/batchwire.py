"""An upload's body as the server decodes it: one pass of msgspec (C) over the JSON that checks
every field against the published schema and decodes each sealed record's base64 once, into
the bytes the database stores (issue 34). A model per record (pydantic), a dump of it, and a
base64 decoding per record cost about four times as much; the schema for the API's
description comes from these same types, so what is documented is what is enforced."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec

from kiosk.core import protocol

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
KID_RE = r"^[0-9A-Za-z._-]+$"
BASE64 = {"pattern": r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"}
TAG_RE = r"^[0-9a-f]{32}$"
INT64 = 2**63 - 1


class Record(msgspec.Struct, forbid_unknown_fields=True):
    record_id: Annotated[
        str,
        msgspec.Meta(
            pattern=UUID_RE,
            description="a UUID; a version-7 one must carry the record's capture time (else 400 malformed)",
        ),
    ]
    seq: Annotated[int, msgspec.Meta(ge=1, le=INT64)]
    captured_at: Annotated[float, msgspec.Meta(ge=0)]
    clock_synced: bool
    sealed: Annotated[bytes, msgspec.Meta(min_length=1, max_length=6144, extra_json_schema=BASE64)]
    epoch: Annotated[int, msgspec.Meta(ge=0, le=INT64)] = 0  # the kiosk database's sequence epoch
    seal_fallback: bool = False  # no period key covered the capture time on the kiosk
    tag: Annotated[str, msgspec.Meta(pattern=TAG_RE)] | None = None  # search tag, if any
    # Sent by kiosks before issue 33, accepted and never stored: the server keeps no sign of
    # a record's class (its retention, its key id, its class's deletion time).
    retention: Literal["normal", "significant"] | None = None
    delete_after: Annotated[float, msgspec.Meta(ge=0)] | None = None
    seal_kid: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=KID_RE)] | None = None


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    batch_id: Annotated[str, msgspec.Meta(pattern=UUID_RE)]
    # (an empty batch is a round with nothing to send: kiosks upload every round, so that an
    # upload says nothing about whether anybody came)
    records: Annotated[list[Record], msgspec.Meta(max_length=protocol.MAX_RECORDS)]
    padding: (
        Annotated[
            bytes,
            msgspec.Meta(
                max_length=6 * 1024 * 1024,
                description="random bytes that fill the upload to its size bucket (ignored)",
                extra_json_schema=BASE64,
            ),
        ]
        | None
    ) = None


_DECODER = msgspec.json.Decoder(Batch)


class Malformed(ValueError):
    """The body is not a batch: ``where`` (records.3.tag, ...) and what is wrong there."""

    def __init__(self, where: str, problem: str, *, too_many: bool = False) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.too_many = too_many


def decode_batch(raw: bytes) -> Batch:
    """The batch, every field checked; :class:`Malformed` names the first field that is not
    what the schema says. A whole number written as 7.0 is the integer 7 (JSON Schema's
    reading): such a body takes a slower second pass."""
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as e:
        if "got `float`" in str(e):
            try:
                return msgspec.convert(_integral(json.loads(raw)), Batch)
            except (msgspec.ValidationError, ValueError) as again:
                raise _malformed(again) from None
        raise _malformed(e) from None
    except msgspec.DecodeError as e:
        raise Malformed("", f"not JSON ({e})") from None


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _malformed(e: Exception) -> Malformed:
    """msgspec's "Expected ... - at `$.records[3].tag`" as records.3.tag and the problem."""
    text = str(e)
    problem, _, at = text.rpartition(" - at `")
    if not problem:
        return Malformed("", text)
    where = at.rstrip("`").removeprefix("$").lstrip(".").replace("[", ".").replace("]", "")
    too_many = where == "records" and "length <=" in problem
    return Malformed(where, problem, too_many=too_many)


def batch_schema(ref_template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the batch's JSON Schema, the component schemas it refers to), for the OpenAPI."""
    (schema,), components = msgspec.json.schema_components([Batch], ref_template=ref_template)
    return components[schema["$ref"].rsplit("/", 1)[1]], components
