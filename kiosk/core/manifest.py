"""The manifest: everything that grants power, signed by the authority's offline root key.

The root key stays on the committee's machine; kiosks pin its public half at install. A
manifest names the issuer keys (whose passes are valid), the sealing periods' public keys
(what check-ins are sealed to), the search-tag period, the policy (the deny level), the
committee's member keys (who may change a risk level), and the server's online keys with what
each may sign (freshness, receipts). A member who has left (revoked) is listed apart with the
statements they signed that are still in force, by hash: those stay valid until their own
expiry, and that key verifies nothing else (no backdated statement). The server relays
manifests and cannot alter them; a kiosk never accepts one older than the one it holds. The
root can name its successor (``next_root``): a kiosk that verifies such a manifest pins the
successor from then on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.decision import MAX_RISK, Policy
from kiosk.core.keys import raw_public
from kiosk.core.passes import key_id
from kiosk.core.sealkeys import PeriodKey
from kiosk.core.signed import SignedDocError, b64, doc_hash, open_doc, sign_doc, unb64
from kiosk.core.timing import DAY

KIND = "venue-kiosk manifest v1"
FRESHNESS = "freshness"  # what a server key may sign: "nothing newer than version N"
RECEIPTS = "receipts"  # upload receipts naming the records stored
SERVER_POWERS = (FRESHNESS, RECEIPTS)


class ManifestError(Exception):
    """A manifest that must not be used; the message says why."""


@dataclass(frozen=True)
class Manifest:
    version: int
    issued_at: float
    issuers: Mapping[bytes, Ed25519PublicKey] = field(repr=False)
    sealing_keys: tuple[tuple[str, bytes], ...] = field(repr=False)  # (kid, raw X25519), static
    sealing_periods: tuple[PeriodKey, ...] = field(repr=False)
    policy: Policy
    members: Mapping[str, Ed25519PublicKey] = field(repr=False)  # member id -> key
    server_keys: Mapping[str, tuple[Ed25519PublicKey, ...]] = field(repr=False)  # power -> keys
    tag_period_s: int = DAY
    next_root: Ed25519PublicKey | None = field(default=None, repr=False)
    # member id -> who added that member ("founder", or the adding member's id): two members
    # are independent when neither added the other (refusing entry takes two of them)
    added_by: Mapping[str, str] = field(default_factory=dict, repr=False)
    # member id -> (key, hashes of the statements in force they signed): members who left
    former: Mapping[str, tuple[Ed25519PublicKey, frozenset[str]]] = field(default_factory=dict, repr=False)

    def signers_for(self, doc: bytes | str) -> dict[str, Ed25519PublicKey]:
        """Who may have signed this risk statement: the members, and a former member only for
        the statements listed under them."""
        named = doc_hash(doc)
        return {
            **{mid: key for mid, (key, hashes) in self.former.items() if named in hashes},
            **self.members,
        }

    def keys_for(self, power: str) -> tuple[Ed25519PublicKey, ...]:
        return self.server_keys.get(power, ())

    def independent(self, a: str, b: str) -> bool:
        """Two different members of this manifest, neither of whom added the other."""
        known = {*self.members, *self.former}
        if a == b or a not in known or b not in known:
            return False
        return self.added_by.get(a) != b and self.added_by.get(b) != a


def manifest_payload(
    *,
    version: int,
    issued_at: float,
    issuer_keys: Iterable[Ed25519PublicKey],
    sealing_keys: Iterable[tuple[str, bytes]] = (),
    sealing_periods: Iterable[PeriodKey] = (),
    policy: Policy = Policy(),
    members: Mapping[str, Ed25519PublicKey] | None = None,
    server_keys: Iterable[tuple[Ed25519PublicKey, Iterable[str]]] = (),
    tag_period_s: int = DAY,
    next_root: Ed25519PublicKey | None = None,
    added_by: Mapping[str, str] | None = None,
    former: Mapping[str, tuple[Ed25519PublicKey, Iterable[str]]] | None = None,
) -> dict[str, Any]:
    who = dict(added_by or {})
    payload: dict[str, Any] = {
        "version": int(version),
        "issued_at": float(issued_at),
        "issuer_keys": [b64(raw_public(k)) for k in issuer_keys],
        "sealing_keys": [{"kid": kid, "public": b64(raw)} for kid, raw in sealing_keys],
        "sealing_periods": [k.to_wire() for k in sealing_periods],
        "policy": {"deny_level": policy.deny_level, "clock_skew_s": policy.clock_skew_s},
        "members": [
            {
                "id": mid,
                "public": b64(raw_public(k)),
                **({"added_by": who[mid]} if mid in who else {}),
            }
            for mid, k in sorted((members or {}).items())
        ],
        "server_keys": [
            {"public": b64(raw_public(k)), "may_sign": sorted(set(powers))} for k, powers in server_keys
        ],
        "tag_period_s": int(tag_period_s),
    }
    for _, powers in server_keys:
        bad = set(powers) - set(SERVER_POWERS)
        if bad:
            raise ValueError(f"a server key may sign only {', '.join(SERVER_POWERS)}, not {sorted(bad)}")
    if next_root is not None:
        payload["next_root"] = b64(raw_public(next_root))
    if former:
        payload["former_members"] = [
            {
                "id": mid,
                "public": b64(raw_public(key)),
                "statements": sorted(set(hashes)),
                **({"added_by": who[mid]} if mid in who else {}),
            }
            for mid, (key, hashes) in sorted(former.items())
        ]
    return payload


def sign_manifest(payload: Mapping[str, Any], root_key: Ed25519PrivateKey) -> bytes:
    return sign_doc(KIND, payload, root_key)


def _ed(text: object) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(unb64(text))


def verify_manifest(data: bytes | str, root: Ed25519PublicKey, *, min_version: int = 0) -> Manifest:
    """Checked against the pinned root before anything in it is used; never older than
    ``min_version`` (the newest one this kiosk has held)."""
    try:
        p, _ = open_doc(data, KIND, [root])
    except SignedDocError as e:
        raise ManifestError(f"manifest refused: {e}") from None
    try:
        policy = Policy(
            deny_level=int(p["policy"]["deny_level"]), clock_skew_s=int(p["policy"]["clock_skew_s"])
        )
        server_keys: dict[str, list[Ed25519PublicKey]] = {}
        for entry in p["server_keys"]:
            for power in entry["may_sign"]:
                if power not in SERVER_POWERS:
                    raise ValueError(f"unknown server power {power!r}")
                server_keys.setdefault(power, []).append(_ed(entry["public"]))
        manifest = Manifest(
            version=int(p["version"]),
            issued_at=float(p["issued_at"]),
            issuers={key_id(k): k for k in (_ed(x) for x in p["issuer_keys"])},
            sealing_keys=tuple((str(s["kid"]), unb64(s["public"])) for s in p["sealing_keys"]),
            sealing_periods=tuple(PeriodKey.from_wire(k) for k in p["sealing_periods"]),
            policy=policy,
            members={str(m["id"]): _ed(m["public"]) for m in p["members"]},
            server_keys={k: tuple(v) for k, v in server_keys.items()},
            tag_period_s=int(p.get("tag_period_s", DAY)),
            next_root=_ed(p["next_root"]) if "next_root" in p else None,
            added_by={
                str(m["id"]): str(m["added_by"])
                for m in [*p["members"], *p.get("former_members", [])]
                if "added_by" in m
            },
            former={
                str(m["id"]): (_ed(m["public"]), frozenset(str(h) for h in m["statements"]))
                for m in p.get("former_members", [])
            },
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ManifestError(f"malformed manifest ({type(e).__name__}: {e})") from None
    if not 1 <= manifest.policy.deny_level <= MAX_RISK:
        raise ManifestError("manifest policy out of range")
    if manifest.version < min_version:
        raise ManifestError(
            f"manifest version {manifest.version} is older than the one held ({min_version}): refused"
        )
    return manifest
