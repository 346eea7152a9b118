"""The signed bundle a kiosk downloads: issuer keys, sealing keys, risk list, policy.

Wire and file form (JSON)::

    {"format": "venue-kiosk bundle v1", "payload": "<base64 of the payload JSON bytes>",
     "signature": "<base64 Ed25519 signature over b'venue-kiosk bundle v1\\0' + payload bytes>"}

The signature covers the exact payload bytes, so nothing is re-serialised before checking
it. Nothing in a bundle is used before :func:`verify_bundle` has checked it against the
authority's bundle key from the kiosk's config. Pure: no file, network or clock access.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.decision import MAX_RISK, Policy, RiskList
from kiosk.core.keys import raw_public
from kiosk.core.passes import key_id
from kiosk.core.sealkeys import PeriodKey, SealedTagKey

FORMAT = "venue-kiosk bundle v1"
_CONTEXT = FORMAT.encode() + b"\0"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # a national list of a million entries is ~47 MiB


class BundleError(Exception):
    """A bundle that must not be used; the message says why (never key material)."""


@dataclass(frozen=True)
class Bundle:
    version: int
    issued_at: float
    kiosk_id: str
    issuers: Mapping[bytes, Ed25519PublicKey] = field(repr=False)
    sealing_keys: tuple[tuple[str, bytes], ...] = field(repr=False)  # (kid, raw X25519 public)
    risk_list: RiskList = field(repr=False)
    policy: Policy
    sealing_periods: tuple[PeriodKey, ...] = field(default=(), repr=False)  # kiosk.core.sealkeys.PeriodKey
    tag_keys: tuple[SealedTagKey, ...] = field(default=(), repr=False)  # kiosk.core.sealkeys.SealedTagKey
    risk_since: int | None = None  # a delta: the risk-list changes since this version


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bundle_payload(
    *,
    version: int,
    issued_at: float,
    kiosk_id: str,
    issuer_keys: Iterable[Ed25519PublicKey],
    sealing_keys: Iterable[tuple[str, bytes]],
    levels: Mapping[str, int],
    policy: Policy,
    sealing_periods: Iterable[PeriodKey] = (),
    tag_keys: Iterable[SealedTagKey] = (),
    since: int | None = None,
) -> dict[str, Any]:
    """The authority's side: the payload :func:`verify_bundle` parses, in one place with it.
    With ``since``, ``levels`` are the changes after that version (0: off the list)."""
    risk: dict[str, Any] = {"version": str(version), "levels": dict(levels)}
    if since is not None:
        risk["since"] = int(since)
    return {
        "tag_keys": [k.to_wire() for k in tag_keys],
        "sealing_periods": [k.to_wire() for k in sealing_periods],
        "version": version,
        "issued_at": issued_at,
        "kiosk_id": kiosk_id,
        "issuer_keys": [_b64(raw_public(k)) for k in issuer_keys],
        "sealing_keys": [{"kid": kid, "public": _b64(raw)} for kid, raw in sealing_keys],
        "risk_list": risk,
        "policy": {"deny_level": policy.deny_level, "clock_skew_s": policy.clock_skew_s},
    }


def sign_bundle(payload: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The authority's side: the signed wire/file form of ``payload``."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(
        {"format": FORMAT, "payload": _b64(body), "signature": _b64(key.sign(_CONTEXT + body))}
    ).encode()


def verify_bundle(
    data: bytes, key: Ed25519PublicKey, *, kiosk_id: str | None = None, min_version: int = 0
) -> Bundle:
    """Check the signature, then parse. Raises BundleError for anything not to be used:
    a bad signature, another kiosk's bundle, an older version than ``min_version``."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("bundle too large")
    try:
        outer = json.loads(data)
        if outer.get("format") != FORMAT:
            raise BundleError(f"not a {FORMAT!r} bundle")
        body = base64.b64decode(outer["payload"], validate=True)
        signature = base64.b64decode(outer["signature"], validate=True)
    except BundleError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BundleError("malformed bundle") from None
    try:
        key.verify(signature, _CONTEXT + body)
    except InvalidSignature:
        raise BundleError("bad bundle signature") from None
    try:
        p = json.loads(body)
        bundle = Bundle(
            version=int(p["version"]),
            issued_at=float(p["issued_at"]),
            kiosk_id=str(p["kiosk_id"]),
            issuers={
                key_id(k): k
                for k in (Ed25519PublicKey.from_public_bytes(base64.b64decode(x)) for x in p["issuer_keys"])
            },
            sealing_keys=tuple((str(s["kid"]), base64.b64decode(s["public"])) for s in p["sealing_keys"]),
            risk_list=RiskList(
                levels=_levels(p["risk_list"]["levels"]),
                version=str(p["risk_list"]["version"]),
                issued_at=float(p["issued_at"]),
            ),
            policy=Policy(
                deny_level=int(p["policy"]["deny_level"]), clock_skew_s=int(p["policy"]["clock_skew_s"])
            ),
            sealing_periods=tuple(PeriodKey.from_wire(k) for k in p.get("sealing_periods", [])),
            tag_keys=tuple(SealedTagKey.from_wire(k) for k in p.get("tag_keys", [])),
            risk_since=int(p["risk_list"]["since"]) if "since" in p["risk_list"] else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BundleError(f"malformed bundle payload ({type(e).__name__})") from None
    if kiosk_id is not None and bundle.kiosk_id != kiosk_id:
        raise BundleError("bundle made for another kiosk")
    if bundle.version < min_version:
        raise BundleError(f"bundle version {bundle.version} is older than the one held ({min_version})")
    return bundle


# -- a chain: the last whole bundle, then the deltas that followed it --------------------------------
CHAIN_FORMAT = "venue-kiosk bundle chain v1"
MAX_CHAIN = 30  # more deltas than this: the kiosk asks for the whole list again


def chain_docs(data: bytes) -> list[bytes]:
    """The signed bundles a bundle file holds: one, or a chain of them."""
    try:
        outer = json.loads(data)
    except ValueError:
        raise BundleError("malformed bundle") from None
    if isinstance(outer, dict) and outer.get("format") == CHAIN_FORMAT:
        chain = outer.get("chain")
        if not isinstance(chain, list) or not chain or not all(isinstance(d, str) for d in chain):
            raise BundleError("malformed bundle chain")
        return [d.encode() for d in chain]
    return [data]


def encode_chain(docs: list[bytes]) -> bytes:
    if len(docs) == 1:
        return docs[0]
    return json.dumps({"format": CHAIN_FORMAT, "chain": [d.decode("ascii") for d in docs]}).encode()


def verify_chain(
    data: bytes, key: Ed25519PublicKey, *, kiosk_id: str | None = None, min_version: int = 0
) -> Bundle:
    """Every link verified; the first a whole list, each delta following the version before
    it; the risk lists merged (level 0 takes a pass off). Keys and policy: the newest link's."""
    docs = chain_docs(data)
    links = [verify_bundle(d, key, kiosk_id=kiosk_id) for d in docs]
    if links[0].risk_since is not None:
        raise BundleError("bundle chain does not start with a whole risk list")
    levels = dict(links[0].risk_list.levels)
    for before, link in zip(links, links[1:]):
        if link.risk_since != before.version:
            raise BundleError(
                f"bundle delta since version {link.risk_since} does not follow version {before.version}"
            )
        for ref, level in link.risk_list.levels.items():
            if level:
                levels[ref] = level
            else:
                levels.pop(ref, None)
    last = links[-1]
    if last.version < min_version:
        raise BundleError(f"bundle version {last.version} is older than the one held ({min_version})")
    return replace(
        last,
        risk_since=None,
        risk_list=RiskList(levels=levels, version=str(last.version), issued_at=last.issued_at),
    )


def _levels(raw: Any) -> dict[str, int]:
    levels = {}
    for ref, level in dict(raw).items():
        if not (
            isinstance(ref, str) and len(ref) == 32 and isinstance(level, int) and 0 <= level <= MAX_RISK
        ):
            raise ValueError("bad risk-list entry")
        levels[ref] = level
    return levels
