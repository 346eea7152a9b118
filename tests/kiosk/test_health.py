"""A kiosk's health summary on the wire: signed by its device key, only the named fields,
nothing a visitor did; and what a real kiosk store reports."""

from __future__ import annotations

import base64
import json

import pytest

from kiosk.core import protocol
from kiosk.health import collect_health, note_fault
from kiosk.store.checkins import CheckinStore
from testkit import fill
from workbench.world import health_summary, seeded_ed25519

KIOSK = "k-0001"


def summary(**changes):
    return health_summary(**{"bundle_age_s": 120.0, "pending": 4, **changes})


def test_a_summary_opens_only_with_its_kiosks_key_and_id():
    key = seeded_ed25519("device")
    seen = f"123456:{'ab' * 32}"  # the audit head it saw (SEQ:64 hex digits), as a real kiosk sends
    text = protocol.sign_health(key, KIOSK, summary(audit_head=seen))
    assert protocol.open_health(text, key.public_key(), KIOSK)["audit_head"] == seen
    text = protocol.sign_health(key, KIOSK, summary())
    assert len(text) < protocol.HEALTH_MAX
    assert protocol.open_health(text, key.public_key(), KIOSK) == summary()
    with pytest.raises(ValueError):
        protocol.open_health(text, seeded_ed25519("another").public_key(), KIOSK)
    with pytest.raises(ValueError):
        protocol.open_health(text, key.public_key(), "k-0002")  # replayed as another kiosk's
    body, sig = text.split(".")
    with pytest.raises(ValueError):
        protocol.open_health(body[:-2] + "xx." + sig, key.public_key(), KIOSK)


def test_a_kiosk_from_before_updates_sends_no_update_field_and_is_heard():
    key = seeded_ed25519("device")
    old = {k: v for k, v in summary().items() if k != "update"}
    body = json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    sig = key.sign(b"venue-kiosk health v1\n" + KIOSK.encode() + b"\n" + body)
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()  # noqa: E731
    assert protocol.open_health(f"{b64(body)}.{b64(sig)}", key.public_key(), KIOSK) == summary()
    rolled = summary(update="rolled back 0.3.0: does not start")
    text = protocol.sign_health(key, KIOSK, rolled)
    assert protocol.open_health(text, key.public_key(), KIOSK)["update"] == rolled["update"]


@pytest.mark.parametrize(
    "bad",
    [
        {"pending": "4"},
        {"clock_synced": 1},
        {"epoch": True},
        {"fault": "x" * 65},
        {"audit_head": "1" * 87},
    ],
)
def test_only_the_named_fields_of_their_types_are_taken(bad):
    key = seeded_ed25519("device")
    with pytest.raises(ValueError):
        protocol.open_health(protocol.sign_health(key, KIOSK, summary(**bad)), key.public_key(), KIOSK)


def test_an_extra_field_such_as_a_pass_is_refused():
    key = seeded_ed25519("device")
    body = json.dumps({**summary(), "last_pass": "VC1:..."}, sort_keys=True, separators=(",", ":")).encode()
    sig = key.sign(b"venue-kiosk health v1\n" + KIOSK.encode() + b"\n" + body)
    text = f"{protocol._b64url(body)}.{protocol._b64url(sig)}"
    with pytest.raises(ValueError, match="unexpected fields"):
        protocol.open_health(text, key.public_key(), KIOSK)
    # and sign_health itself sends only the named fields
    sent = protocol.sign_health(key, KIOSK, {**summary(), "last_pass": "VC1:..."})
    assert "last_pass" not in protocol.open_health(sent, key.public_key(), KIOSK)


def test_a_real_store_reports_pending_epoch_and_its_last_fault(tmp_path, sealing, make_pass, trusted):
    store = CheckinStore.open(tmp_path / "kiosk.db", sealing=sealing, venue_id="v")
    fill(store, make_pass, trusted, 3)
    note_fault(store, "camera", now=1_800_000_100.0)
    h = collect_health(
        store, now=1_800_000_200.0, db_folder=tmp_path, clock_synced=False, clock_offset=-4.0, version="0.1.0"
    )
    assert (h["pending"], h["set_aside"], h["fault"], h["fault_at"]) == (3, 0, "camera", 1_800_000_100.0)
    assert h["epoch"] == store.epoch and h["clock_synced"] is False and h["disk_free_mb"] > 0
    assert set(h) == set(protocol.HEALTH_FIELDS)
    store.set_states({"last_sync_error": "GET ...: ConnectionError", "last_sync_error_at": "1800000150.0"})
    assert (
        collect_health(
            store, now=1_800_000_200.0, db_folder=tmp_path, clock_synced=True, clock_offset=0, version="x"
        )["fault"]
        == "sync"
    )  # the newer fault
    store.close()
