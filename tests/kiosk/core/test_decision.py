"""Table tests of the pure decision core, and its refusal to crash on any input."""

import random
import string
import zlib

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.decision import Decision, Policy, RiskList, decide
from kiosk.core.passes import PREFIX, pass_ref
from kiosk.core.reasons import Outcome, Reason
from testkit import NOW

POLICY = Policy()
EMPTY = RiskList()


def run(text, trusted, *, now=NOW, risk_list=EMPTY, policy=POLICY) -> Decision:
    return decide(text, trusted=trusted, risk_list=risk_list, policy=policy, now=now)


@pytest.mark.parametrize(
    "level,outcome,reason",
    [
        (0, Outcome.ADMIT, Reason.VALID),
        (1, Outcome.EXPOSED, Reason.RISK_LEVEL),  # admitted, and told to get tested
        (2, Outcome.EXPOSED, Reason.RISK_LEVEL),
        (3, Outcome.DENY, Reason.RISK_LEVEL),
    ],
)
def test_valid_pass_at_each_level(make_pass, trusted, level, outcome, reason):
    d = run(make_pass(level), trusted)
    assert (d.outcome, d.reason, d.risk_level) == (outcome, reason, level)
    assert d.claims.risk_level == level and d.claims.issuer == "test-authority"
    assert d.recordable


def _cose(text):
    return cbor2.loads(zlib.decompress(base45.b45decode(text[len(PREFIX) :])))


def _pack(obj) -> str:
    return PREFIX + base45.b45encode(zlib.compress(cbor2.dumps(obj))).decode()


def _resign(payload: dict, key, protected: dict | None = None) -> str:
    from kiosk.core.passes import _sig_structure, key_id

    prot = cbor2.dumps(protected or {1: -8, 4: key_id(key.public_key())})
    body = cbor2.dumps(payload)
    return _pack(cbor2.CBORTag(18, [prot, {}, body, key.sign(_sig_structure(prot, body))]))


def _claims(**over):
    c = {1: "x", 6: NOW - 10, 4: NOW + 1000, -65537: b"\x01" * 16, -65538: 0}
    for k, v in over.items():
        key = {"iss": 1, "iat": 6, "exp": 4, "pid": -65537, "risk": -65538}[k]
        if v is None:
            del c[key]
        else:
            c[key] = v
    return c


def invalid_cases(make_pass, issuer_key):
    good = make_pass(0)
    cose = _cose(good)
    prot, unprot, payload, sig = cose.value
    other = Ed25519PrivateKey.generate()
    return [
        ("empty", "", Reason.NOT_A_PASS),
        ("url", "https://example.org", Reason.NOT_A_PASS),
        ("lowercase prefix", "vc1:" + good[4:], Reason.NOT_A_PASS),
        ("next version", "VC2:" + good[4:], Reason.NOT_A_PASS),
        ("prefix only", PREFIX, Reason.BAD_COMPRESSION),
        ("not base45", PREFIX + "abc~~", Reason.BAD_ENCODING),
        ("base45 bad length", PREFIX + "A", Reason.BAD_ENCODING),
        ("not zlib", PREFIX + base45.b45encode(b"hello world").decode(), Reason.BAD_COMPRESSION),
        (
            "truncated zlib",
            PREFIX + base45.b45encode(zlib.compress(b"x" * 50)[:-3]).decode(),
            Reason.BAD_COMPRESSION,
        ),
        ("zlib bomb", PREFIX + base45.b45encode(zlib.compress(b"\0" * 100_000)).decode(), Reason.TOO_LARGE),
        ("too long", PREFIX + "0" * 5000, Reason.TOO_LARGE),
        ("not cbor", PREFIX + base45.b45encode(zlib.compress(b"\xff\xff")).decode(), Reason.MALFORMED),
        ("cbor not array", _pack({"a": 1}), Reason.MALFORMED),
        ("wrong tag", _pack(cbor2.CBORTag(98, [prot, {}, payload, sig])), Reason.MALFORMED),
        ("three elements", _pack(cbor2.CBORTag(18, [prot, {}, payload])), Reason.MALFORMED),
        ("header not bytes", _pack([{1: -8}, {}, payload, sig]), Reason.MALFORMED),
        ("alg ES256 claimed", _resign(_claims(), issuer_key, {1: -7, 4: b"k"}), Reason.MALFORMED),
        ("no kid", _resign(_claims(), issuer_key, {1: -8}), Reason.MALFORMED),
        ("unknown key", make_pass(0, key=other), Reason.UNKNOWN_KEY),
        (
            "signature flipped",
            _pack(cbor2.CBORTag(18, [prot, {}, payload, bytes([sig[0] ^ 1]) + sig[1:]])),
            Reason.BAD_SIGNATURE,
        ),
        (
            "payload swapped",
            _pack(cbor2.CBORTag(18, [prot, {}, _cose(make_pass(3)).value[2], sig])),
            Reason.BAD_SIGNATURE,
        ),
        ("claims not a map", _resign([1, 2], issuer_key), Reason.BAD_CLAIMS),
        ("risk 4", _resign(_claims(risk=4), issuer_key), Reason.BAD_CLAIMS),
        ("risk -1", _resign(_claims(risk=-1), issuer_key), Reason.BAD_CLAIMS),
        ("risk as text", _resign(_claims(risk="3"), issuer_key), Reason.BAD_CLAIMS),
        ("risk as bool", _resign(_claims(risk=True), issuer_key), Reason.BAD_CLAIMS),
        ("no risk", _resign(_claims(risk=None), issuer_key), Reason.BAD_CLAIMS),
        ("short pass id", _resign(_claims(pid=b"\x01" * 8), issuer_key), Reason.BAD_CLAIMS),
        ("no expiry", _resign(_claims(exp=None), issuer_key), Reason.BAD_CLAIMS),
        ("expiry before issue", _resign(_claims(exp=NOW - 20), issuer_key), Reason.BAD_CLAIMS),
        ("expired", make_pass(0, issued=NOW - 10 * 86400, expires=NOW - 3 * 86400), Reason.EXPIRED),
        ("not yet valid", make_pass(0, issued=NOW + 3600, expires=NOW + 86400), Reason.NOT_YET_VALID),
    ]


def test_each_kind_of_invalid(make_pass, issuer_key, trusted):
    for name, text, reason in invalid_cases(make_pass, issuer_key):
        d = run(text, trusted)
        assert (d.outcome, d.reason) == (Outcome.INVALID, reason), name
        assert d.claims is None and d.risk_level is None and not d.recordable, name


def test_clock_skew_is_tolerated_and_bounded(make_pass, trusted):
    p = make_pass(0, issued=NOW - 100, expires=NOW + 100)
    skew = POLICY.clock_skew_s
    assert run(p, trusted, now=NOW + 100 + skew).outcome is Outcome.ADMIT
    assert run(p, trusted, now=NOW + 101 + skew).reason is Reason.EXPIRED
    assert run(p, trusted, now=NOW - 100 - skew).outcome is Outcome.ADMIT
    assert run(p, trusted, now=NOW - 101 - skew).reason is Reason.NOT_YET_VALID
    strict = Policy(clock_skew_s=0)
    assert run(p, trusted, now=NOW + 101, policy=strict).reason is Reason.EXPIRED


def test_risk_list_raises_the_level_never_lowers_it(make_pass, trusted):
    pid = b"\x42" * 16
    p1, p3 = make_pass(1, pass_id=pid), make_pass(3, pass_id=pid)
    raised = RiskList(levels={pass_ref(pid): 3})
    d = run(p1, trusted, risk_list=raised)
    assert (d.outcome, d.reason, d.risk_level) == (Outcome.DENY, Reason.RISK_LIST, 3)
    d = run(p1, trusted, risk_list=RiskList(levels={pass_ref(pid): 2}))
    assert (d.outcome, d.reason, d.risk_level) == (Outcome.EXPOSED, Reason.RISK_LIST, 2)
    lowered = RiskList(levels={pass_ref(pid): 0})
    assert run(p3, trusted, risk_list=lowered).outcome is Outcome.DENY
    other = RiskList(levels={pass_ref(b"\x43" * 16): 3})
    assert run(p1, trusted, risk_list=other).outcome is Outcome.EXPOSED  # its own level 1
    assert run(make_pass(0, pass_id=pid), trusted, risk_list=other).outcome is Outcome.ADMIT


def test_policy_deny_level(make_pass, trusted):
    assert run(make_pass(2), trusted, policy=Policy(deny_level=2)).outcome is Outcome.DENY
    with pytest.raises(ValueError):
        Policy(deny_level=4)
    with pytest.raises(ValueError):
        Policy(deny_level=0)


def test_every_single_character_change_is_refused_or_identical(make_pass, trusted):
    """Each position, each character of the QR alphanumeric set (and a few others): the
    result is invalid, or admitted/denied with exactly the original signed claims."""
    original = make_pass(2, pass_id=b"\x07" * 16)
    base = run(original, trusted)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:" + "a\x00é"
    same = refused = 0
    for i in range(len(original)):
        for ch in alphabet:
            if ch == original[i]:
                continue
            d = run(original[:i] + ch + original[i + 1 :], trusted)
            if d.outcome is Outcome.INVALID:
                refused += 1
            else:
                assert d.claims == base.claims and d.claims.pass_id == base.claims.pass_id, (i, ch)
                assert (d.outcome, d.risk_level) == (base.outcome, base.risk_level)
                same += 1
    assert refused > 0.99 * (refused + same)
    # deletions and insertions too
    for i in range(len(original)):
        for text in (original[:i] + original[i + 1 :], original[:i] + "0" + original[i:]):
            d = run(text, trusted)
            assert d.outcome is Outcome.INVALID or d.claims == base.claims


def test_never_raises_on_any_input(make_pass, trusted):
    rng = random.Random(1234)
    valid = make_pass(0)
    inputs = [None, 42, b"VC1:", [], "\x00" * 10_000, PREFIX + "\ud800", "VC1:" + "%" * 3000]
    for _ in range(2000):
        n = rng.randint(0, 400)
        kind = rng.random()
        if kind < 0.3:
            inputs.append("".join(rng.choice(string.printable) for _ in range(n)))
        elif kind < 0.6:
            inputs.append(
                PREFIX
                + "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:") for _ in range(n))
            )
        elif kind < 0.8:
            inputs.append(PREFIX + base45.b45encode(zlib.compress(rng.randbytes(n))).decode())
        else:
            cut = rng.randint(0, len(valid) - 2)  # always drops a character
            inputs.append(valid[:cut] + valid[cut + 1 :][::-1])
    for text in inputs:
        d = run(text, trusted)
        assert isinstance(d, Decision) and d.outcome is Outcome.INVALID


def test_claims_repr_hides_the_pass_id(make_pass, trusted):
    pid = bytes.fromhex("00112233445566778899aabbccddeeff")
    d = run(make_pass(1, pass_id=pid), trusted)
    assert pid.hex() not in repr(d) and pid.hex() not in str(d.claims)
