"""The signed bundle: checked before use, on the wire and on disk; the kiosk's Trust follows
the bundle file; the uploader's backoff."""

import base64
import json
import os
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.app import Trust
from kiosk.compose import TrustProvider
from kiosk.core.bundle import BundleError, sign_bundle, verify_bundle
from kiosk.core.decision import decide
from kiosk.core.keys import raw_public
from kiosk.core.passes import pass_ref
from kiosk.core.reasons import Outcome, Reason
from sync.uploader import Backoff
from workbench.testkit import NOW

BUNDLE_KEY = Ed25519PrivateKey.generate()


def payload(issuer_pub, *, version=1, levels=None, kiosk_id="k-1", deny_level=3):
    raw = raw_public(issuer_pub)
    return {
        "version": version,
        "issued_at": NOW,
        "kiosk_id": kiosk_id,
        "issuer_keys": [base64.b64encode(raw).decode()],
        "sealing_keys": [{"kid": "abcd", "public": base64.b64encode(b"\0" * 32).decode()}],
        "risk_list": {"version": str(version), "levels": levels or {}},
        "policy": {"deny_level": deny_level, "clock_skew_s": 300},
    }


def test_a_signed_bundle_round_trips(issuer_key):
    ref = pass_ref(b"\1" * 16)
    data = sign_bundle(payload(issuer_key.public_key(), levels={ref: 3}), BUNDLE_KEY)
    b = verify_bundle(data, BUNDLE_KEY.public_key(), kiosk_id="k-1")
    assert b.version == 1 and b.kiosk_id == "k-1" and b.policy.deny_level == 3
    assert b.risk_list.level_for(b"\1" * 16) == 3 and b.risk_list.level_for(b"\2" * 16) == 0
    assert len(b.issuers) == 1 and b.sealing_keys == (("abcd", b"\0" * 32),)


def test_every_change_to_a_signed_bundle_is_refused(issuer_key):
    data = sign_bundle(payload(issuer_key.public_key()), BUNDLE_KEY)
    outer = json.loads(data)
    body = bytearray(base64.b64decode(outer["payload"]))
    rng = random.Random(4)
    for i in rng.sample(range(len(body)), 60):
        forged = bytearray(body)
        forged[i] ^= 1 << rng.randrange(8)
        bad = json.dumps({**outer, "payload": base64.b64encode(bytes(forged)).decode()}).encode()
        with pytest.raises(BundleError):
            verify_bundle(bad, BUNDLE_KEY.public_key())


@pytest.mark.parametrize(
    "data,why",
    [
        (b"", "malformed"),
        (b"[]", "malformed"),
        (b'{"format": "other"}', "not a"),
        (
            json.dumps({"format": "venue-kiosk bundle v1", "payload": "!!", "signature": "AA=="}).encode(),
            "malformed",
        ),
    ],
)
def test_garbage_is_a_clear_bundle_error(data, why):
    with pytest.raises(BundleError, match=why):
        verify_bundle(data, BUNDLE_KEY.public_key())


def test_wrong_key_other_kiosk_rollback_and_bad_levels_are_refused(issuer_key):
    pub = issuer_key.public_key()
    data = sign_bundle(payload(pub, version=3), BUNDLE_KEY)
    with pytest.raises(BundleError, match="signature"):
        verify_bundle(data, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(BundleError, match="another kiosk"):
        verify_bundle(data, BUNDLE_KEY.public_key(), kiosk_id="k-2")
    with pytest.raises(BundleError, match="older"):
        verify_bundle(data, BUNDLE_KEY.public_key(), min_version=4)
    for levels in ({"short": 3}, {pass_ref(b"\1" * 16): 4}, {pass_ref(b"\1" * 16): "3"}):
        with pytest.raises(BundleError, match="payload"):
            verify_bundle(sign_bundle(payload(pub, levels=levels), BUNDLE_KEY), BUNDLE_KEY.public_key())
    with pytest.raises(BundleError, match="payload"):  # the public rules: deny_level 1..3
        verify_bundle(sign_bundle(payload(pub, deny_level=0), BUNDLE_KEY), BUNDLE_KEY.public_key())


def test_the_kiosk_trust_follows_the_bundle_file_and_keeps_the_old_one_on_a_bad_file(
    tmp_path, issuer_key, make_pass
):
    """What `kiosk run` does between scans while `kiosk sync` writes bundle.json."""
    path = tmp_path / "bundle.json"
    provider = TrustProvider(
        Trust(issuers={}), bundle_file=path, bundle_key=BUNDLE_KEY.public_key(), kiosk_id="k-1"
    )
    text = make_pass(0, pass_id=b"\7" * 16)
    assert provider().issuers == {}  # no bundle yet

    def scan():
        t = provider()
        return decide(text, trusted=t.issuers, risk_list=t.risk_list, policy=t.policy, now=NOW)

    assert scan().reason is Reason.UNKNOWN_KEY
    path.write_bytes(sign_bundle(payload(issuer_key.public_key()), BUNDLE_KEY))
    assert scan().outcome is Outcome.ADMIT  # the bundle's issuer key
    path.write_bytes(
        sign_bundle(payload(issuer_key.public_key(), version=2, levels={pass_ref(b"\7" * 16): 3}), BUNDLE_KEY)
    )
    d = scan()
    assert (d.outcome, d.reason, d.risk_level) == (Outcome.DENY, Reason.RISK_LIST, 3)

    # Someone edits the file on the SD card to lift the refusal: not used, old Trust kept.
    forged = payload(issuer_key.public_key(), version=3)
    data = json.loads(sign_bundle(forged, BUNDLE_KEY))
    data["payload"] = base64.b64encode(json.dumps({**forged, "version": 4}).encode()).decode()
    path.write_text(json.dumps(data))
    assert scan().outcome is Outcome.DENY
    # An old, genuinely signed bundle put back (rollback): not used either.
    path.write_bytes(sign_bundle(payload(issuer_key.public_key(), version=1), BUNDLE_KEY) + b" ")
    assert scan().outcome is Outcome.DENY and provider.bundle.version == 2
    os.remove(path)
    assert scan().outcome is Outcome.DENY  # a missing file changes nothing


def test_backoff_grows_caps_jitters_and_honours_retry_after():
    b = Backoff(base_s=1.0, max_s=30.0)
    rng = random.Random(1)
    for failures, (lo, hi) in {1: (0.5, 1), 2: (1, 2), 3: (2, 4), 6: (15, 30), 50: (15, 30)}.items():
        delays = [b.delay(failures, rng=rng) for _ in range(200)]
        assert lo <= min(delays) and max(delays) <= hi
        assert len(set(delays)) > 100  # jittered, not lock-step
    assert b.delay(1, retry_after=120, rng=rng) == 120  # the server asked to wait
    assert b.delay(1, retry_after=10**6, rng=rng) == 3600  # but not forever
    assert 0.5 <= b.delay(1, retry_after=0, rng=rng) <= 1  # Retry-After: 0 never spins
