"""A root succession, on the committee's machine: the offline root hands over to a new one
without any kiosk losing what it trusts.

1. ``keys successor``: a new root key pair beside the current one (``root-next.key``, 0600,
   and ``root-next.pub``).
2. ``manifest publish --next-root authority/root-next.pub``: the current root signs a manifest
   naming its successor; every kiosk that verifies it follows the successor from the next
   version on (kiosk.core.roots), and each bundle carries it so an offline kiosk follows too.
3. ``keys successor --promote``: the successor becomes ``root.key``; the old private key is
   shredded and its public half kept as ``root-<fingerprint>.pub`` (the record of who signed
   the manifests before); with the store, every search-tag key document is signed again by
   the new root and a manifest signed by it is published. Kiosks keep every statement in
   force throughout: each held link is checked against the root of its own version.

If the old root was *stolen*, run all three at once: the thief can no longer sign anything a
kiosk takes once the hand-over manifest has reached it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.faults import UsageError
from kiosk.core.keys import (
    ROOT_KEY,
    ROOT_PUB,
    load_ed25519_private,
    load_ed25519_public,
    write_private,
    write_public,
)
from kiosk.core.roots import fingerprint
from sync.central.storage.interface import KioskRegistry, RelayedDocuments, Storage
from sync.central.storage.rows import TagKeyDoc

NEXT_KEY, NEXT_PUB = "root-next.key", "root-next.pub"


class SuccessionError(UsageError):
    """A step of the succession taken out of order; the message says which step comes first."""


def make_successor(keys_dir: Path) -> Path:
    """A new root key pair beside the current one; returns its public file."""
    keys_dir = Path(keys_dir)
    if (keys_dir / NEXT_KEY).exists():
        raise SuccessionError(
            f"{keys_dir / NEXT_KEY}: a successor is made already: publish it (`manifest publish "
            f"--next-root {keys_dir / NEXT_PUB}`), then `keys successor --promote`"
        )
    if not (keys_dir / ROOT_KEY).is_file():
        raise SuccessionError(f"{keys_dir}: no {ROOT_KEY}: a successor is named by the root in office")
    key = Ed25519PrivateKey.generate()
    write_private(keys_dir / NEXT_KEY, key)
    write_public(keys_dir / NEXT_PUB, key.public_key())
    return keys_dir / NEXT_PUB


def promote(keys_dir: Path, storage: Storage | None = None, *, now: float) -> tuple[str, str, int]:
    """The successor becomes the root: (old fingerprint, new fingerprint, tag key documents
    signed again). The store must hold the manifest that named it (else kiosks could not
    follow): refused otherwise, before anything changes."""
    from sync.central.shredding import shred

    keys_dir = Path(keys_dir)
    if not (keys_dir / NEXT_KEY).is_file():
        raise SuccessionError(
            f"{keys_dir}: no successor to promote: make one first (`keys successor --keys DIR`)"
        )
    old, new = load_ed25519_private(keys_dir / ROOT_KEY), load_ed25519_private(keys_dir / NEXT_KEY)
    if storage is not None and not _named_in_store(storage, new.public_key()):
        raise SuccessionError(
            "no manifest in the store names this successor yet: kiosks would refuse everything it signs; "
            f"first `kiosk-central manifest publish ... --next-root {keys_dir / NEXT_PUB}`"
        )
    old_fp, new_fp = fingerprint(old.public_key()), fingerprint(new.public_key())
    write_public(keys_dir / f"root-{old_fp}.pub", old.public_key())  # the record of the old root
    tmp = keys_dir / ".root.key.new"
    if tmp.exists():
        tmp.unlink()
    write_private(tmp, new)
    shred(keys_dir / ROOT_KEY)
    os.replace(tmp, keys_dir / ROOT_KEY)
    write_public(keys_dir / ROOT_PUB, new.public_key())
    shred(keys_dir / NEXT_KEY)
    (keys_dir / NEXT_PUB).unlink()
    signed = resign_tag_keys(keys_dir, storage, now=now) if storage is not None else 0
    return old_fp, new_fp, signed


def resign_tag_keys(keys_dir: Path, storage: KioskRegistry, *, now: float) -> int:
    """Every search-tag key document not signed by the root in office, signed by it (the same
    sealed key, kiosk and days). Returns how many."""
    from kiosk.core.bundle import TAG_KEY_KIND, tag_key_doc
    from kiosk.core.sealkeys import SealedTagKey
    from kiosk.core.signed import SignedDocError, open_doc

    root = load_ed25519_private(Path(keys_dir) / ROOT_KEY)
    rows = []
    for kiosk_id, start, end, sealed, doc in storage.tag_key_rows(now):
        try:
            open_doc(doc, TAG_KEY_KIND, [root.public_key()])
            continue  # signed by this root already
        except SignedDocError:
            pass
        fresh = tag_key_doc(kiosk_id, SealedTagKey(start, end, sealed), root).decode("ascii")
        rows.append(TagKeyDoc(kiosk_id, start, fresh))
    return storage.replace_tag_key_docs(rows) if rows else 0


def _named_in_store(storage: RelayedDocuments, successor) -> bool:
    import json

    from kiosk.core.signed import unb64

    target = successor.public_bytes_raw()
    for doc in storage.succession_manifests():
        try:
            if unb64(json.loads(unb64(json.loads(doc)["payload"]))["next_root"]) == target:
                return True
        except (ValueError, KeyError, TypeError):
            continue
    return False


def successor_public(keys_dir: Path):
    return load_ed25519_public(Path(keys_dir) / NEXT_PUB)


def first_root(keys_dir: Path, succession: list[str]):
    """The root a page or a kiosk installed before any hand-over pinned: of the roots this
    folder records (``root.pub`` and each predecessor's ``root-<fingerprint>.pub``), the one
    whose succession, followed through ``succession``, is longest and ends at the root in
    office. The cards printed under any of them stay this authority's."""
    from kiosk.core.keys import raw_public
    from kiosk.core.roots import RootHistory

    keys_dir = Path(keys_dir)
    current = load_ed25519_public(keys_dir / ROOT_PUB)
    best, length = current, 1
    for path in sorted(keys_dir.glob("root-*.pub")):
        if path.name == NEXT_PUB:
            continue
        try:
            candidate = load_ed25519_public(path)
        except (OSError, ValueError):
            continue
        history = RootHistory.pinned(candidate).extend(succession)
        if raw_public(history.latest) == raw_public(current) and len(history.roots) > length:
            best, length = candidate, len(history.roots)
    return best
