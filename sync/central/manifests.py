"""Publishing manifests, on the committee's machine (where the root key is): what kiosks
trust, signed by the root, kept in the storage for the server to relay. The server picks a
new manifest up at the next bundle request, with no restart."""

from __future__ import annotations

from pathlib import Path

from kiosk.core.decision import Policy
from kiosk.core.keys import (
    BUNDLE_PUB,
    RECEIPT_PUB,
    ROOT_KEY,
    ROOT_PUB,
    load_ed25519_private,
    load_ed25519_public,
    load_x25519_public,
    raw_public,
    sealing_kid,
)
from kiosk.core.manifest import FRESHNESS, RECEIPTS, manifest_payload, sign_manifest, verify_manifest
from sync.central.committee.members import state_of
from sync.central.keyring import public_periods


def publish(
    keys_dir: Path,
    storage,
    *,
    now: float,
    deny_level: int | None = None,
    next_root: Path | None = None,
) -> int:
    """Sign and keep the next manifest: the issuer keys, sealing keys and periods of
    ``keys_dir``, the committee's active members from the audit log, the server's two online
    keys with what each may sign, the policy (the deny level held so far unless changed).
    ``next_root``: a successor root's public key, which kiosks pin from this manifest on.
    Returns its version."""
    keys_dir = Path(keys_dir)
    root = load_ed25519_private(keys_dir / ROOT_KEY)
    held = storage.latest_manifest()
    policy = Policy()
    if held is not None:
        previous = verify_manifest(held[1], load_ed25519_public(keys_dir / ROOT_PUB))
        policy = previous.policy
    if deny_level is not None:
        policy = Policy(deny_level=deny_level, clock_skew_s=policy.clock_skew_s)
    issuers = [load_ed25519_public(p) for p in sorted(keys_dir.glob("issuer*.pub"))]
    if not issuers:
        raise FileNotFoundError(f"{keys_dir}: no issuer public key (issuer.pub): is this the keys folder?")
    sealing = []
    for p in sorted(keys_dir.glob("sealing*.pub")):
        pub = load_x25519_public(p)
        sealing.append((sealing_kid(pub), raw_public(pub)))
    state = state_of(storage)
    members = {mid: m.public_key for mid, m in state.members.items() if m.active}
    version = (held[0] if held else 0) + 1
    payload = manifest_payload(
        version=version,
        issued_at=now,
        issuer_keys=issuers,
        sealing_keys=sealing,
        sealing_periods=[k for k in public_periods(keys_dir) if k.valid_to > now],
        policy=policy,
        members=members,
        server_keys=[
            (load_ed25519_public(keys_dir / BUNDLE_PUB), [FRESHNESS]),
            (load_ed25519_public(keys_dir / RECEIPT_PUB), [RECEIPTS]),
        ],
        next_root=load_ed25519_public(next_root) if next_root else None,
    )
    storage.put_manifest(version, sign_manifest(payload, root).decode("ascii"), now=now)
    return version
