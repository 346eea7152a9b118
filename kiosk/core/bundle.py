"""The bundle a kiosk downloads, and what each part of it is trusted by.

Wire and file form (JSON)::

    {"format": "venue-kiosk bundle v2",
     "manifest": "<manifest, signed by the offline root key>",
     "statements": ["<risk statement, signed by the member who made it>", ...],
     "tag_keys": ["<this kiosk's search-tag key, sealed to it, signed by the root>", ...],
     "audit_head": {"entry": ..., "hash": ..., "signature": ...} | null,
     "succession": ["<a manifest that named the next root, signed by its predecessor>", ...],
     "freshness": "<signed by a server key the manifest allows to sign freshness>"}

The server only relays: it signs nothing but the freshness statement ("for this kiosk,
nothing newer than risk-list version N, manifest version M; these statements, these tag
keys, this audit head"), which can delay and withhold, never grant. Issuer keys, sealing
keys, policy and member keys come from the root's manifest; risk levels from member-signed
statements, each applying until its own expiry on the kiosk's clock (a refusal only with two
independent members' signatures: kiosk.core.riskstatements). Each link is checked against the
root of its own manifest's version (kiosk.core.roots): a chain begun under a root stays valid
after that root hands over to its successor. Pure: no file, network or clock access; time and
keys are passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.auditheads import AuditHead, verify_head
from kiosk.core.decision import Policy, RiskList
from kiosk.core.manifest import FRESHNESS, RECEIPTS, Manifest, ManifestError
from kiosk.core.riskstatements import RiskStatement, StatementError, merge, verify_statement
from kiosk.core.roots import RootHistory
from kiosk.core.sealkeys import PeriodKey, SealedTagKey
from kiosk.core.signed import SignedDocError, b64, open_doc, sign_doc, unb64

FORMAT = "venue-kiosk bundle v2"
FRESHNESS_KIND = "venue-kiosk freshness v1"
TAG_KEY_KIND = "venue-kiosk tag key v1"
RECEIPT_KIND = "venue-kiosk receipt v1"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # a national list of a million entries is ~47 MiB


class BundleError(Exception):
    """A bundle that must not be used; the message says why (never key material)."""


@dataclass(frozen=True)
class Bundle:
    version: int  # the risk list's version, from the freshness statement
    issued_at: float
    kiosk_id: str
    manifest: Manifest = field(repr=False)
    risk_list: RiskList = field(repr=False)
    statements: tuple[RiskStatement, ...] = field(default=(), repr=False)
    tag_keys: tuple[SealedTagKey, ...] = field(default=(), repr=False)
    audit_head: AuditHead | None = None
    risk_since: int | None = None  # a delta: the statements since this version
    roots: RootHistory | None = field(default=None, repr=False)  # the roots, after this bundle
    # What the server holds of this kiosk's latest epoch ({"epoch", "high", "gaps"}), signed in
    # the freshness statement: a kiosk deletes an uploaded record only once this names it.
    stored: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def manifest_version(self) -> int:
        return self.manifest.version

    @property
    def issuers(self) -> Mapping[bytes, Ed25519PublicKey]:
        return self.manifest.issuers

    @property
    def sealing_keys(self) -> tuple[tuple[str, bytes], ...]:
        return self.manifest.sealing_keys

    @property
    def sealing_periods(self) -> tuple[PeriodKey, ...]:
        return self.manifest.sealing_periods

    @property
    def policy(self) -> Policy:
        return self.manifest.policy

    @property
    def receipt_keys(self) -> tuple[Ed25519PublicKey, ...]:
        return self.manifest.keys_for(RECEIPTS)


def _digest(docs: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for d in docs:
        raw = d.encode() if isinstance(d, str) else d
        h.update(hashlib.sha256(raw).digest())
    return h.hexdigest()


# -- the authority's side ---------------------------------------------------------------------
def tag_key_doc(kiosk_id: str, key: SealedTagKey, root_key: Ed25519PrivateKey) -> bytes:
    """A kiosk's sealed search-tag key for one period, signed by the root (the committee's
    machine makes and seals them; the server only stores and relays them)."""
    return sign_doc(TAG_KEY_KIND, {"kiosk_id": kiosk_id, **key.to_wire()}, root_key)


def make_bundle(
    *,
    manifest: bytes | str,
    statements: Sequence[bytes | str],
    tag_keys: Sequence[bytes | str],
    audit_head: Mapping[str, Any] | None,
    kiosk_id: str,
    version: int,
    manifest_version: int,
    issued_at: float,
    since: int | None,
    key: Ed25519PrivateKey,
    succession: Sequence[str] = (),
    stored: Mapping[str, Any] | None = None,
) -> bytes:
    """The server's side: relay what others signed, and sign only its freshness.
    ``succession``: every manifest that named a next root (so an offline kiosk follows a
    hand-over it missed; each is signed by the root before it)."""

    def text(d: bytes | str) -> str:
        return d.decode("ascii") if isinstance(d, bytes) else d

    fresh = {
        "kiosk_id": kiosk_id,
        "version": int(version),
        "since": since,
        "manifest_version": int(manifest_version),
        "issued_at": float(issued_at),
        "statements": _digest(statements),
        # Not covered: each tag key is signed by the root for this kiosk and its day, so the
        # kiosk may drop a day's key from its stored copy once the day is over (prune_tag_keys).
        "tag_keys": None,
        "manifest": _digest([manifest]),
        "audit_head": audit_head["hash"] if audit_head else None,
        "stored": dict(stored) if stored else None,
    }
    return json.dumps(
        {
            "format": FORMAT,
            "manifest": text(manifest),
            "statements": [text(s) for s in statements],
            "tag_keys": [text(t) for t in tag_keys],
            "audit_head": dict(audit_head) if audit_head else None,
            "succession": [text(d) for d in succession],
            "freshness": text(sign_doc(FRESHNESS_KIND, fresh, key)),
        }
    ).encode()


# -- the kiosk's side ---------------------------------------------------------------------------
def _history(root: RootHistory | Ed25519PublicKey) -> RootHistory:
    return root if isinstance(root, RootHistory) else RootHistory.pinned(root)


def verify_bundle(
    data: bytes,
    root: RootHistory | Ed25519PublicKey,
    *,
    kiosk_id: str | None = None,
    min_version: int = 0,
    min_manifest: int = 0,
) -> Bundle:
    """Check every part against what it is trusted by, then parse. Raises BundleError for
    anything not to be used: a manifest the root of its version did not sign or older than
    ``min_manifest``, a freshness statement no allowed server key signed, a statement no
    member signed, another kiosk's bundle, a risk-list version older than ``min_version``.
    ``root``: the pinned root, or the history of roots the kiosk follows; the bundle's own
    succession manifests extend it (each checked against the root before it)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("bundle too large")
    try:
        outer = json.loads(data)
        if not isinstance(outer, dict) or outer.get("format") != FORMAT:
            raise BundleError(f"not a {FORMAT!r} bundle")
        manifest_doc = outer["manifest"]
        statement_docs = list(outer["statements"])
        tag_docs = list(outer["tag_keys"])
        head_doc = outer.get("audit_head")
        fresh_doc = outer["freshness"]
        succession = [str(d) for d in outer.get("succession") or []]
    except BundleError:
        raise
    except (ValueError, KeyError, TypeError):
        raise BundleError("malformed bundle") from None
    history = _history(root).extend(succession)
    try:
        manifest = history.verify(manifest_doc, min_version=min_manifest)
    except ManifestError as e:
        raise BundleError(str(e)) from None
    signer = history.for_version(manifest.version)  # the root that signed this link
    history = history.follow(manifest, manifest_doc if isinstance(manifest_doc, str) else None)
    try:
        fresh, _ = open_doc(fresh_doc, FRESHNESS_KIND, manifest.keys_for(FRESHNESS))
        if (
            fresh["statements"] != _digest(statement_docs)
            or fresh["tag_keys"] not in (None, _digest(tag_docs))
            or fresh["manifest"] != _digest([manifest_doc])
            or fresh["audit_head"] != (head_doc or {}).get("hash")
            or int(fresh["manifest_version"]) != manifest.version
        ):
            raise BundleError("bundle parts do not match their freshness statement")
        version, issued_at = int(fresh["version"]), float(fresh["issued_at"])
        for_kiosk = str(fresh["kiosk_id"])
        since = None if fresh["since"] is None else int(fresh["since"])
        stored = _stored(fresh.get("stored"))
    except SignedDocError as e:
        raise BundleError(f"bundle freshness refused: {e}") from None
    except (KeyError, TypeError, ValueError):
        raise BundleError("malformed bundle freshness") from None
    if kiosk_id is not None and for_kiosk != kiosk_id:
        raise BundleError("bundle made for another kiosk")
    if version < min_version:
        raise BundleError(f"bundle version {version} is older than the one held ({min_version})")
    statements = []
    for doc in statement_docs:
        try:
            statements.append(verify_statement(doc, manifest.signers_for(doc)))
        except StatementError as e:
            raise BundleError(f"risk statement refused: {e}") from None
    tag_keys = []
    for doc in tag_docs:
        try:
            p, _ = open_doc(
                doc, TAG_KEY_KIND, [signer, *([manifest.next_root] if manifest.next_root else [])]
            )
            if p.get("kiosk_id") != for_kiosk:
                raise BundleError("a tag key for another kiosk")
            tag_keys.append(SealedTagKey.from_wire(p))
        except SignedDocError as e:
            raise BundleError(f"tag key refused: {e}") from None
        except (KeyError, TypeError, ValueError):
            raise BundleError("malformed tag key") from None
    head = None
    if head_doc:
        try:
            # the newest entry is a member's, or the root's own (a manifest it published)
            head = verify_head(head_doc, {**manifest.members, "root": signer})
        except (ValueError, KeyError, TypeError) as e:
            raise BundleError(f"audit head refused: {e}") from None
    return Bundle(
        version=version,
        issued_at=issued_at,
        kiosk_id=for_kiosk,
        manifest=manifest,
        risk_list=_risk_list(statements, version, issued_at, manifest),
        statements=tuple(statements),
        tag_keys=tuple(tag_keys),
        audit_head=head,
        risk_since=since,
        roots=history,
        stored=stored,
    )


def _stored(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    epoch, high = int(value["epoch"]), int(value["high"])
    gaps = [(int(lo), int(hi)) for lo, hi in value["gaps"]]
    if any(not 1 <= lo <= hi <= high for lo, hi in gaps):
        raise ValueError("bad runs")
    return {"epoch": epoch, "high": high, "gaps": gaps}


def _risk_list(
    statements: Iterable[RiskStatement], version: int, issued_at: float, manifest: Manifest
) -> RiskList:
    """Each pass at its newest statement's effective level: a refusal only where two
    independent members of this manifest signed it."""
    merged = merge(statements, deny_level=manifest.policy.deny_level, independent=manifest.independent)
    return RiskList(
        levels={ref: level for ref, (level, _, _) in merged.items() if level},
        expires={ref: exp for ref, (level, exp, _) in merged.items() if level},
        version=str(version),
        issued_at=issued_at,
    )


def verify_receipt(
    data: bytes | str, keys: Iterable[Ed25519PublicKey], *, kiosk_id: str, batch_id: str
) -> list[str]:
    """The record ids a receipt, signed by a receipt key of the manifest, says the server
    stored for this kiosk's batch. Raises BundleError otherwise."""
    try:
        p, _ = open_doc(data, RECEIPT_KIND, keys)
        if p["kiosk_id"] != kiosk_id or p["batch_id"] != batch_id:
            raise BundleError("receipt for another kiosk or batch")
        return [str(i) for i in p["stored"]]
    except SignedDocError as e:
        raise BundleError(f"receipt refused: {e}") from None
    except (KeyError, TypeError):
        raise BundleError("malformed receipt") from None


def sign_receipt(
    *, kiosk_id: str, batch_id: str, stored: Sequence[str], at: float, key: Ed25519PrivateKey
) -> str:
    doc = sign_doc(
        RECEIPT_KIND, {"kiosk_id": kiosk_id, "batch_id": batch_id, "stored": list(stored), "at": at}, key
    )
    return doc.decode("ascii")


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


def prune_tag_keys(data: bytes, now: float) -> bytes:
    """A stored bundle (or chain) without the tag keys of days already over: a kiosk keeps no
    key of a past day, so a stolen one cannot tag a known pass for the days it has served.
    The freshness statement does not cover the tag keys (each is root-signed on its own), so
    what is left still verifies."""

    def prune(doc: bytes) -> bytes:
        outer = json.loads(doc)
        kept = []
        for tag_doc in outer.get("tag_keys", []):
            try:
                payload = json.loads(unb64(json.loads(tag_doc)["payload"]))
                if float(payload["valid_to"]) <= now:
                    continue
            except (ValueError, KeyError, TypeError):
                pass  # not readable: left for verification to refuse
            kept.append(tag_doc)
        if len(kept) == len(outer.get("tag_keys", [])):
            return doc
        outer["tag_keys"] = kept
        return json.dumps(outer).encode()

    return encode_chain([prune(d) for d in chain_docs(data)])


def encode_chain(docs: list[bytes]) -> bytes:
    if len(docs) == 1:
        return docs[0]
    return json.dumps({"format": CHAIN_FORMAT, "chain": [d.decode("ascii") for d in docs]}).encode()


def verify_chain(
    data: bytes,
    root: RootHistory | Ed25519PublicKey,
    *,
    kiosk_id: str | None = None,
    min_version: int = 0,
    min_manifest: int = 0,
    carried: Sequence[str] = (),
) -> Bundle:
    """Every link verified; the first a whole list, each delta following the version before
    it; the statements merged (for each pass the newest wins). Manifest, tag keys and audit
    head: the newest link's. Each link is checked against the root of its own manifest's
    version: a link whose manifest names a successor root is followed by links the successor
    signed, and links the old root signed before stay valid. ``carried``: statements the
    kiosk held before a whole list replaced its chain and the list left out (a server can
    withhold a statement, never take back one a kiosk already holds); each is verified again
    against the newest manifest's members (or the former members it lists the statement
    under), and one none of them signed is dropped."""
    docs = chain_docs(data)
    links = []
    history = _history(root)
    for d in docs:
        link = verify_bundle(d, history, kiosk_id=kiosk_id)
        links.append(link)
        history = link.roots or history
    if links[0].risk_since is not None:
        raise BundleError("bundle chain does not start with a whole risk list")
    statements = list(links[0].statements)
    for before, link in zip(links, links[1:]):
        if link.risk_since != before.version:
            raise BundleError(
                f"bundle delta since version {link.risk_since} does not follow version {before.version}"
            )
        statements += link.statements
    last = links[-1]
    for doc in carried:
        try:
            statements.append(verify_statement(doc, last.manifest.signers_for(doc)))
        except StatementError:
            continue
    if last.version < min_version:
        raise BundleError(f"bundle version {last.version} is older than the one held ({min_version})")
    if last.manifest.version < min_manifest:
        raise BundleError(
            f"manifest version {last.manifest.version} is older than the one held ({min_manifest})"
        )
    return replace(
        last,
        risk_since=None,
        statements=tuple(statements),
        risk_list=_risk_list(statements, last.version, last.issued_at, last.manifest),
        roots=history,
    )


def statement_docs(data: bytes) -> list[str]:
    """The signed statements a bundle file's links hold, as documents."""
    out: list[str] = []
    for d in chain_docs(data):
        try:
            out += [str(s) for s in json.loads(d)["statements"]]
        except (ValueError, KeyError, TypeError):
            raise BundleError("malformed bundle") from None
    return out


def root_of(text: str) -> Ed25519PublicKey:
    """A pinned root key from its base64 form (as the kiosk's database keeps a successor)."""
    return Ed25519PublicKey.from_public_bytes(unb64(text))


def root_text(key: Ed25519PublicKey) -> str:
    from kiosk.core.keys import raw_public

    return b64(raw_public(key))
