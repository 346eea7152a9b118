"""Key files: Ed25519 (issuer, bundle, device) and X25519 (the committee's sealing key).

Private keys are PEM PKCS#8 written with mode 0600; public keys are PEM SubjectPublicKeyInfo.
Loading errors name the file and the problem, never the key material.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.core.passes import key_id

PrivateKey = Ed25519PrivateKey | X25519PrivateKey
PublicKey = Ed25519PublicKey | X25519PublicKey
StrPath = str | os.PathLike[str]
K = TypeVar("K", Ed25519PrivateKey, Ed25519PublicKey, X25519PrivateKey, X25519PublicKey)

# The files `kiosk-central keys init` writes, and which of them a kiosk needs.
ISSUER_KEY, ISSUER_PUB = "issuer.key", "issuer.pub"  # signs passes
SEALING_KEY, SEALING_PUB = "sealing.key", "sealing.pub"  # the committee's: opens records
BUNDLE_KEY, BUNDLE_PUB = "bundle.key", "bundle.pub"  # the server's: signs only freshness
RECEIPT_KEY, RECEIPT_PUB = "receipt.key", "receipt.pub"  # the server's: signs upload receipts
ROOT_KEY, ROOT_PUB = "root.key", "root.pub"  # offline, the committee's: signs manifests
KIOSK_FILES = (ISSUER_PUB, SEALING_PUB, ROOT_PUB)
SERVER_PRIVATE = (BUNDLE_KEY, RECEIPT_KEY)  # the only private keys the server may hold


class KeyFileError(Exception):
    pass


def write_private(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_public(path: Path, public_key: PublicKey) -> None:
    path.write_bytes(public_pem(public_key))
    os.chmod(path, 0o644)


def public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read(path: StrPath) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read key file ({e.strerror})") from None


def _load(path: StrPath, private: bool, kind: type[K], what: str) -> K:
    data = _read(path)
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PEM {what}") from None
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: not a PEM {what}")
    return key


def load_ed25519_private(path: StrPath) -> Ed25519PrivateKey:
    return _load(path, True, Ed25519PrivateKey, "Ed25519 private key")  # type: ignore[type-abstract]


def load_ed25519_public(path: StrPath) -> Ed25519PublicKey:
    return _load(path, False, Ed25519PublicKey, "Ed25519 public key")  # type: ignore[type-abstract]


def load_x25519_private(path: StrPath) -> X25519PrivateKey:
    return _load(path, True, X25519PrivateKey, "X25519 private key")  # type: ignore[type-abstract]


def load_x25519_public(path: StrPath) -> X25519PublicKey:
    return _load(path, False, X25519PublicKey, "X25519 public key")  # type: ignore[type-abstract]


def trusted_issuers(paths: Iterable[StrPath]) -> dict[bytes, Ed25519PublicKey]:
    """kid -> key for each issuer public key file."""
    keys = [load_ed25519_public(p) for p in paths]
    return {key_id(k): k for k in keys}


def raw_public(public_key: PublicKey) -> bytes:
    """The raw 32 bytes of an Ed25519 or X25519 public key (what the wire and the server store)."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sealing_kid(public_key: X25519PublicKey) -> str:
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def init_authority_keys(directory: Path) -> list[Path]:
    """Make the authority's key pairs in ``directory``: the offline root (signs manifests),
    the issuer (passes), and the server's two online keys (freshness, receipts). No static
    sealing pair: records are sealed only to the per-period keys `keys rotate` makes, each
    destroyed when its retention ends. Refuses to overwrite."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = (ROOT_KEY, ISSUER_KEY, BUNDLE_KEY, RECEIPT_KEY)
    existing = [n for n in names if (directory / n).exists()]
    if existing:
        raise KeyFileError(f"{directory / existing[0]}: already exists; not overwriting keys")
    written = []
    pairs: tuple[tuple[str, str, Ed25519PrivateKey], ...] = (
        (ROOT_KEY, ROOT_PUB, Ed25519PrivateKey.generate()),
        (ISSUER_KEY, ISSUER_PUB, Ed25519PrivateKey.generate()),
        (BUNDLE_KEY, BUNDLE_PUB, Ed25519PrivateKey.generate()),
        (RECEIPT_KEY, RECEIPT_PUB, Ed25519PrivateKey.generate()),
    )
    for priv_name, pub_name, key in pairs:
        write_private(directory / priv_name, key)
        write_public(directory / pub_name, key.public_key())
        written += [directory / priv_name, directory / pub_name]
    return written
