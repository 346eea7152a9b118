"""The risk list as a delta: a kiosk that holds version N downloads only what changed after
N (a few hundred bytes), merges it into the chain it keeps (each link signed and verified),
and a removal reaches it as a level-0 tombstone; a kiosk too far behind, or whose chain is
long, gets the whole list. The real server process, the real uploader."""

import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.bundle import (
    MAX_CHAIN,
    BundleError,
    bundle_payload,
    chain_docs,
    encode_chain,
    sign_bundle,
    verify_bundle,
    verify_chain,
)
from kiosk.core.decision import Policy
from kiosk.core.keys import BUNDLE_PUB, load_ed25519_public, raw_public
from kiosk.core.passes import pass_ref
from kiosk.core.timing import DAY
from kiosk.store.checkins import CheckinStore
from sync import protocol
from sync.central.storage.interface import TOMBSTONE_DAYS
from sync.central.storage.sqlite_backend import SqliteStorage
from sync.uploader import Uploader
from workbench.localserver import LocalServer

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
        admin.set_risks([pid(i) for i in range(N)], 3, now=now, expires_at=now + 14 * DAY)
        store = CheckinStore.open(tmp_path / "k.db", sealing=sealing, venue_id="v")
        up = Uploader(
            store=store,
            server_url=server.url,
            kiosk_id=kid,
            device_key=device,
            bundle_key=load_ed25519_public(authority / BUNDLE_PUB),
            bundle_file=tmp_path / "bundle.json",
        )
        yield server, admin, up, kid, device, tmp_path
        store.close()
        admin.close()


def held(up):
    return verify_chain(up.bundle_file.read_bytes(), up.bundle_key, kiosk_id=up.kiosk_id)


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
    assert up.fetch_bundle() == f"updated to version {v}"
    assert len(held(up).risk_list.levels) == N
    admin.set_risk(pid(N), 3, now=time.time(), expires_at=time.time() + DAY)
    whole = raw_bundle(server, kid, device)
    delta = raw_bundle(server, kid, device, since=v)
    assert verify_bundle(delta, up.bundle_key).risk_since == v
    assert len(delta) < 2000 < 100_000 < len(whole)  # bytes: one entry vs five thousand
    assert up.fetch_bundle() == f"updated to version {v + 1}"
    merged = held(up)
    assert len(merged.risk_list.levels) == N + 1 and merged.risk_list.level_for(pid(N)) == 3
    assert len(chain_docs(up.bundle_file.read_bytes())) == 2
    from kiosk.app import Trust
    from kiosk.compose import TrustProvider

    trust = TrustProvider(
        Trust(issuers={}), bundle_file=up.bundle_file, bundle_key=up.bundle_key, kiosk_id=kid
    )()  # what `kiosk run` uses
    assert trust.risk_list.level_for(pid(N)) == 3 and len(trust.risk_list.levels) == N + 1


def test_an_expired_entry_leaves_the_kiosks_list_through_a_tombstone(world):
    server, admin, up, kid, device, tmp = world
    up.fetch_bundle()
    old = admin.risk_version()
    admin.set_risk(pid(7), 3, now=time.time(), expires_at=time.time() - 1)  # already expired
    up.fetch_bundle()
    assert held(up).risk_list.level_for(pid(7)) == 3
    assert admin.purge(now=time.time()).risk_entries == 1
    assert up.fetch_bundle().startswith("updated to version")
    assert held(up).risk_list.level_for(pid(7)) == 0 and len(held(up).risk_list.levels) == N - 1
    # Long after, the tombstone is gone: a kiosk that was at the old version gets it whole.
    admin.purge(now=time.time() + (TOMBSTONE_DAYS + 1) * DAY)
    answer = verify_bundle(raw_bundle(server, kid, device, since=old), up.bundle_key)
    assert answer.risk_since is None and pass_ref(pid(7)) not in answer.risk_list.levels


def test_a_long_chain_is_replaced_by_the_whole_list(world):
    server, admin, up, kid, device, tmp = world
    up.fetch_bundle()
    for i in range(MAX_CHAIN + 2):
        admin.set_risk(pid(N + 100 + i), 2, now=time.time(), expires_at=time.time() + DAY)
        up.fetch_bundle()
        assert len(chain_docs(up.bundle_file.read_bytes())) <= MAX_CHAIN
    assert len(held(up).risk_list.levels) == N + MAX_CHAIN + 2


def test_links_that_do_not_follow_are_refused(authority):
    from kiosk.core.keys import load_ed25519_private

    key = load_ed25519_private(authority / "bundle.key")
    pub = load_ed25519_public(authority / BUNDLE_PUB)

    def link(version, levels, since=None):
        return sign_bundle(
            bundle_payload(
                version=version,
                issued_at=1.0,
                kiosk_id="k",
                issuer_keys=[],
                sealing_keys=[],
                levels=levels,
                policy=Policy(),
                since=since,
            ),
            key,
        )

    ref = pass_ref(pid(1))
    good = encode_chain([link(5, {ref: 3}), link(6, {ref: 0}, since=5)])
    assert verify_chain(good, pub).risk_list.levels == {}
    with pytest.raises(BundleError, match="does not follow"):
        verify_chain(encode_chain([link(5, {ref: 3}), link(7, {}, since=6)]), pub)
    with pytest.raises(BundleError, match="does not start with a whole"):
        verify_chain(encode_chain([link(6, {}, since=5)]), pub)
    tampered = good.replace(b'"chain": ["', b'"chain": ["x', 1)
    with pytest.raises(BundleError):
        verify_chain(tampered, pub)
