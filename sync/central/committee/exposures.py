"""The exposure list: every exposed visitor told, on their own phone.

The committee publishes, signed by a member's key (which the root's manifest names), one
entry per pass whose risk level is 1 or more now:

    {"format": "venue-kiosk exposure list v1", "payload": base64(JSON), "signature": ...}
    payload = {"version": N, "issued_at": T, "valid_until": T + 7 days, "member": ID,
               "salt": base64(16 random bytes),
               "entries": [[hash, level, advice, expires], ...]}   sorted by hash

``hash`` is HMAC-SHA256(salt, the pass's risk-list ref), its first 16 bytes in hex: no pass
id, no venue, no time, no case. A fresh salt each version, so two versions' hashes do not
line up. The /check page (sync/central/checkpage) verifies the manifest with the root key
it was built with, the list with a member key from that manifest, reads the visitor's pass
on the phone, and looks the hash up there: the pass never leaves the phone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.core.faults import UsageError
from kiosk.core.manifest import Manifest, verify_manifest
from kiosk.core.passes import pass_ref
from kiosk.core.riskstatements import StatementError, merge, verify_statement
from kiosk.core.signed import SignedDocError, b64, open_doc, sign_doc, unb64
from kiosk.core.timing import DAY

KIND = "venue-kiosk exposure list v1"
LIST_VALID_DAYS = 7  # the page says "may be out of date" past this
SALT_BYTES = 16
# The advice a level carries (the page holds the words for each, in Khmer and English).
LEVEL_ADVICE = {1: "get-tested", 2: "get-tested-today", 3: "isolate-and-test"}
ADVICE: dict[str, tuple[str, str]] = {
    "get-tested": (
        "អ្នកអាចបានប៉ះពាល់ជំងឺ។ សូមទៅធ្វើតេស្ត ហើយតាមដានរោគសញ្ញារបស់អ្នក។",
        "You may have been exposed. Please get tested, and watch for symptoms.",
    ),
    "get-tested-today": (
        "អ្នកទំនងជាបានប៉ះពាល់ជំងឺ។ សូមធ្វើតេស្តនៅថ្ងៃនេះ ហើយជៀសវាងការជួបជុំរហូតដល់ទទួលបានលទ្ធផល។",
        "You were probably exposed. Please get tested today, and avoid gatherings until you have the result.",
    ),
    "isolate-and-test": (
        "អ្នកបានប៉ះពាល់ជំងឺ។ សូមនៅដាច់ដោយឡែកពីគេ ហើយធ្វើតេស្ត។ កន្លែងនានានឹងមិនអនុញ្ញាតឱ្យអ្នកចូលទេ។",
        "You were exposed. Please isolate and get tested. Venues will not admit you for now.",
    ),
}


class ExposureListError(Exception):
    """A list that must not be used; the message says why."""


def exposure_hash(salt: bytes, pass_id: bytes) -> str:
    return hmac.new(salt, pass_ref(pass_id).encode(), hashlib.sha256).hexdigest()[:32]


def _hash_ref(salt: bytes, ref: str) -> str:
    return hmac.new(salt, ref.encode(), hashlib.sha256).hexdigest()[:32]


def list_payload(
    levels: Mapping[str, tuple[int, float]],
    *,
    version: int,
    member_id: str,
    now: float,
    salt: bytes | None = None,
) -> dict[str, Any]:
    """``levels``: pass ref -> (level, expires_at), as the risk statements make them now.
    Entries at level 0 or already expired are left out."""
    salt = salt or secrets.token_bytes(SALT_BYTES)
    entries = sorted(
        [_hash_ref(salt, ref), int(level), LEVEL_ADVICE[int(level)], float(expires)]
        for ref, (level, expires) in levels.items()
        if level in LEVEL_ADVICE and expires > now
    )
    return {
        "version": int(version),
        "issued_at": float(now),
        "valid_until": float(now + LIST_VALID_DAYS * DAY),
        "member": member_id,
        "salt": b64(salt),
        "entries": entries,
    }


def sign_list(payload: Mapping[str, Any], member_key: Ed25519PrivateKey) -> bytes:
    return sign_doc(KIND, payload, member_key)


def verify_list(doc: bytes | str, members: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The payload of a list a member signed (the member it names)."""
    try:
        payload, key = open_doc(doc, KIND, members.values())
    except SignedDocError as e:
        raise ExposureListError(str(e)) from None
    if members.get(payload.get("member", "")) is not key:
        raise ExposureListError("exposure list signed by another member than it names")
    try:
        unb64(payload["salt"])
        entries = payload["entries"]
        if not all(isinstance(e, list) and len(e) == 4 and e[2] in ADVICE for e in entries):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ExposureListError("malformed exposure list") from None
    return payload


@dataclass(frozen=True)
class Published:
    version: int
    payload: dict[str, Any]
    doc: str
    manifest_doc: str  # the root's manifest it was checked against: the page needs it too
    member_name: str


def levels_in_force(
    manifest: Manifest, statement_docs: list[str], *, now: float
) -> dict[str, tuple[int, float]]:
    """pass ref -> (level, expires) that the risk statements say now, each checked against
    the member keys of the root's manifest (what kiosks apply)."""
    statements = []
    for doc in statement_docs:
        try:
            statements.append(verify_statement(doc, manifest.members))
        except StatementError:
            continue  # not what kiosks apply either
    merged = merge(statements, deny_level=manifest.policy.deny_level, independent=manifest.independent)
    return {ref: (level, expires) for ref, (level, expires, _) in merged.items() if expires > now}


def publish_list(
    storage, *, key: Ed25519PrivateKey, root: Ed25519PublicKey, now: float, before_keep=None, state=None
) -> Published:
    """`exposures publish`: an active member signs the list of what is in force now, checked
    against the root's latest manifest; the store keeps it (and only it) for /check.
    ``before_keep(published)``: what must succeed before the store keeps it (the static site
    written beside), so a publish either completes or changes nothing."""
    from sync.central.committee.members import state_of

    state = state if state is not None else state_of(storage)
    who = state.active_member(key)
    held = storage.latest_manifest()
    if held is None:
        raise UsageError("no manifest published yet: run `kiosk-central manifest publish` first")
    manifest_doc = held[1]
    _, docs = storage.statements(now=now) or (0, [])
    levels = levels_in_force(verify_manifest(manifest_doc, root), docs, now=now)
    last = storage.latest_exposure_list(now=0.0)
    version = (last[0] if last else 0) + 1
    payload = list_payload(levels, version=version, member_id=who.member_id, now=now)
    doc = sign_list(payload, key).decode()
    expires_at = max([payload["valid_until"], *(e[3] for e in payload["entries"])])
    published = Published(version, payload, doc, manifest_doc, who.name)
    if before_keep is not None:
        before_keep(published)
    from sync.central.committee.members import log_exposures

    log_exposures(  # logged first
        storage, key=key, version=version, doc=doc, expires_at=expires_at, now=now, state=state
    )
    storage.put_exposure_list(version, doc, expires_at=expires_at, now=now)
    return published


def look_up(payload: Mapping[str, Any], pass_id: bytes, *, now: float) -> tuple[int, str] | None:
    """(level, advice) for a pass on the list and not expired; None if it is not on it.
    (The page does the same in the browser; this is the reference it is tested against.)"""
    h = exposure_hash(unb64(payload["salt"]), pass_id)
    for entry_hash, level, advice, expires in payload["entries"]:
        if entry_hash == h and expires > now:
            return int(level), str(advice)
    return None
