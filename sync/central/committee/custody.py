"""Two people, in the keys: the committee's private period keys are kept wrapped (sealed with
HPKE to one X25519 "wrap" key), and the wrap key exists only as shares, 2 of n, each sealed
to one member's own Ed25519 key. Opening a record therefore needs two members' private keys
at once: the keys folder plus one member's key opens nothing.

In the committee's keys folder::

    committee-wrap.json        the wrap key's public half, its id, and who holds a share
    shares/<member id>.share   one member's share, sealed to that member's key (libsodium's
                               sealed box to the X25519 form of the member's Ed25519 key)
    periods/sealing-<kid>.sealed  a period's private half, sealed to the wrap key

The wrap key's private half is derived (HKDF-SHA256) from a 16-byte seed; the seed is split
with pycryptodome's Shamir secret sharing (threshold 2), never by hand. It is rebuilt in
memory only, for one command, from two members' shares, and checked against the public half.

When a member leaves (or joins), ``reissue`` makes a new seed and wrap key, re-wraps every
period key still held, gives every active member a fresh share and shreds the old shares:
a departed member's old share combines with nothing any more.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.core.auditheads import member_id
from kiosk.core.faults import Refusal
from kiosk.core.keys import raw_public
from kiosk.core.seal import SUITE

WRAP_FILE = "committee-wrap.json"
SHARES = "shares"
THRESHOLD = 2
SEED_BYTES = 16  # what pycryptodome's Shamir splits (128-bit security)
WRAP_INFO = b"venue-kiosk committee wrap v1\0"
FORMAT = "venue-kiosk committee wrap v1"


class CustodyError(Refusal):
    """The wrap key cannot be made or rebuilt; the message says what to do."""


@dataclass(frozen=True)
class Unlocked:
    """The wrap key, rebuilt in memory from two members' shares."""

    private: X25519PrivateKey
    members: tuple[str, str]  # the two member ids that acted

    def unwrap(self, sealed: bytes, *, info: bytes) -> bytes:
        return SUITE.decrypt(sealed, self.private, info=WRAP_INFO + info)


def _derive(seed: bytes) -> X25519PrivateKey:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=WRAP_INFO).derive(seed)
    return X25519PrivateKey.from_private_bytes(raw)


def _wrap_path(keys_dir: Path) -> Path:
    return Path(keys_dir) / WRAP_FILE


def wrap_document(keys_dir: Path) -> dict | None:
    path = _wrap_path(keys_dir)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise CustodyError(f"{path}: not a committee wrap file")
    return doc


def wrap_public(keys_dir: Path) -> X25519PublicKey:
    doc = wrap_document(keys_dir)
    if doc is None:
        raise CustodyError(
            f"{Path(keys_dir)}: no committee wrap key yet: run `kiosk-central keys share --keys "
            f"{keys_dir} --data DIR` once two members are active (period keys are kept only wrapped)"
        )
    return X25519PublicKey.from_public_bytes(base64.b64decode(doc["public"]))


def wrap(keys_dir: Path, raw: bytes, *, info: bytes) -> bytes:
    """Seal ``raw`` (a private key's bytes) to the committee's wrap key."""
    return SUITE.encrypt(raw, wrap_public(keys_dir), info=WRAP_INFO + info)


def _curve_public(public: Ed25519PublicKey) -> bytes:
    from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519

    return crypto_sign_ed25519_pk_to_curve25519(raw_public(public))


def _curve_private(key: Ed25519PrivateKey) -> bytes:
    from nacl.bindings import crypto_sign_ed25519_sk_to_curve25519

    seed = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    return crypto_sign_ed25519_sk_to_curve25519(seed + raw_public(key.public_key()))


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def wrapped_files(keys_dir: Path) -> list[Path]:
    """Every file sealed to the wrap key (the period keys' private halves)."""
    return sorted((Path(keys_dir) / "periods").glob("*.sealed"))


def issue(
    keys_dir: Path,
    members: Mapping[str, Ed25519PublicKey],
    *,
    now: float,
    unlocked: Unlocked | None = None,
) -> str:
    """Make a new wrap key, split it 2-of-n among ``members`` (id -> public key), and, when
    one exists already (``unlocked`` rebuilt from two current shares), re-wrap every period
    key under the new one and shred the old shares. Returns the new wrap id."""
    from Crypto.Protocol.SecretSharing import Shamir

    keys_dir = Path(keys_dir)
    if wrap_document(keys_dir) is not None and unlocked is None:
        raise CustodyError(
            "the committee's wrap key exists already: re-issuing the shares needs two members' keys "
            "(`kiosk-central keys share ... --member-key A --member-key B`)"
        )
    if len(members) < THRESHOLD:
        raise CustodyError(
            f"the committee has {len(members)} active member(s): shares need at least {THRESHOLD} "
            "(add and approve a second member first), so that no one member alone can open records"
        )
    seed = os.urandom(SEED_BYTES)
    private = _derive(seed)
    wrap_id = raw_public(private.public_key()).hex()[:16]
    ids = sorted(members)
    shares = Shamir.split(THRESHOLD, len(ids), seed)
    (keys_dir / SHARES).mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir / SHARES, 0o700)
    from nacl.public import PublicKey, SealedBox

    old_shares = sorted((keys_dir / SHARES).glob("*.share"))
    new_files: dict[Path, bytes] = {}
    for mid, (index, share) in zip(ids, shares, strict=True):
        inner = json.dumps({"wrap_id": wrap_id, "index": index, "share": base64.b64encode(share).decode()})
        sealed = SealedBox(PublicKey(_curve_public(members[mid]))).encrypt(inner.encode())
        body = {
            "format": FORMAT,
            "member_id": mid,
            "wrap_id": wrap_id,
            "sealed": base64.b64encode(sealed).decode(),
        }
        new_files[keys_dir / SHARES / f"{mid}.share.new"] = json.dumps(body).encode()
    if unlocked is not None:  # re-wrap every period key under the new wrap key first
        for path in wrapped_files(keys_dir):
            info = path.stem.encode()
            raw = unlocked.unwrap(path.read_bytes(), info=info)
            _atomic_write(path, SUITE.encrypt(raw, private.public_key(), info=WRAP_INFO + info), 0o600)
    for path, data in new_files.items():
        _atomic_write(path, data, 0o600)
    doc = {
        "format": FORMAT,
        "wrap_id": wrap_id,
        "public": base64.b64encode(raw_public(private.public_key())).decode(),
        "threshold": THRESHOLD,
        "members": ids,
        "made_at": now,
    }
    _atomic_write(_wrap_path(keys_dir), json.dumps(doc, indent=1).encode(), 0o644)
    from sync.central.shredding import shred

    for path in old_shares:
        shred(path)
    for path in new_files:
        os.replace(path, path.with_name(path.name.removesuffix(".new")))
    return wrap_id


def unlock(keys_dir: Path, member_keys: Sequence[Ed25519PrivateKey], *, active: set[str]) -> Unlocked:
    """Rebuild the wrap key from two active members' shares, in memory only."""
    from Crypto.Protocol.SecretSharing import Shamir
    from nacl.exceptions import CryptoError
    from nacl.public import PrivateKey, SealedBox

    doc = wrap_document(keys_dir)
    if doc is None:
        wrap_public(keys_dir)  # raises the error that says what to run
        raise AssertionError
    ids = [member_id(k.public_key()) for k in member_keys]
    if len(ids) != THRESHOLD or len(set(ids)) != THRESHOLD:
        raise CustodyError(
            "opening records needs two different members acting together: give --member-key twice, "
            "one file of each member (the committee's keys are split between members)"
        )
    shares = []
    for key, mid in zip(member_keys, ids, strict=True):
        if mid not in active:
            raise CustodyError(f"member {mid} is not an active committee member: their share opens nothing")
        path = Path(keys_dir) / SHARES / f"{mid}.share"
        if not path.exists():
            raise CustodyError(
                f"member {mid} holds no share of the current wrap key: two members re-issue the shares "
                "with `kiosk-central keys share`"
            )
        body = json.loads(path.read_text())
        try:
            inner = json.loads(
                SealedBox(PrivateKey(_curve_private(key))).decrypt(base64.b64decode(body["sealed"]))
            )
        except (CryptoError, ValueError, KeyError):
            raise CustodyError(f"{path}: this member's share does not open with their key") from None
        if inner["wrap_id"] != doc["wrap_id"]:
            raise CustodyError(f"{path}: a share of an earlier wrap key (re-issued since): it opens nothing")
        shares.append((int(inner["index"]), base64.b64decode(inner["share"])))
    private = _derive(Shamir.combine(shares))
    if base64.b64encode(raw_public(private.public_key())).decode() != doc["public"]:
        raise CustodyError("the two shares do not rebuild the committee's wrap key (a damaged share file?)")
    return Unlocked(private=private, members=(ids[0], ids[1]))
