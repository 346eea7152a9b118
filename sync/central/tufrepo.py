"""Releases of the kiosk software as a TUF repository (python-tuf's Metadata API).

Offline, on the committee's machine, `release publish` signs with the authority's root key
(the same key kiosks pin: one trust anchor) the TUF ``root`` (which names the root key for
the root and targets roles, and the server's online freshness key for snapshot and
timestamp) and a new ``targets`` version listing the release's files and its
``release.json`` (with the rollout). The server keeps them in its store and signs only
``snapshot`` and ``timestamp`` (which say which targets version is current, and that it is
fresh): with the online key alone it can withhold or delay a release, never make one, nor
offer an older one (kiosks keep the highest versions they saw), nor freeze a kiosk on an old
one past the metadata's expiry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

from kiosk.core.faults import UsageError
from kiosk.core.keys import BUNDLE_KEY, ROOT_KEY, KeyFileError, load_ed25519_private
from kiosk.core.releasefiles import RELEASE_FILE, Release, ReleaseError, Rollout, read_release, target_path

ROOT_DAYS = 365  # the TUF root's life; publishing renews it when under ROOT_RENEW_DAYS remain
ROOT_RENEW_DAYS = 90
TARGETS_DAYS = 90  # a release's signature lasts this long: the committee publishes again before
SNAPSHOT_S = 7 * 86400  # the server's own signatures: short, renewed as kiosks ask
TIMESTAMP_S = 86400


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def signer(key: Ed25519PrivateKey) -> CryptoSigner:
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


@dataclass(frozen=True)
class Published:
    version: str
    targets_version: int
    root_version: int
    files: int
    rollout: Rollout


def publish(
    keys_dir: Path,
    storage: Any,
    release_dir: Path,
    *,
    now: float,
    percent: int = 100,
    kiosks: tuple[str, ...] = (),
    online_key: Any = None,
) -> Published:
    """Sign ``release_dir`` (made by scripts/release) for the fleet, with its rollout."""
    try:
        root_key = load_ed25519_private(Path(keys_dir) / ROOT_KEY)
    except KeyFileError as e:
        raise UsageError(f"--keys {keys_dir}: {e} (releases are signed by the root, offline)") from None
    if online_key is None:  # the server's freshness key: its public half names it in the root
        online_key = load_ed25519_private(Path(keys_dir) / BUNDLE_KEY).public_key()
    release_file = Path(release_dir) / RELEASE_FILE
    if not release_file.is_file():
        raise UsageError(
            f"{release_dir}: no {RELEASE_FILE} here (build a release with scripts/release --out DIR)"
        )
    try:
        built = read_release(release_file.read_bytes())
    except ReleaseError as e:
        raise UsageError(f"{release_dir}: {e}") from None
    if not 0 <= percent <= 100:
        raise UsageError("--percent: 0..100")
    files: dict[str, bytes] = {}
    for name, digest in built.files.items():
        path = Path(release_dir) / name
        if not path.is_file():
            raise UsageError(f"{release_dir}: {name} is named in {RELEASE_FILE} but missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise UsageError(f"{release_dir}: {name} does not match its SHA-256 in {RELEASE_FILE}")
        files[name] = data
    held = storage.update_doc("targets.json")
    previous = Metadata[Targets].from_bytes(held.encode()).signed if held is not None else None
    if previous is not None:
        running = previous.unrecognized_fields.get("x-release")
        from kiosk.core.releasefiles import version_key

        if running and version_key(built.version) < version_key(str(running)):
            raise UsageError(
                f"{built.version} is older than the published {running}: "
                "kiosks never install an older release"
            )
    release = Release(built.version, built.files, built.project, Rollout(percent, tuple(sorted(kiosks))))
    release_bytes = release.encode()
    root_docs = _root(storage, root_key, online_key, now=now)
    targets_version = 1 if previous is None else previous.version + 1
    targets = Targets(version=targets_version, expires=_when(now + TARGETS_DAYS * 86400))
    targets.unrecognized_fields["x-release"] = release.version
    targets.targets[RELEASE_FILE] = TargetFile.from_data(RELEASE_FILE, release_bytes, ["sha256"])
    blobs = {RELEASE_FILE: release_bytes}
    for name, data in files.items():
        where = target_path(release.version, name)
        targets.targets[where] = TargetFile.from_data(where, data, ["sha256"])
        blobs[where] = data
    md = Metadata(targets)
    md.sign(signer(root_key))
    storage.put_update(root_docs, md.to_bytes().decode(), blobs, now=now)
    root_version = storage.update_root_version()  # the newest, just added or held
    return Published(release.version, targets_version, root_version, len(files), release.rollout)


def _root(storage: Any, root_key: Ed25519PrivateKey, online_key: Any, *, now: float) -> list[tuple[str, str]]:
    """The TUF root versions to add: the first, or a new one when the online key changed or
    the held one nears its expiry (each signed by the root key, which stays the root role)."""
    latest = storage.update_root_version()
    online = SSlibKey.from_crypto(online_key)
    offline = SSlibKey.from_crypto(root_key.public_key())
    if latest:
        held = Metadata[Root].from_bytes(storage.update_doc(f"{latest}.root.json").encode()).signed
        same_keys = held.roles["timestamp"].keyids == [online.keyid] and held.roles["root"].keyids == [
            offline.keyid
        ]
        if same_keys and held.expires > _when(now + ROOT_RENEW_DAYS * 86400):
            return []
    root = Root(version=latest + 1, expires=_when(now + ROOT_DAYS * 86400), consistent_snapshot=False)
    for role in ("root", "targets"):
        root.add_key(offline, role)
    for role in ("snapshot", "timestamp"):
        root.add_key(online, role)
    md = Metadata(root)
    md.sign(signer(root_key))
    return [(f"{root.version}.root.json", md.to_bytes().decode())]


def fresh(storage: Any, online_key: Ed25519PrivateKey, *, now: float) -> dict[str, bytes] | None:
    """The server's part: snapshot.json and timestamp.json over the held targets, signed with
    its online key. Their versions come from the targets version and the clock (the hour, the
    minute), so they only grow, a new release shows at once, and two workers signing in the
    same minute sign the same bytes. None: nothing published yet."""
    held = storage.update_doc("targets.json")
    if held is None:
        return None
    targets = Metadata[Targets].from_bytes(held.encode()).signed
    hour, minute = int(now // 3600), int(now // 60)
    snapshot_version = targets.version * 10**7 + hour % 10**7
    snapshot = Snapshot(
        version=snapshot_version,
        expires=_when(hour * 3600 + SNAPSHOT_S),
        meta={"targets.json": MetaFile(version=targets.version)},
    )
    s = Metadata(snapshot)
    s.sign(signer(online_key))
    snapshot_bytes = s.to_bytes()
    timestamp = Timestamp(
        version=targets.version * 10**9 + minute % 10**9,
        expires=_when(minute * 60 + TIMESTAMP_S),
        snapshot_meta=MetaFile(version=snapshot_version),
    )
    t = Metadata(timestamp)
    t.sign(signer(online_key))
    return {"snapshot.json": snapshot_bytes, "timestamp.json": t.to_bytes()}
