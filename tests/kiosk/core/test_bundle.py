"""The bundle and what each part of it is trusted by: the manifest by the offline root, the
freshness by a server key the manifest allows, each risk change by the member who made it
(until its own expiry), tag keys by the root; checked before use, on the wire and on disk;
the kiosk's Trust follows the bundle file and never goes below the versions its database
holds; the uploader's backoff."""

import base64
import json
import random

import pytest

from kiosk.app import Trust
from kiosk.compose import TrustProvider
from kiosk.core.auditheads import member_id
from kiosk.core.bundle import (
    BundleError,
    make_bundle,
    sign_receipt,
    verify_bundle,
    verify_chain,
    verify_receipt,
)
from kiosk.core.decision import Policy, decide
from kiosk.core.manifest import FRESHNESS, RECEIPTS, manifest_payload, sign_manifest
from kiosk.core.passes import pass_ref
from kiosk.core.reasons import Outcome, Reason
from kiosk.core.riskstatements import sign_statement, statement_payload
from kiosk.core.timing import DAY
from kiosk.uploader import Backoff
from testkit import NOW
from workbench.world import seeded_ed25519

ROOT = seeded_ed25519("test-bundle/root")
FRESH = seeded_ed25519("test-bundle/freshness")
RECEIPT = seeded_ed25519("test-bundle/receipt")
MEMBER = seeded_ed25519("test-bundle/member")
SECOND = seeded_ed25519("test-bundle/second member")
STRANGER = seeded_ed25519("test-bundle/stranger")
P7 = b"\7" * 16


def manifest(
    issuer_pub, *, version=1, deny_level=3, members=(MEMBER, SECOND), root=ROOT, next_root=None, added_by=None
):
    return sign_manifest(
        manifest_payload(
            version=version,
            issued_at=NOW,
            issuer_keys=[issuer_pub],
            policy=Policy(deny_level=deny_level),
            members={member_id(m.public_key()): m.public_key() for m in members},
            server_keys=[(FRESH.public_key(), [FRESHNESS]), (RECEIPT.public_key(), [RECEIPTS])],
            next_root=next_root,
            added_by=added_by or {member_id(m.public_key()): "founder" for m in members},
        ),
        root,
    )


def statement(level, *, pass_id=P7, at=NOW - 60, days=14, member=MEMBER, sid="s1", cosigned=False):
    """A member's risk statement; ``cosigned``: a second member (SECOND) signed it too, as a
    refusal needs."""
    return sign_statement(
        statement_payload(
            statement_id=sid,
            pass_refs=[pass_ref(pass_id)],
            level=level,
            case_id="OB-1",
            at=at,
            expires_at=at + days * DAY,
            member_id=member_id(member.public_key()),
            cosigner=member_id(SECOND.public_key()) if cosigned else None,
        ),
        member,
        SECOND if cosigned else None,
    )


def bundle(issuer_pub, *, version=1, statements=(), manifest_doc=None, kiosk_id="k-1", key=FRESH, since=None):
    doc = manifest_doc or manifest(issuer_pub)
    mv = json.loads(base64.b64decode(json.loads(doc)["payload"]))["version"]
    return make_bundle(
        manifest=doc,
        statements=list(statements),
        tag_keys=[],
        audit_head=None,
        kiosk_id=kiosk_id,
        version=version,
        manifest_version=mv,
        issued_at=NOW,
        since=since,
        key=key,
    )


def test_a_bundle_round_trips_through_its_three_signers(issuer_key):
    b = verify_bundle(
        bundle(issuer_key.public_key(), statements=[statement(3, cosigned=True)]),
        ROOT.public_key(),
        kiosk_id="k-1",
    )
    assert b.version == 1 and b.kiosk_id == "k-1" and b.policy.deny_level == 3 and b.manifest_version == 1
    assert b.risk_list.level_for(P7, now=NOW) == 3 and b.risk_list.level_for(b"\2" * 16, now=NOW) == 0
    assert len(b.issuers) == 1 and b.receipt_keys == (RECEIPT.public_key(),)


def test_a_refusal_takes_two_independent_members(issuer_key):
    """Refusing entry is the one power the system holds over a person: a statement at the deny
    level counts only with a second, independent member's signature; one member alone (or a
    member with one they added) raises the pass to one below: enter, and get tested."""
    pub = issuer_key.public_key()
    alone = verify_bundle(bundle(pub, statements=[statement(3)]), ROOT.public_key())
    assert alone.risk_list.level_for(P7, now=NOW) == 2
    two = verify_bundle(bundle(pub, statements=[statement(3, cosigned=True)]), ROOT.public_key())
    assert two.risk_list.level_for(P7, now=NOW) == 3
    added = {
        member_id(MEMBER.public_key()): "founder",
        member_id(SECOND.public_key()): member_id(MEMBER.public_key()),
    }
    puppet = manifest(pub, added_by=added)  # SECOND was added by MEMBER: not independent
    dependent = verify_bundle(
        bundle(pub, statements=[statement(3, cosigned=True)], manifest_doc=puppet), ROOT.public_key()
    )
    assert dependent.risk_list.level_for(P7, now=NOW) == 2
    # A cosignature that is not the second member's own is refused outright.
    forged = json.loads(statement(3, cosigned=True))
    forged["cosignature"] = base64.b64encode(STRANGER.sign(b"x")).decode()
    with pytest.raises(BundleError, match="second signature"):
        verify_bundle(bundle(pub, statements=[json.dumps(forged).encode()]), ROOT.public_key())
    # Below the deny level, one member's statement stands (an exposure notice).
    assert (
        verify_bundle(bundle(pub, statements=[statement(2)]), ROOT.public_key()).risk_list.level_for(
            P7, now=NOW
        )
        == 2
    )


def test_the_server_key_cannot_grant_power(issuer_key):
    """What a thief of the server's keys folder tried: their own issuer, a lower deny level,
    a risk entry: none of it is signed by the root or a member, so none of it is used."""
    forged_manifest = manifest(STRANGER.public_key(), deny_level=1, root=FRESH)  # signed by the server key
    with pytest.raises(BundleError, match="manifest refused"):
        verify_bundle(bundle(issuer_key.public_key(), manifest_doc=forged_manifest), ROOT.public_key())
    forged_statement = statement(3, member=FRESH)  # a risk entry the server signed itself
    with pytest.raises(BundleError, match="risk statement refused"):
        verify_bundle(bundle(issuer_key.public_key(), statements=[forged_statement]), ROOT.public_key())
    with pytest.raises(BundleError, match="freshness refused"):  # freshness from a key not allowed
        verify_bundle(bundle(issuer_key.public_key(), key=STRANGER), ROOT.public_key())
    with pytest.raises(BundleError, match="freshness refused"):  # the receipt key may not sign it
        verify_bundle(bundle(issuer_key.public_key(), key=RECEIPT), ROOT.public_key())


def test_every_change_to_a_bundle_part_is_refused(issuer_key):
    data = bundle(issuer_key.public_key(), statements=[statement(3)])
    outer = json.loads(data)
    rng = random.Random(4)
    for part in ("manifest", "freshness"):
        doc = json.loads(outer[part])
        body = bytearray(base64.b64decode(doc["payload"]))
        for i in rng.sample(range(len(body)), 30):
            forged = bytearray(body)
            forged[i] ^= 1 << rng.randrange(8)
            doc2 = {**doc, "payload": base64.b64encode(bytes(forged)).decode()}
            bad = json.dumps({**outer, part: json.dumps(doc2)}).encode()
            with pytest.raises(BundleError):
                verify_bundle(bad, ROOT.public_key())
    # A statement dropped or swapped in transit no longer matches the freshness statement.
    with pytest.raises(BundleError, match="do not match"):
        verify_bundle(json.dumps({**outer, "statements": []}).encode(), ROOT.public_key())


@pytest.mark.parametrize(
    "data,why",
    [
        (b"", "malformed"),
        (b"[]", "not a"),
        (b'{"format": "other"}', "not a"),
        (json.dumps({"format": "venue-kiosk bundle v2"}).encode(), "malformed"),
    ],
)
def test_garbage_is_a_clear_bundle_error(data, why):
    with pytest.raises(BundleError, match=why):
        verify_bundle(data, ROOT.public_key())


def test_other_kiosk_rollback_and_out_of_bounds_statements_are_refused(issuer_key):
    pub = issuer_key.public_key()
    data = bundle(pub, version=3, manifest_doc=manifest(pub, version=5))
    with pytest.raises(BundleError, match="manifest refused"):
        verify_bundle(data, STRANGER.public_key())
    with pytest.raises(BundleError, match="another kiosk"):
        verify_bundle(data, ROOT.public_key(), kiosk_id="k-2")
    with pytest.raises(BundleError, match="older"):
        verify_bundle(data, ROOT.public_key(), min_version=4)
    with pytest.raises(BundleError, match="older than the one held"):
        verify_bundle(data, ROOT.public_key(), min_manifest=6)
    too_long = json.loads(statement(3, days=14))
    body = json.loads(base64.b64decode(too_long["payload"]))
    body["expires"] = body["at"] + 365 * DAY  # a year, re-signed by the member: still refused
    with pytest.raises(ValueError, match="90 days"):
        statement_payload(
            statement_id="x",
            pass_refs=[pass_ref(P7)],
            level=3,
            case_id="c",
            at=0,
            expires_at=365 * DAY,
            member_id="m",
        )


def test_an_entry_stops_applying_at_its_expiry_on_the_kiosks_clock(issuer_key):
    b = verify_bundle(
        bundle(issuer_key.public_key(), statements=[statement(3, days=1, cosigned=True)]), ROOT.public_key()
    )
    assert b.risk_list.level_for(P7, now=NOW) == 3
    assert b.risk_list.level_for(P7, now=NOW - 60 + DAY + 1) == 0  # offline, a day later


def test_the_newest_statement_for_a_pass_wins(issuer_key):
    raised = statement(3, at=NOW - 120, sid="a")
    lowered = statement(0, at=NOW - 60, sid="b", days=90)
    b = verify_bundle(bundle(issuer_key.public_key(), statements=[lowered, raised]), ROOT.public_key())
    assert b.risk_list.level_for(P7, now=NOW) == 0


def test_a_root_names_its_successor_and_the_chain_follows_it(issuer_key):
    pub = issuer_key.public_key()
    new_root = seeded_ed25519("test-bundle/new-root")
    first = bundle(pub, manifest_doc=manifest(pub, version=1, next_root=new_root.public_key()))
    b = verify_bundle(first, ROOT.public_key())
    assert b.manifest.next_root is not None
    second = bundle(
        pub,
        version=2,
        manifest_doc=manifest(pub, version=2, root=new_root),
        since=1,
        statements=[statement(3, cosigned=True)],
    )
    chain = json.dumps({"format": "venue-kiosk bundle chain v1", "chain": [first.decode(), second.decode()]})
    merged = verify_chain(chain.encode(), ROOT.public_key())
    assert merged.version == 2 and merged.risk_list.level_for(P7, now=NOW) == 3
    # Held later, the chain still verifies from the root pinned at install, each link against
    # the root of its own version (the old root's first link included): nothing is dropped.
    assert (
        merged.roots is not None
        and merged.roots.latest.public_bytes_raw() == new_root.public_key().public_bytes_raw()
    )
    again = verify_chain(chain.encode(), merged.roots)
    assert again.risk_list.level_for(P7, now=NOW) == 3
    # A whole list the successor signed, to a kiosk that missed the hand-over: it follows the
    # succession manifest the bundle carries (signed by the old root).
    whole = make_bundle(
        manifest=manifest(pub, version=3, root=new_root),
        statements=[statement(3, cosigned=True)],
        tag_keys=[],
        audit_head=None,
        kiosk_id="k-1",
        version=3,
        manifest_version=3,
        issued_at=NOW,
        since=None,
        key=FRESH,
        succession=[manifest(pub, version=1, next_root=new_root.public_key()).decode()],
    )
    late = verify_bundle(whole, ROOT.public_key())
    assert late.risk_list.level_for(P7, now=NOW) == 3 and len(late.roots.roots) == 2
    # After the hand-over, the old root signs nothing a kiosk takes (a thief of it included).
    with pytest.raises(BundleError, match="manifest refused"):
        verify_bundle(bundle(pub, version=4, manifest_doc=manifest(pub, version=4)), merged.roots)


def test_receipts_verify_only_with_a_receipt_key_for_this_kiosk_and_batch():
    r = sign_receipt(kiosk_id="k-1", batch_id="b-1", stored=["a", "b"], at=NOW, key=RECEIPT)
    assert verify_receipt(r, [RECEIPT.public_key()], kiosk_id="k-1", batch_id="b-1") == ["a", "b"]
    with pytest.raises(BundleError):
        verify_receipt(r, [FRESH.public_key()], kiosk_id="k-1", batch_id="b-1")
    with pytest.raises(BundleError, match="another kiosk or batch"):
        verify_receipt(r, [RECEIPT.public_key()], kiosk_id="k-2", batch_id="b-1")
    forged = sign_receipt(kiosk_id="k-1", batch_id="b-1", stored=["a"], at=NOW, key=STRANGER)
    with pytest.raises(BundleError, match="receipt refused"):
        verify_receipt(forged, [RECEIPT.public_key()], kiosk_id="k-1", batch_id="b-1")


class States(dict):
    """A kiosk database's state table, in memory (the store's get_state / set_states)."""

    def get_state(self, key, default=None):
        return self.get(key, default)

    def set_states(self, values):
        self.update(values)


def test_the_kiosk_trust_follows_the_held_chain_and_never_goes_back(tmp_path, issuer_key, make_pass):
    """What `kiosk run` does between scans while `kiosk sync` takes bundles: the database's
    verified chain rules; an edited copy, an older signed bundle put back, or a bundle file
    changed or gone change nothing."""
    from kiosk.trust import HeldTrust, TrustKey

    states = States()
    held = HeldTrust(states, root=ROOT.public_key(), kiosk_id="k-1")
    provider = TrustProvider(Trust(issuers={}), held)
    text = make_pass(0, pass_id=P7)
    assert provider().issuers == {}  # no bundle yet

    def scan():
        t = provider()
        return decide(text, trusted=t.issuers, risk_list=t.risk_list, policy=t.policy, now=NOW)

    pub = issuer_key.public_key()
    assert scan().reason is Reason.UNKNOWN_KEY
    held.take(bundle(pub), now=NOW)
    assert scan().outcome is Outcome.ADMIT  # the manifest's issuer key
    held.take(bundle(pub, version=2, statements=[statement(3, cosigned=True)]), now=NOW)
    d = scan()
    assert (d.outcome, d.reason, d.risk_level) == (Outcome.DENY, Reason.RISK_LIST, 3)
    # Someone edits the copy in the database to lift the refusal: it no longer verifies; the
    # door keeps what it had, and a fresh start holds nothing rather than the edited list.
    outer = json.loads(states[TrustKey.COPY.value])
    outer["statements"] = []
    states[TrustKey.COPY.value] = json.dumps(outer)
    states[TrustKey.GENERATION.value] = "99"
    assert scan().outcome is Outcome.DENY
    assert (
        TrustProvider(
            Trust(issuers={}), HeldTrust(states, root=ROOT.public_key(), kiosk_id="k-1")
        )().risk_list.levels
        == {}
    )
    # An old, genuinely signed bundle taken again (rollback): refused, the floor holds.
    with pytest.raises(BundleError, match="older than the one held"):
        held.take(bundle(pub, version=1), now=NOW)
    assert int(states[TrustKey.BUNDLE_FLOOR.value]) == 2


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


def test_a_member_who_left_keeps_their_statements_in_force_and_signs_nothing_new(issuer_key):
    """A revocation must not make every kiosk refuse its bundle, nor drop a refusal or a
    lowering still in force: the root's manifest lists the departed member's statements in
    force by hash, and their key verifies exactly those (never one made, or backdated, after)."""
    from kiosk.core.signed import doc_hash

    pub = issuer_key.public_key()
    refusal = statement(3, cosigned=True, sid="refusal")  # SECOND cosigned it, then left
    later = statement(2, member=SECOND, sid="backdated", pass_id=b"\5" * 16)  # SECOND's key, stolen
    after = sign_manifest(
        manifest_payload(
            version=2,
            issued_at=NOW,
            issuer_keys=[pub],
            members={member_id(MEMBER.public_key()): MEMBER.public_key()},
            server_keys=[(FRESH.public_key(), [FRESHNESS]), (RECEIPT.public_key(), [RECEIPTS])],
            added_by={member_id(MEMBER.public_key()): "founder", member_id(SECOND.public_key()): "founder"},
            former={member_id(SECOND.public_key()): (SECOND.public_key(), [doc_hash(refusal)])},
        ),
        ROOT,
    )
    held = verify_bundle(bundle(pub, statements=[refusal], manifest_doc=after), ROOT.public_key())
    assert held.risk_list.level_for(P7, now=NOW) == 3  # still refused: two independent members signed it
    with pytest.raises(BundleError, match="not signed by a key trusted"):
        verify_bundle(bundle(pub, statements=[refusal, later], manifest_doc=after), ROOT.public_key())
    without = manifest(pub, version=2, members=(MEMBER,))  # what a manifest without the list did
    with pytest.raises(BundleError, match="risk statement refused"):
        verify_bundle(bundle(pub, statements=[refusal], manifest_doc=without), ROOT.public_key())
