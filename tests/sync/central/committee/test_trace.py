"""Tracing: the infected pass's check-ins found by search tag, only the records around them
opened, exposed passes raised on the risk list a real kiosk downloads, and the entry expiring.
The check-ins are built with a clock passed in, through the kiosk's own store (period
sealing keys, tag keys sealed to each kiosk's own key) and ingested by the server."""

import base64
import json
import subprocess
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.core.decision import Policy, RiskList, decide
from kiosk.core.keys import init_authority_keys, load_ed25519_private, raw_public, write_private
from kiosk.core.passes import encode_pass
from kiosk.core.sealkeys import SealedTagKey, Sealer, Tagger, venue_tag_key
from kiosk.store.checkins import CheckinStore
from kiosk.store.sqlitedb import open_db
from sync.central import keyring
from sync.central.committee import members as committee
from sync.central.committee.audit import AuditError
from sync.central.committee.trace import trace
from sync.central.keyring import committee_keys
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import BIN
from workbench.world import members, seeded_committee_keys, unlocked

DAY, MIN = 86_400, 60
NOW = time.time()
T = NOW - NOW % DAY - 2 * DAY + 10 * 3600  # two days ago, 10:00 UTC


def pid(name: str) -> bytes:
    return name.encode() * 16


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace")
    keys = tmp / "committee"
    init_authority_keys(keys)
    seeded_committee_keys(keys, now=T - 3 * DAY, ahead=10)
    issuer = load_ed25519_private(keys / "issuer.key")
    from kiosk.core.keys import trusted_issuers

    trusted = trusted_issuers([keys / "issuer.pub"])
    data = tmp / "central"
    storage = SqliteStorage.in_folder(data)
    kiosks = {}
    for name, venue in (("A", "Market"), ("B", "School"), ("C", "Factory")):
        tag = X25519PrivateKey.generate()
        kid = storage.register_kiosk(
            venue=venue,
            public_key=raw_public(Ed25519PrivateKey.generate().public_key()),
            now=T - 3 * DAY,
            tag_public=raw_public(tag.public_key()),
        )
        kiosks[name] = (kid, venue, tag)
    assert keyring.distribute_tag_keys(keys, storage, now=T - 3 * DAY) == 3 * 10
    periods = keyring.public_periods(keys)

    def checkin(kiosk, who, at, *, venue=None):
        kid, registered, tag = kiosks[kiosk]
        sealed_tags = [SealedTagKey(*k) for k in storage.tag_keys_for(kid, T - 3 * DAY)]
        store = CheckinStore(
            open_db(None),
            venue_id=venue or registered,
            sealing=Sealer(fallback=None, periods=lambda: periods),
            tagger=Tagger(private_key=tag, kiosk_id=kid, sealed_keys=lambda: sealed_tags),
        )
        text = encode_pass(
            signing_key=issuer,
            issuer="t",
            issued_at=int(at) - 60,
            expires_at=int(at) + 3600,
            pass_id=pid(who),
            risk_level=0,
        )
        store.record(
            decide(text, trusted=trusted, risk_list=RiskList(), policy=Policy(), now=at),
            now=at,
            clock_synced=True,
        )
        rows = [{**r, "sealed": base64.b64decode(r["sealed"])} for r in store.pending(10)]
        assert rows[0]["tag"], "every record here carries a search tag"
        storage.ingest(kid, str(uuid.uuid4()), rows, now=at)

    checkin("A", "P", T)  # the infected visitor ...
    checkin("B", "P", T + 5 * 3600)  # ... twice
    checkin("A", "Q", T + 10 * MIN)  # exposed at A
    checkin("A", "R", T + 2 * 3600)  # at A, but long after
    checkin("C", "S", T)  # same time, another venue
    checkin("B", "U", T + 5 * 3600 - 20 * MIN)  # exposed at B
    checkin("B", "V", T + 5 * 3600 + 45 * MIN)  # outside the 30 minutes
    checkin("A", "W", T + 5 * MIN, venue="Not the market")  # exposed, and its venue is off
    for i in range(60):  # everyone else, elsewhere and other times
        checkin("ABC"[i % 3], "X", T - DAY + i * 997)
    a, b = members()  # the two the wrap key is split between
    committee.found_committee(storage, [("Alice", a), ("Bob", b)], now=NOW)
    from sync.central.manifests import publish

    publish(keys, storage, now=NOW)  # what kiosks trust: the members among it
    committee.open_case(  # Bob opens, Alice (the other founder) approves
        storage,
        key=b,
        case_id="OB-1",
        reason="infected visitor P reported",
        from_ts=T - 2 * DAY,
        to_ts=NOW,
        now=NOW,
    )
    yield dict(
        tmp=tmp,
        keys=keys,
        data=data,
        storage=storage,
        kiosks=kiosks,
        a=a,
        b=b,
        trusted=trusted,
        issuer=issuer,
    )
    storage.close()


def approved(world):
    if committee.state_of(world["storage"]).cases["OB-1"].approved_by is None:
        committee.approve_case(world["storage"], key=world["a"], case_id="OB-1", now=NOW)


def test_trace_needs_an_approved_case_and_a_member(world):
    s, a = world["storage"], world["a"]
    if committee.state_of(s).cases["OB-1"].approved_by is None:
        with pytest.raises(AuditError, match="not approved yet"):
            trace(
                s,
                committee_keys(world["keys"], unlocked(world["keys"])),
                keyring.tag_keys(world["keys"]),
                member_key=a,
                second_key=world["b"],
                case_id="OB-1",
                pass_id=pid("P"),
                now=NOW,
            )
    approved(world)
    with pytest.raises(AuditError, match="not a registered"):
        trace(
            s,
            committee_keys(world["keys"], unlocked(world["keys"])),
            keyring.tag_keys(world["keys"]),
            member_key=Ed25519PrivateKey.generate(),
            case_id="OB-1",
            pass_id=pid("P"),
            now=NOW,
        )


def test_trace_finds_exactly_the_passes_present_within_the_overlap(world):
    approved(world)
    s = world["storage"]
    r = trace(
        s,
        committee_keys(world["keys"], unlocked(world["keys"])),
        keyring.tag_keys(world["keys"]),
        member_key=world["a"],
        second_key=world["b"],
        case_id="OB-1",
        pass_id=pid("P"),
        hash_key=b"k" * 32,
        now=NOW,
    )
    kiosks = world["kiosks"]
    assert [(v.kiosk_id, v.at) for v in r.visits] == [(kiosks["A"][0], T), (kiosks["B"][0], T + 5 * 3600)]
    assert set(r.visits[0].exposed) == {pid("Q").hex(), pid("W").hex()}
    assert set(r.visits[1].exposed) == {pid("U").hex()}
    assert r.decrypted == 5  # P twice, Q, W, U: not the other 63 records
    assert len(r.flagged) == 1 and "'Not the market'" in r.flagged[0]
    assert r.untagged == 0
    # Two steps, each logged before it opens anything: the pass's own check-ins (for their
    # sealed exact times), then the records whose 5-minute bucket can fall in the overlap.
    own, last = (json.loads(e[0]) for e in s.audit_entries()[-2:])
    assert (own["action"], own["detail"]["step"], own["detail"]["records"]) == ("trace", "own", 2)
    assert (last["action"], last["detail"]["step"], last["detail"]["records"]) == ("trace", "around", 3)
    # Every opening accounted for: the kiosks and the records it opened (keyed hashes only the
    # committee can match), and the trace in the reads log with its window and count.
    from sync.central.committee.members import opened_hash

    assert own["detail"]["kiosks"] == last["detail"]["kiosks"] == sorted({kiosks["A"][0], kiosks["B"][0]})
    opened_ids = s._q("SELECT record_id FROM records")
    hashes = {opened_hash(b"k" * 32, rid) for (rid,) in opened_ids}
    both = own["detail"]["opened"] + last["detail"]["opened"]
    assert len(set(both)) == 5 and set(both) <= hashes
    assert not any(rid in json.dumps([own, last]) for (rid,) in opened_ids)  # no record id in clear
    reads = s.reads()[-2:]
    assert [(r["kind"], r["records"], r["case_id"]) for r in reads] == [
        ("trace", 2, "OB-1"),
        ("trace", 3, "OB-1"),
    ]


def test_raise_risk_makes_a_real_kiosk_refuse_the_exposed_pass_and_the_entry_expires(world):
    from kiosk.core.bundle import verify_bundle
    from kiosk.core.keys import load_ed25519_public
    from kiosk.core.passes import pass_ref
    from kiosk.uploader import Uploader
    from workbench.localserver import LocalServer

    approved(world)
    s, tmp = world["storage"], world["tmp"]
    write_private(tmp / "alice.key", world["a"])
    write_private(tmp / "bob.key", world["b"])
    out = subprocess.run(
        [
            BIN / "kiosk-central",
            "trace",
            "--data",
            world["data"],
            "--keys",
            world["keys"],
            "--member-key",
            tmp / "alice.key",
            "--member-key",
            tmp / "bob.key",
            "--case",
            "OB-1",
            "--pass-id",
            pid("P").hex(),
            "--raise-risk",
            "3",
            "--risk-days",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "the pass checked in 2 times" in out.stdout and "raised 3 passes to level 3" in out.stdout
    as_csv = subprocess.run(
        [BIN / "kiosk-central", "trace", "--data", world["data"], "--keys", world["keys"], "--case", "OB-1"]
        + [
            "--member-key",
            tmp / "alice.key",
            "--member-key",
            tmp / "bob.key",
            "--pass-id",
            pid("P").hex(),
            "--csv",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    import csv

    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert {r["exposed_pass_id"] for r in rows} == {pid(x).hex() for x in "QWU"}, as_csv.stderr
    assert all(r["venue"] in ("Market", "School") and r["visit_at"].endswith("+00:00") for r in rows)
    assert "FLAGGED" in out.stdout
    # A real kiosk, after one sync, refuses the exposed pass Q and still admits R.
    device = Ed25519PrivateKey.generate()
    kid = s.register_kiosk(venue="Market 2", public_key=raw_public(device.public_key()), now=NOW)
    kiosk_store = CheckinStore.open(
        tmp / "kiosk.db",
        sealing=Sealer(fallback=None, periods=lambda: keyring.public_periods(world["keys"])),
        venue_id="Market 2",
    )
    with LocalServer(
        tmp / "central", keyring.server_keys_folder(world["keys"], tmp / "server-keys")
    ) as server:
        up = Uploader(
            store=kiosk_store,
            server_url=server.url,
            kiosk_id=kid,
            device_key=device,
            root_key=load_ed25519_public(world["keys"] / "root.pub"),
            bundle_file=tmp / "bundle.json",
        )
        assert up.round().ok
    bundle = verify_bundle(
        (tmp / "bundle.json").read_bytes(), load_ed25519_public(world["keys"] / "root.pub")
    )
    now = time.time()

    def verdict(who):
        text = encode_pass(
            signing_key=world["issuer"],
            issuer="t",
            issued_at=int(now) - 60,
            expires_at=int(now) + 600,
            pass_id=pid(who),
            risk_level=0,
        )
        return decide(
            text, trusted=world["trusted"], risk_list=bundle.risk_list, policy=bundle.policy, now=now
        )

    assert (verdict("Q").outcome.value, verdict("Q").reason.value) == ("deny", "risk_list")
    assert verdict("R").outcome.value == "admit"
    assert pass_ref(pid("Q")) in bundle.risk_list.levels
    # Two days on, the entries stop applying on the kiosk's own clock, offline too ...
    assert bundle.risk_list.level_for(pid("Q"), now=now + 2 * DAY + 1) == 0
    assert verdict("Q").outcome.value == "deny"  # (today it still applies)
    # ... and whole lists made after that leave it out (the purge deletes it later).
    assert s.statements(now=now + 3 * DAY)[1] == []
    kiosk_store.close()


def test_open_records_for_one_pass_opens_only_that_pass_by_its_tags(world):
    from sync.central.committee.reading import open_records

    approved(world)
    s = world["storage"]
    reading = open_records(
        s,
        committee_keys(world["keys"], unlocked(world["keys"])),
        case_id="OB-1",
        member_key=world["a"],
        second_key=world["b"],
        pass_id=pid("P"),
        tag_keys=keyring.tag_keys(world["keys"]),
        now=NOW,
    )
    assert [r["pass_id"] for r in reading.records] == [pid("P").hex()] * 2
    assert reading.unsearched == 0  # every record in the window carries a tag here
    last = json.loads(s.audit_entries()[-1][0])
    assert last["detail"]["by_tag"] is True and last["detail"]["records"] == 2  # nobody else's


def test_a_real_kiosk_gets_its_tag_keys_through_the_bundle_and_tags_its_records(tmp_path):
    """keys init makes the tag key, register-kiosk takes it, keys rotate --data seals the tag
    keys to it, one sync brings them, and the kiosk's records carry the committee's tag."""
    import numpy as np
    from gpiozero.pins.mock import MockFactory

    from kiosk import config
    from kiosk.adapters.frames import ArraySource
    from kiosk.compose import build_app
    from kiosk.core.sealkeys import search_tag
    from sync.central.issuing import issue_pass
    from workbench.localserver import LocalServer
    from workbench.render import camera_frame
    from workbench.world import kiosk_config_text

    keys = tmp_path / "committee"
    init_authority_keys(keys)
    seeded_committee_keys(keys, ahead=0)  # the wrap key (as `keys share` makes it), no periods yet
    data = tmp_path / "central"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        kiosk_config_text(keys, tmp_path / "state" / "k.db", keys=[f'root_key = "{keys / "root.pub"}"'])
    )
    run = lambda *a: subprocess.run([str(x) for x in a], capture_output=True, text=True, timeout=60)  # noqa: E731
    assert run(BIN / "kiosk", "keys", "init", "--config", cfg).returncode == 0
    assert (tmp_path / "state" / "tag.key").exists()
    assert run(BIN / "kiosk-central", "init", "--data", data).returncode == 0
    reg = run(
        BIN / "kiosk-central",
        "register-kiosk",
        "--data",
        data,
        "--venue",
        "Market",
        "--public-key",
        tmp_path / "state" / "device.pub",
        "--tag-key",
        tmp_path / "state" / "tag.pub",
    )
    kid = reg.stdout.strip()
    rot = run(BIN / "kiosk-central", "keys", "rotate", "--keys", keys, "--ahead", "3", "--data", data)
    assert "search-tag keys: 3 new ones sealed" in rot.stdout, rot.stdout + rot.stderr
    with LocalServer(data, keyring.server_keys_folder(keys, tmp_path / "server-keys")) as server:
        cfg.write_text(cfg.read_text() + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n')
        assert run(BIN / "kiosk", "sync", "--config", cfg).returncode == 0
    app = build_app(config.load(cfg), source=ArraySource([]), pin_factory=MockFactory())
    text, pass_id = issue_pass(keys, risk=0)
    app.step(camera_frame(text, np.random.default_rng(2), code_px=220))
    (tag,) = app.store.db.execute("SELECT tag FROM checkins").fetchone()
    app.store.close()
    app.signal.close()
    now = time.time()
    ((end, key),) = [v for s, v in keyring.tag_keys(keys).items() if s <= now < v[0]]
    assert tag == search_tag(venue_tag_key(key, kid), pass_id)  # the committee can find it
    assert tag != search_tag(key, pass_id)  # the day's key itself never reaches a kiosk


def test_the_server_cannot_join_one_pass_across_venues(world):
    """The itinerary attack on the server's database alone: group records by (day, tag).
    With a tag key per venue and day, a pass's visits at two venues on the same day carry
    different tags: no group spans two venues."""
    from collections import defaultdict

    s = world["storage"]
    rows = s._q("SELECT kiosk_id, captured_at, tag FROM records WHERE tag IS NOT NULL")
    groups = defaultdict(set)
    for kiosk_id, at, tag in rows:
        groups[(int(at // DAY), tag)].add(kiosk_id)
    linked = [g for g, kiosks in groups.items() if len(kiosks) > 1]
    assert rows and linked == []  # P was at A and at B that day; X at A, B and C
