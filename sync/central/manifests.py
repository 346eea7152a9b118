"""Publishing manifests, on the committee's machine (where the root key is): what kiosks
trust, signed by the root, kept in the storage for the server to relay. The server picks a
new manifest up at the next bundle request, with no restart."""

from __future__ import annotations

from pathlib import Path

from kiosk.core.decision import Policy
from kiosk.core.faults import UsageError
from kiosk.core.keys import (
    BUNDLE_PUB,
    RECEIPT_PUB,
    ROOT_KEY,
    load_ed25519_private,
    load_ed25519_public,
)
from kiosk.core.manifest import FRESHNESS, RECEIPTS, manifest_payload, sign_manifest, verify_manifest
from sync.central.committee.audit import BOOTSTRAP, FOUNDER
from sync.central.committee.members import state_of
from sync.central.keyring import public_periods


def publish(
    keys_dir: Path,
    storage,
    *,
    now: float,
    deny_level: int | None = None,
    next_root: Path | None = None,
    state=None,
) -> int:
    """Sign and keep the next manifest: the issuer keys and sealing periods (never a static
    sealing key) of
    ``keys_dir``, the committee's active members from the audit log, the server's two online
    keys with what each may sign, the policy (the deny level held so far unless changed).
    ``next_root``: a successor root's public key, which kiosks pin from this manifest on.
    ``state``: the log as the command verified it (read once), else verified here. Returns its
    version."""
    keys_dir = Path(keys_dir)
    root = load_ed25519_private(keys_dir / ROOT_KEY)
    # What the committee decided lives on its own machine, beside the root: nothing read
    # back from the server's store (which its operator could change) goes into a manifest.
    local = _load_state(keys_dir)
    policy = Policy(deny_level=int(local.get("deny_level", Policy().deny_level)))
    if deny_level is not None:
        policy = Policy(deny_level=deny_level, clock_skew_s=policy.clock_skew_s)
    issuers = [load_ed25519_public(p) for p in sorted(keys_dir.glob("issuer*.pub"))]
    if not issuers:
        raise FileNotFoundError(f"{keys_dir}: no issuer public key (issuer.pub): is this the keys folder?")
    state = state if state is not None else state_of(storage)
    members = {mid: m.public_key for mid, m in state.members.items() if m.active}
    # who added whom, so a kiosk can tell two independent members apart (a refusal takes two)
    # Members who have left, with the statements they signed that are still in force: those
    # stay valid at kiosks until their own expiry (a revocation drops no refusal, no lowering);
    # the departed key verifies exactly these, nothing it could sign later.
    former: dict[str, tuple] = {}
    for doc_hash_, expires, signers in state.statements.values():
        for mid in signers:
            m = state.members.get(mid)
            if expires > now and m is not None and not m.active:
                former.setdefault(mid, (m.public_key, set()))[1].add(doc_hash_)
    added_by = {
        mid: ("founder" if m.added_by in (FOUNDER, BOOTSTRAP) else m.added_by)
        for mid, m in state.members.items()
        if m.active or mid in former
    }
    held = storage.latest_manifest()
    handed_over = held is not None and check_same_authority(held[1], root.public_key(), keys_dir)
    version = max(int(local.get("version", 0)), held[0] if held else 0) + 1
    payload = manifest_payload(
        version=version,
        issued_at=now,
        issuer_keys=issuers,
        sealing_periods=[k for k in public_periods(keys_dir) if k.valid_to > now],
        policy=policy,
        members=members,
        server_keys=[
            (load_ed25519_public(keys_dir / BUNDLE_PUB), [FRESHNESS]),
            (load_ed25519_public(keys_dir / RECEIPT_PUB), [RECEIPTS]),
        ],
        next_root=load_ed25519_public(next_root) if next_root else None,
        added_by=added_by,
        former=former,
    )
    doc = sign_manifest(payload, root).decode("ascii")
    verify_manifest(doc, root.public_key())  # what kiosks will check, checked here first
    from sync.central.committee.members import log_manifest

    # Named in the audit log by the root itself before the store keeps it (nothing written
    # around the log goes unnoticed: kiosk-central audit verify).
    log_manifest(
        storage,
        root=root,
        version=version,
        doc=doc,
        next_root=load_ed25519_public(next_root) if next_root else None,
        now=now,
        state=state,
    )
    storage.put_manifest(version, doc, now=now)
    _save_state(keys_dir, {"version": version, "deny_level": policy.deny_level})
    if handed_over:  # the first manifest of a successor root: its tag keys are signed by it too
        from sync.central.succession import resign_tag_keys

        resign_tag_keys(keys_dir, storage, now=now)
    return version


def check_same_authority(held_doc: str, root, keys_dir: Path) -> bool:
    """The store's newest manifest was signed by this root, or named it as its successor: a
    keys folder of another authority is refused, naming it, before it signs anything the
    kiosks would refuse anyway. (A guard against a mistaken path, not a trust decision:
    kiosks verify every manifest against the root they pin.) True when this root is the
    successor the newest manifest named: the hand-over is being completed."""
    import json

    from kiosk.core.manifest import ManifestError
    from kiosk.core.signed import unb64

    try:
        verify_manifest(held_doc, root)
        return False
    except ManifestError:
        pass
    try:
        named = json.loads(unb64(json.loads(held_doc)["payload"])).get("next_root")
    except (ValueError, KeyError, TypeError):
        named = None
    if named is not None and unb64(named) == root.public_bytes_raw():
        return True
    raise UsageError(
        f"--keys {keys_dir}: this store's manifests were signed by another authority's root: --keys names "
        "another keys folder than the one that published them (check the path)"
    )


def deny_level(keys_dir: Path) -> int:
    """The deny level this committee's manifests set (kept beside the root; 3 by default)."""
    return int(_load_state(Path(keys_dir)).get("deny_level", Policy().deny_level))


STATE = "manifest-state.json"  # the last version published and the deny level, beside the root


def _load_state(keys_dir: Path) -> dict[str, int]:
    import json

    try:
        data = json.loads((keys_dir / STATE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"{keys_dir / STATE}: cannot be read ({e}): restore it from the committee's backup")
    return {k: int(v) for k, v in data.items() if k in ("version", "deny_level")}


def _save_state(keys_dir: Path, state: dict[str, int]) -> None:
    import json
    import os

    tmp = keys_dir / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True) + "\n")
    os.replace(tmp, keys_dir / STATE)
