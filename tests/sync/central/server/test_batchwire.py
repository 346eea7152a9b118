"""An upload's body, decoded and checked in one pass: what the schema says is taken (7.0 is
the integer 7, as JSON Schema reads it), anything else is refused naming the field."""

import json

import pytest

from kiosk.core import protocol
from sync.central.server.batchwire import Malformed, decode_batch

ID = "00000000-0000-4000-8000-0000000000{:02d}"


def body(**over):
    record = {"record_id": ID.format(1), "seq": 2, "captured_at": 5, "clock_synced": True, "sealed": "YWJj"}
    return json.dumps({"batch_id": ID.format(0), "records": [{**record, **over}]}).encode()


def test_a_batch_is_decoded_with_its_sealed_bytes():
    (r,) = decode_batch(body(tag="ab" * 16, retention="significant", seal_kid="k")).records
    assert (r.seq, r.captured_at, r.sealed, r.tag, r.epoch) == (2, 5.0, b"abc", "ab" * 16, 0)
    assert decode_batch(body(seq=7.0)).records[0].seq == 7  # JSON Schema's integer


@pytest.mark.parametrize(
    "over, where",
    [
        ({"seq": 7.5}, "records.0.seq"),
        ({"seq": True}, "records.0.seq"),
        ({"seq": "7"}, "records.0.seq"),
        ({"seq": 0}, "records.0.seq"),
        ({"sealed": "YWJ"}, "records.0.sealed"),
        ({"record_id": "ABCDEF00-0000-4000-8000-000000000001"}, "records.0.record_id"),
        ({"tag": "AB" * 16}, "records.0.tag"),
        ({"captured_at": 1e999}, "records.0.captured_at"),
        ({"retention": "secret"}, "records.0.retention"),
        ({"colour": "red"}, "records.0"),
    ],
)
def test_a_field_not_as_the_schema_says_is_refused_by_name(over, where):
    with pytest.raises(Malformed) as e:
        decode_batch(body(**over).replace(b"Infinity", b"1e999"))
    assert str(e.value).startswith(where), str(e.value)


def test_too_many_records_and_not_json():
    many = {
        "batch_id": ID.format(0),
        "records": [json.loads(body())["records"][0]] * (protocol.MAX_RECORDS + 1),
    }
    with pytest.raises(Malformed) as e:
        decode_batch(json.dumps(many).encode())
    assert e.value.too_many
    with pytest.raises(Malformed, match="not JSON"):
        decode_batch(b"{")
