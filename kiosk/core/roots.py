"""The roots a kiosk trusts, through a succession.

A kiosk pins the authority's root at install. The root can name its successor in a manifest it
signs (``next_root``); from the next manifest version on, only the successor signs. So the
trust a kiosk holds is a short history: the installed root for versions 0.., each successor
for the versions after the manifest that named it. Every held link of a bundle chain is
checked against the root of its own manifest's version, so a chain that began under the old
root still verifies after the hand-over, and a statement in force is never dropped by it.

The succession manifests themselves (each signed by its predecessor) travel in every bundle
(``succession``), so a kiosk that was offline during a hand-over still follows it; nothing on
the network can make a kiosk trust a root its own history does not lead to. Pure: no file,
network or clock access.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.core.keys import raw_public
from kiosk.core.manifest import Manifest, ManifestError, verify_manifest
from kiosk.core.signed import unb64


def claimed_version(doc: bytes | str) -> int:
    """The version a manifest says it has, before its signature is checked (to pick the root
    that must have signed it; the version is inside what that root signs)."""
    try:
        outer = json.loads(doc)
        return int(json.loads(unb64(outer["payload"]))["version"])
    except (ValueError, KeyError, TypeError):
        raise ManifestError("malformed manifest") from None


def fingerprint(key: Ed25519PublicKey) -> str:
    """A root's short fingerprint, as doctor and the cards print it (SHA-256, 16 hex digits)."""
    import hashlib

    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


@dataclass(frozen=True)
class RootHistory:
    """(root, first manifest version it signs), oldest first; ``proofs``: the succession
    manifests that named each successor (kept, so the history can be verified again)."""

    roots: tuple[tuple[Ed25519PublicKey, int], ...]
    proofs: tuple[str, ...] = ()

    @classmethod
    def pinned(cls, root: Ed25519PublicKey) -> RootHistory:
        return cls(((root, 0),))

    @property
    def latest(self) -> Ed25519PublicKey:
        return self.roots[-1][0]

    def for_version(self, version: int) -> Ed25519PublicKey:
        """The root that signs manifests of this version."""
        found = self.roots[0][0]
        for key, first in self.roots:
            if first <= version:
                found = key
        return found

    def knows(self, key: Ed25519PublicKey) -> bool:
        return any(raw_public(k) == raw_public(key) for k, _ in self.roots)

    def follow(self, manifest: Manifest, doc: str | None = None) -> RootHistory:
        """The history after ``manifest`` (verified already, under this history): a named
        successor signs every later version."""
        named = manifest.next_root
        if named is None or self.knows(named):
            return self
        if manifest.version + 1 <= self.roots[-1][1]:
            return self  # an older hand-over than one already followed: nothing new
        proofs = self.proofs + ((doc,) if doc is not None else ())
        return RootHistory(self.roots + ((named, manifest.version + 1),), proofs)

    def verify(self, doc: bytes | str, *, min_version: int = 0) -> Manifest:
        """A manifest checked against the root of its version under this history."""
        version = claimed_version(doc)
        return verify_manifest(doc, self.for_version(version), min_version=min_version)

    def extend(self, docs: Iterable[str]) -> RootHistory:
        """Follow the succession manifests ``docs`` (in any order; each verified against the
        root of its version in the history so far). Ones that do not verify are skipped: a
        hand-over only counts when the root before it signed it."""
        history = self
        pending = sorted(set(docs), key=lambda d: _safe_version(d))
        for doc in pending:
            try:
                manifest = history.verify(doc)
            except ManifestError:
                continue
            history = history.follow(manifest, doc)
        return history

    def describe(self) -> str:
        """In words, for doctor: the pinned root and each successor since."""
        parts = [f"root {fingerprint(self.roots[0][0])} (pinned at install)"]
        parts += [f"successor {fingerprint(k)} from manifest {v}" for k, v in self.roots[1:]]
        return "; ".join(parts)


def _safe_version(doc: str) -> int:
    try:
        return claimed_version(doc)
    except ManifestError:
        return -1
