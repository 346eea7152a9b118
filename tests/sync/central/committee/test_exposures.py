"""The exposure list: what it holds (and what not), who can sign it, and `exposures publish`
against a real store, as the committee runs it."""

from __future__ import annotations

import json
import time

import pytest

from kiosk.core.passes import pass_ref
from kiosk.core.signed import unb64
from kiosk.core.timing import DAY
from sync.central.committee.exposures import (
    ExposureListError,
    exposure_hash,
    list_payload,
    look_up,
    sign_list,
    verify_list,
)
from sync.central.committee.members import member_id
from testkit import committee_with_a_case
from testkit import run_bin as run
from workbench.world import members, publish_manifest, raise_risk, seed_bytes, seeded_ed25519, with_storage

NOW = 1_800_000_000.0


def test_the_list_holds_keyed_hashes_levels_advice_and_expiries_only():
    ids = [seed_bytes(f"pass-{i}", 16) for i in range(4)]
    levels = {
        pass_ref(ids[0]): (1, NOW + DAY),
        pass_ref(ids[1]): (3, NOW + 2 * DAY),
        pass_ref(ids[2]): (0, NOW + DAY),  # lowered: not exposed
        pass_ref(ids[3]): (2, NOW - 1),  # expired
    }
    alice, bob = members()
    payload = list_payload(levels, version=1, member_id=member_id(alice.public_key()), now=NOW)
    assert set(payload) == {"version", "issued_at", "valid_until", "member", "salt", "entries"}
    assert [e[1:3] for e in sorted(payload["entries"], key=lambda e: e[1])] == [
        [1, "get-tested"],
        [3, "isolate-and-test"],
    ]
    text = json.dumps(payload)
    for pid in ids:  # neither ids nor the server's risk-list refs appear
        assert pid.hex() not in text and pass_ref(pid) not in text
    assert look_up(payload, ids[0], now=NOW) == (1, "get-tested")
    assert look_up(payload, ids[1], now=NOW + 3 * DAY) is None  # its entry has expired
    assert look_up(payload, ids[2], now=NOW) is None
    again = list_payload(levels, version=2, member_id="x", now=NOW)
    assert unb64(again["salt"]) != unb64(payload["salt"])  # versions do not line up
    assert {e[0] for e in again["entries"]}.isdisjoint(e[0] for e in payload["entries"])
    assert exposure_hash(unb64(payload["salt"]), ids[0]) in {e[0] for e in payload["entries"]}


def test_only_the_member_it_names_can_sign_it():
    alice, bob = members()
    keys = {member_id(alice.public_key()): alice.public_key(), member_id(bob.public_key()): bob.public_key()}
    payload = list_payload({}, version=1, member_id=member_id(alice.public_key()), now=NOW)
    assert verify_list(sign_list(payload, alice), keys)["version"] == 1
    with pytest.raises(ExposureListError, match="another member"):
        verify_list(sign_list(payload, bob), keys)
    with pytest.raises(ExposureListError, match="not signed by a key trusted"):
        verify_list(sign_list(payload, seeded_ed25519("server-operator")), keys)


def test_exposures_publish_signs_what_the_risk_list_says_now(tmp_path, authority):
    data = tmp_path / "central"
    keys = committee_with_a_case(run, tmp_path, data, "CASE-1")
    now = time.time()
    ids = [seed_bytes(f"visitor-{i}", 16) for i in range(3)]
    storage = with_storage(data)
    try:
        publish_manifest(authority, storage, now=now)
        alice, _ = members()
        raise_risk(storage, alice, ids[:2], 2, now=now, case_id="CASE-1")
        raise_risk(storage, alice, [ids[1]], 0, now=now + 1, case_id="CASE-1")  # lowered again
    finally:
        storage.close()
    p = run(
        "kiosk-central", "exposures", "publish", "--data", data, "--keys", authority, "--member-key", keys[1]
    )
    assert "version 1 published, signed by Bob: 1 passes (level 1: 0, level 2: 1, level 3: 0)" in p.stdout
    storage = with_storage(data)
    try:
        version, doc = storage.latest_exposure_list(now=now)
    finally:
        storage.close()
    bob = members()[1]
    payload = verify_list(doc, {member_id(bob.public_key()): bob.public_key()})
    assert version == 1 and look_up(payload, ids[0], now=now) == (2, "get-tested-today")
    assert look_up(payload, ids[1], now=now) is None and look_up(payload, ids[2], now=now) is None
    # not a member: refused, nothing published
    (tmp_path / "stranger").mkdir()
    run("kiosk-central", "keys", "init-member", "--dir", tmp_path / "stranger")
    p = run(
        "kiosk-central",
        "exposures",
        "publish",
        "--data",
        data,
        "--keys",
        authority,
        "--member-key",
        tmp_path / "stranger" / "member.key",
        check=False,
    )
    assert p.returncode == 3 and "not a registered, active committee member" in p.stderr
