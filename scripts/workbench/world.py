"""A seeded world for the tools and the tests: the authority's keys, a committee of two
(Alice and Bob), an approved case, a manifest, member-signed risk, a kiosk's configuration and
health. Everything random is seeded, so a run is the same every time. (The tests' own helpers
live in tests/testkit.py.)"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.core.keys import (
    BUNDLE_KEY,
    BUNDLE_PUB,
    ISSUER_KEY,
    ISSUER_PUB,
    RECEIPT_KEY,
    RECEIPT_PUB,
    ROOT_KEY,
    ROOT_PUB,
    write_private,
    write_public,
)


def seed_bytes(label: str, n: int = 32) -> bytes:
    """``n`` bytes that depend only on ``label``."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def seeded_ed25519(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed_bytes("ed25519:" + label))


def seeded_x25519(label: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(seed_bytes("x25519:" + label))


def seeded_authority(directory: Path, label: str = "authority") -> Path:
    """The files `kiosk-central keys init` writes, from keys that depend only on ``label``."""
    directory.mkdir(parents=True, exist_ok=True)
    pairs: tuple[tuple[str, str, Any], ...] = (
        (ROOT_KEY, ROOT_PUB, seeded_ed25519(label + "/root")),
        (ISSUER_KEY, ISSUER_PUB, seeded_ed25519(label + "/issuer")),
        (BUNDLE_KEY, BUNDLE_PUB, seeded_ed25519(label + "/bundle")),
        (RECEIPT_KEY, RECEIPT_PUB, seeded_ed25519(label + "/receipt")),
    )
    for priv_name, pub_name, key in pairs:
        write_private(directory / priv_name, key)
        write_public(directory / pub_name, key.public_key())
    seeded_committee_keys(directory)
    return directory


def members() -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    """Alice's and Bob's member keys (the committee the tests use)."""
    return seeded_ed25519("member/alice"), seeded_ed25519("member/bob")


def seeded_committee_keys(keys_dir: Path, *, now: float | None = None, ahead: int = 56) -> None:
    """What `keys share` and `keys rotate` make: the wrap key split between Alice and Bob,
    and the per-period sealing keys (sealed to it) with their public schedule."""
    from sync.central.committee.audit import member_id
    from sync.central.committee.custody import issue, wrap_document
    from sync.central.keyring import rotate

    now = time.time() if now is None else now
    if wrap_document(keys_dir) is None:
        issue(keys_dir, {member_id(k.public_key()): k.public_key() for k in members()}, now=now)
    rotate(keys_dir, now=now, ahead_periods=ahead)


def unlocked(keys_dir: Path) -> Any:
    """The wrap key rebuilt from Alice's and Bob's shares, as two members acting do."""
    from sync.central.committee.audit import member_id
    from sync.central.committee.custody import unlock

    alice, bob = members()
    return unlock(keys_dir, [alice, bob], active={member_id(k.public_key()) for k in (alice, bob)})


def period_keys(keys_dir: Path) -> dict[str, Any]:
    """kid -> private key of every period key held (for tests that open records)."""
    from sync.central.keyring import period_private_keys

    return period_private_keys(keys_dir, unlocked(keys_dir))


def kiosk_config_text(authority: Path, db: Path, **overrides: list[str]) -> str:
    """A minimal valid kiosk config for tests, with optional raw TOML lines per section. The
    database's folder is made, as `scripts/install-pi` makes /var/lib/kiosk (the kiosk itself
    refuses a database in a folder that does not exist)."""
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    sections = {
        "kiosk": ['venue_id = "venue-test"', f'database = "{db}"'],
        "keys": [
            f'issuer_keys = ["{authority / ISSUER_PUB}"]',
            f'sealing_periods = "{authority / "sealing-periods.json"}"',
        ],
        "signal": ['pin_factory = "mock"'],
    }
    for section, lines in overrides.items():
        sections.setdefault(section, []).extend(lines)
    return "\n".join(f"[{s}]\n" + "\n".join(lines) for s, lines in sections.items()) + "\n"


TEST_CASE = "OB-TEST-1"


def committee(storage: Any, *, now: float) -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    """Alice and Bob, the committee's two founders, each signing in with their own key (as
    `kiosk-central member found` does)."""
    from sync.central.committee.members import found_committee

    alice, bob = members()
    found_committee(storage, [("Alice", alice), ("Bob", bob)], now=now)
    return alice, bob


def approved_case(
    storage: Any, alice: Any, bob: Any, *, now: float, case_id: str = TEST_CASE, days_back: float = 60
) -> str:
    """A case Bob opens and Alice, the other founder, approves."""
    from kiosk.core.timing import DAY
    from sync.central.committee.members import approve_case, open_case

    open_case(
        storage,
        key=bob,
        case_id=case_id,
        reason="a cluster reported by the district hospital",
        from_ts=now - days_back * DAY,
        to_ts=now + DAY,
        now=now,
    )
    approve_case(storage, key=alice, case_id=case_id, now=now)
    return case_id


def publish_manifest(keys_dir: Path, storage: Any, *, now: float, deny_level: int | None = None) -> int:
    from sync.central.manifests import publish

    return publish(Path(keys_dir), storage, now=now, deny_level=deny_level)


def trusted_world(storage: Any, keys_dir: Path, *, now: float) -> tuple[Any, Any]:
    """A committee of two, an approved case, and a manifest naming them: what a server needs
    before kiosks trust its bundles and receipts. Returns (alice, bob)."""
    alice, bob = committee(storage, now=now)
    approved_case(storage, alice, bob, now=now)
    publish_manifest(keys_dir, storage, now=now)
    return alice, bob


def raise_risk(
    storage: Any,
    member: Any,
    pass_ids: list[bytes],
    level: int,
    *,
    now: float,
    days: float = 14,
    case_id: str = TEST_CASE,
    second: Any = None,
) -> int:
    """A member-signed risk change for ``case_id``, as `set-risk` makes it. A refusal (level 3)
    takes two members: ``second``, or else the other of Alice and Bob."""
    from kiosk.core.timing import DAY
    from sync.central.committee.members import change_risk

    if level >= 3 and second is None:
        alice, bob = members()
        second = bob if member.public_key() == alice.public_key() else alice
    return change_risk(
        storage,
        key=member,
        case_id=case_id,
        pass_ids=pass_ids,
        level=level,
        expires_at=now + days * DAY,
        hash_key=seed_bytes("audit-hash"),
        second=second if level >= 3 else None,
        now=now,
    )


def with_storage(data_dir: Path) -> Any:
    from sync.central.storage.sqlite_backend import SqliteStorage

    return SqliteStorage.in_folder(data_dir)


def health_summary(**changes: Any) -> dict[str, Any]:
    """A kiosk's health summary as `kiosk sync` sends it (kiosk.core.protocol.HEALTH_FIELDS): a
    kiosk that is fine, but for ``changes``."""
    return {
        "at": 1_800_000_000.0,
        "version": "0.1.0",
        "bundle_version": 3,
        "manifest_version": 2,
        "bundle_age_s": 600.0,
        "pending": 0,
        "set_aside": 0,
        "clock_synced": True,
        "clock_offset_s": 0.0,
        "disk_free_mb": 5000,
        "fault": None,
        "fault_at": None,
        "epoch": 1,
        "uptime_s": 3600.0,
        "audit_head": None,
        "update": None,
        "oldest_pending_s": None,
        **changes,
    }
