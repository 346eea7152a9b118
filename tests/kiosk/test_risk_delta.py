"""The risk list as a delta: a kiosk that holds version N downloads only the member-signed
statements made after N (a few hundred bytes), merges them into the chain it keeps (each link
verified), and an entry stops applying at its own expiry on the kiosk's clock; a kiosk too
far behind, or whose chain is long, gets the whole list. The real server process, the real
uploader."""

import json
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core import protocol
from kiosk.core.bundle import (
    MAX_CHAIN,
    BundleError,
    chain_docs,
    encode_chain,
    make_bundle,
    verify_bundle,
    verify_chain,
)
from kiosk.core.keys import ROOT_PUB, load_ed25519_public, raw_public
from kiosk.core.passes import pass_ref
from kiosk.core.retention import TOMBSTONE_DAYS
from kiosk.core.timing import DAY
from kiosk.store.checkins import CheckinStore
from kiosk.uploader import Uploader
from sync.central.storage.sqlite_backend import SqliteStorage
from workbench.localserver import LocalServer
from workbench.world import raise_risk, trusted_world

N = 5000


def pid(i: int) -> bytes:
    return i.to_bytes(16, "big")


@pytest.fixture
def world(tmp_path, server_keys, sealing, authority):
    with LocalServer(tmp_path / "central", server_keys) as server:
        admin = SqliteStorage.in_folder(server.data_dir)
        device = Ed25519PrivateKey.generate()
        kid = admin.register_kiosk(venue="v", public_key=raw_public(device.public_key()), now=0)
        now = time.time()
        alice, _ = trusted_world(admin, authority, now=now)
        raise_risk(admin, alice, [pid(i) for i in range(N)], 3, now=now)  # one statement: a trace
        server.alice = alice
        store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v")
        up = Uploader(
            store=store,
            server_url=server.url,
            kiosk_id=kid,
            device_key=device,
            root_key=load_ed25519_public(authority / ROOT_PUB),
            bundle_file=tmp_path / "bundle.json",
        )
        yield server, admin, up, kid, device, tmp_path
        store.close()
        admin.close()


def held(up):
    return verify_chain(up.bundle_file.read_bytes(), up.root_key, kiosk_id=up.kiosk_id)


def raw_bundle(server, kid, device, since=None):
    h = protocol.sign_request(
        device, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH, timestamp=int(time.time()), body=b""
    )
    if since is not None:
        h[protocol.RISK_SINCE_HEADER] = str(since)
    return requests.get(server.url + protocol.BUNDLE_PATH, headers=h, timeout=30).content


def test_a_change_costs_the_kiosk_a_few_hundred_bytes_not_the_whole_list(world):
    server, admin, up, kid, device, tmp = world
    v = admin.risk_version()  # the five thousand entries came in one change
    assert up.fetch_bundle().startswith(f"updated to version {v}: first bundle: ")
    assert len(held(up).risk_list.levels) == N
    raise_risk(admin, server.alice, [pid(N)], 3, now=time.time(), days=1)
    whole = raw_bundle(server, kid, device)
    delta = raw_bundle(server, kid, device, since=v)
    assert verify_bundle(delta, up.root_key).risk_since == v
    # bytes: one statement vs five thousand refs (both carry the root's manifest, which with
    # eight weeks of sealing periods is some 25 KB: a kiosk fetches it only when a change comes)
    manifest = len(json.loads(delta)["manifest"])
    assert len(delta) - manifest < 5000 < 100_000 < len(whole) - manifest
    assert (
        up.fetch_bundle()
        == f"updated to version {v + 1}: risk list +1 -0 entries, 0 changed level ({N + 1} in all)"
    )
    merged = held(up)
    assert len(merged.risk_list.levels) == N + 1 and merged.risk_list.level_for(pid(N)) == 3
    assert len(chain_docs(up.bundle_file.read_bytes())) == 2
    from kiosk.app import Trust
    from kiosk.compose import TrustProvider

    trust = TrustProvider(Trust(issuers={}), up.trust)()  # what `kiosk run` uses
    assert trust.risk_list.level_for(pid(N)) == 3 and len(trust.risk_list.levels) == N + 1


def test_an_entry_stops_applying_at_its_expiry_and_leaves_the_server_later(world):
    server, admin, up, kid, device, tmp = world
    up.fetch_bundle()
    old = admin.risk_version()
    raise_risk(admin, server.alice, [pid(N + 7)], 3, now=time.time(), days=1.5 / 86_400)  # 1.5 s
    up.fetch_bundle()
    assert held(up).risk_list.level_for(pid(N + 7), now=time.time()) == 3
    time.sleep(1.6)  # the kiosk's own clock, no server needed
    assert held(up).risk_list.level_for(pid(N + 7), now=time.time()) == 0
    assert admin.purge(now=time.time()).risk_entries == 0  # kept a while for kiosks catching up
    # Long after, it is gone: a kiosk that was at the old version gets the whole list.
    assert admin.purge(now=time.time() + (TOMBSTONE_DAYS + 1) * DAY).risk_entries >= 1
    answer = verify_bundle(raw_bundle(server, kid, device, since=old), up.root_key)
    assert answer.risk_since is None and pass_ref(pid(N + 7)) not in answer.risk_list.levels


def test_a_long_chain_is_replaced_by_the_whole_list(world):
    server, admin, up, kid, device, tmp = world
    up.fetch_bundle()
    for i in range(MAX_CHAIN + 2):
        raise_risk(admin, server.alice, [pid(N + 100 + i)], 2, now=time.time(), days=1)
        up.fetch_bundle()
        assert len(chain_docs(up.bundle_file.read_bytes())) <= MAX_CHAIN
    assert len(held(up).risk_list.levels) == N + MAX_CHAIN + 2


def test_links_that_do_not_follow_are_refused(authority):
    from kiosk.core.auditheads import member_id
    from kiosk.core.keys import load_ed25519_private
    from kiosk.core.manifest import FRESHNESS, manifest_payload, sign_manifest
    from kiosk.core.riskstatements import sign_statement, statement_payload
    from workbench.world import seeded_ed25519

    fresh = load_ed25519_private(authority / "bundle.key")
    root = load_ed25519_private(authority / "root.key")
    member = seeded_ed25519("risk-delta/member")
    mid = member_id(member.public_key())
    manifest = sign_manifest(
        manifest_payload(
            version=1,
            issued_at=1.0,
            issuer_keys=[],
            members={mid: member.public_key()},
            server_keys=[(fresh.public_key(), [FRESHNESS])],
        ),
        root,
    )
    ref = pass_ref(pid(1))

    def statement(level, at):
        return sign_statement(
            statement_payload(
                statement_id=f"s{at}",
                pass_refs=[ref],
                level=level,
                case_id="c",
                at=at,
                expires_at=at + DAY,
                member_id=mid,
            ),
            member,
        )

    def link(version, statements, since=None):
        return make_bundle(
            manifest=manifest,
            statements=statements,
            tag_keys=[],
            audit_head=None,
            kiosk_id="k",
            version=version,
            manifest_version=1,
            issued_at=1.0,
            since=since,
            key=fresh,
        )

    pub = root.public_key()
    good = encode_chain([link(5, [statement(3, 10)]), link(6, [statement(0, 20)], since=5)])
    assert verify_chain(good, pub).risk_list.levels == {}
    with pytest.raises(BundleError, match="does not follow"):
        verify_chain(encode_chain([link(5, [statement(3, 10)]), link(7, [], since=6)]), pub)
    with pytest.raises(BundleError, match="does not start with a whole"):
        verify_chain(encode_chain([link(6, [], since=5)]), pub)
    tampered = good.replace(b'"chain": ["', b'"chain": ["x', 1)
    with pytest.raises(BundleError):
        verify_chain(tampered, pub)
