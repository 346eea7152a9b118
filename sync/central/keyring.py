"""The committee's per-period sealing keys: made ahead (`keys rotate`), destroyed when their
period's retention is over (`keys retire`). See kiosk/sealkeys.py for the kiosk's side.

In the committee's keys folder::

    sealing-periods.json             the schedule and the public halves: safe to copy to the
                                     central server's keys folder (it goes into the bundle)
    periods/sealing-<kid>.sealed     one private half per period and class, sealed to the
                                     committee's wrap key (committee/custody.py): usable only
                                     when two members act together
    periods/tag-<from>-<to>.key      the period's search-tag key (kiosks get per-venue keys
                                     derived from it, sealed to each; see distribute_tag_keys)

Periods are whole UTC days by default. A key's ``destroy_after`` is the end of its period
plus its class's retention, so no record it sealed outlives its retention by more than one
period once the key is retired. Retiring overwrites the private file with random bytes,
fsyncs, unlinks it, fsyncs the folder, and notes the time in the schedule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.core.faults import UsageError
from kiosk.core.keys import raw_public, sealing_kid
from kiosk.core.retention import SIGNIFICANT_DAYS
from kiosk.core.sealkeys import CLASSES, PeriodKey
from kiosk.core.timing import DAY
from sync.central.committee.keychain import Keychain
from sync.central.shredding import shred
from sync.central.storage.interface import KioskRegistry
from sync.central.storage.rows import TagKeyRow

MANIFEST = "sealing-periods.json"
PERIODS = "periods"


def _manifest_path(keys_dir: Path) -> Path:
    return Path(keys_dir) / MANIFEST


def load_schedule(keys_dir: Path) -> list[dict]:
    """The schedule's entries (PeriodKey's wire form, plus ``destroyed_at`` once retired)."""
    path = _manifest_path(keys_dir)
    if not path.exists():
        return []
    return json.loads(path.read_text())["periods"]


def public_periods(keys_dir: Path, *, now: float | None = None) -> list[PeriodKey]:
    """The public halves a bundle carries: every period not yet over (all with now=None)."""
    keys = [PeriodKey.from_wire(e) for e in load_schedule(keys_dir)]
    return [k for k in keys if now is None or k.valid_to > now]


def _write_schedule(keys_dir: Path, entries: list[dict]) -> None:
    path = _manifest_path(keys_dir)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"format": "venue-kiosk sealing periods v1", "periods": entries}, indent=1))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def private_path(keys_dir: Path, kid: str) -> Path:
    """Where a period's private half is kept: sealed to the committee's wrap key."""
    return Path(keys_dir) / PERIODS / f"sealing-{kid}.sealed"


def _write_wrapped(keys_dir: Path, kid: str, private: X25519PrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization as ser

    from sync.central.committee.custody import wrap

    raw = private.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    path = private_path(keys_dir, kid)
    sealed = wrap(keys_dir, raw, info=path.stem.encode())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(sealed)
        f.flush()
        os.fsync(f.fileno())


def wrap_clear_keys(keys_dir: Path) -> int:
    """Seal every period private half still kept in clear (``sealing-<kid>.key``, from before
    the committee's keys were split) to the wrap key, and shred the clear file."""
    from kiosk.core.keys import load_x25519_private

    n = 0
    for path in sorted((Path(keys_dir) / PERIODS).glob("sealing-*.key")):
        key = load_x25519_private(path)
        kid = sealing_kid(key.public_key())
        if not private_path(keys_dir, kid).exists():
            _write_wrapped(keys_dir, kid, key)
        shred(path)
        n += 1
    return n


def rotate(
    keys_dir: Path,
    *,
    now: float,
    ahead_periods: int = 56,
    period_s: int = DAY,
    normal_days: int = 28,
    significant_days: int = 90,
) -> list[PeriodKey]:
    """Make the key pairs missing for the periods from the current one to ``ahead_periods``
    ahead, for each class. Returns the new ones (none when run again the same day)."""
    from sync.central.committee.custody import wrap_public

    keys_dir = Path(keys_dir)
    wrap_public(keys_dir)  # no private half is ever written in clear: the wrap key comes first
    (keys_dir / PERIODS).mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir / PERIODS, 0o700)
    entries = load_schedule(keys_dir)
    have = {(e["class"], float(e["valid_from"])) for e in entries}
    start = now - now % period_s
    days = {"normal": normal_days, "significant": significant_days}
    made = []
    for i in range(ahead_periods):
        valid_from = start + i * period_s
        for klass in CLASSES:
            if (klass, valid_from) in have:
                continue
            private = X25519PrivateKey.generate()
            kid = sealing_kid(private.public_key())
            _write_wrapped(keys_dir, kid, private)
            key = PeriodKey(
                kid=kid,
                klass=klass,
                valid_from=valid_from,
                valid_to=valid_from + period_s,
                destroy_after=valid_from + period_s + days[klass] * DAY,
                public=raw_public(private.public_key()),
            )
            entries.append(key.to_wire())
            made.append(key)
        tag = tag_key_path(keys_dir, valid_from, valid_from + period_s)
        if not tag.exists():  # the period's search-tag key (kiosk.core.sealkeys)
            fd = os.open(tag, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
                f.flush()
                os.fsync(f.fileno())
    entries.sort(key=lambda e: (e["valid_from"], e["class"]))
    _write_schedule(keys_dir, entries)
    return made


def tag_key_path(keys_dir: Path, valid_from: float, valid_to: float) -> Path:
    return Path(keys_dir) / PERIODS / f"tag-{int(valid_from)}-{int(valid_to)}.key"


def tag_keys(keys_dir: Path) -> dict[float, tuple[float, bytes]]:
    """valid_from -> (valid_to, key) for every tag key still held."""
    out = {}
    for path in (Path(keys_dir) / PERIODS).glob("tag-*-*.key"):
        _, start, end = path.stem.split("-")
        out[float(start)] = (float(end), path.read_bytes())
    return out


def distribute_tag_keys(keys_dir: Path, storage: KioskRegistry, *, now: float) -> int:
    """Seal every tag key not yet over to every active kiosk's own X25519 key, for the
    server to hand out in that kiosk's bundle; the server never sees a tag key in clear.
    Each is signed by the root (in ``keys_dir``), so the server cannot hand a kiosk a key of
    its own choosing. Returns how many sealed keys were new."""
    rows = []
    for kiosk in storage.kiosks():
        if kiosk.revoked_at is not None or not kiosk.tag_public:
            continue
        have = {v for v, _, _ in storage.tag_keys_for(kiosk.kiosk_id, now)}
        public = X25519PublicKey.from_public_bytes(kiosk.tag_public)
        rows += sealed_tag_keys(keys_dir, kiosk.kiosk_id, public, now=now, have=have)
    return storage.put_tag_keys(rows) if rows else 0


def sealed_tag_keys(
    keys_dir: Path,
    kiosk_id: str,
    public: X25519PublicKey,
    *,
    now: float,
    have: Collection[float] = (),
    until: float | None = None,
) -> list[TagKeyRow]:
    """This kiosk's own key of each day not over yet (never the day's key itself), sealed to
    ``public`` and bound to the kiosk id, each signed by the root: the server relays them.
    ``until``: only the days that begin before it."""
    from kiosk.core.bundle import tag_key_doc
    from kiosk.core.keys import ROOT_KEY, load_ed25519_private
    from kiosk.core.seal import SUITE
    from kiosk.core.sealkeys import SealedTagKey, tag_key_info, venue_tag_key

    root = load_ed25519_private(Path(keys_dir) / ROOT_KEY)
    rows = []
    for start, (end, key) in sorted(tag_keys(keys_dir).items()):
        if end > now and start not in have and (until is None or start < until):
            sealed = SUITE.encrypt(venue_tag_key(key, kiosk_id), public, info=tag_key_info(kiosk_id, start))
            doc = tag_key_doc(kiosk_id, SealedTagKey(start, end, sealed), root)
            rows.append(TagKeyRow(kiosk_id, start, end, sealed, doc.decode("ascii")))
    return rows


HOLD_LIMIT_DAYS = SIGNIFICANT_DAYS  # a case holds a period's key at most this long after the period


def retire(
    keys_dir: Path, *, now: float, holds: Mapping[int, bool] | None = None
) -> tuple[list[PeriodKey], list[PeriodKey]]:
    """Destroy every private half whose ``destroy_after`` has passed, and each period's tag
    key once the last of its sealing keys goes. A period key that may have sealed a record
    an open case holds is kept, as the server keeps those records, until the case closes but
    never past the longest retention after the period. ``holds``: the held records' days
    (since 1970), each with whether one was sealed with an older key (storage.held_days();
    the server knows no record's key id): a held day keeps its keys, and such a record every
    key before it. Returns (destroyed, kept)."""
    held_days = dict(holds or {})

    def held(e: dict[str, Any]) -> bool:
        if now >= float(e["valid_to"]) + HOLD_LIMIT_DAYS * DAY:
            return False
        start, end = float(e["valid_from"]), float(e["valid_to"])
        return any(
            (start < (d + 1) * DAY and end > d * DAY) or (fallback and start < (d + 1) * DAY)
            for d, fallback in held_days.items()
        )

    entries = load_schedule(keys_dir)
    last: dict[Any, Any] = {}
    for e in entries:
        last[float(e["valid_from"])] = max(last.get(float(e["valid_from"]), 0), float(e["destroy_after"]))
    for start, (end, _) in tag_keys(keys_dir).items():
        if last.get(start, end + 90 * DAY) <= now:
            shred(tag_key_path(keys_dir, start, end))
    destroyed, kept = [], []
    for e in entries:
        if float(e["destroy_after"]) > now or e.get("destroyed_at"):
            continue
        if held(e):
            kept.append(PeriodKey.from_wire({k: v for k, v in e.items() if k != "destroyed_at"}))
            continue
        for path in (private_path(keys_dir, e["kid"]), private_path(keys_dir, e["kid"]).with_suffix(".key")):
            if path.exists():
                shred(path)
        e["destroyed_at"] = now
        destroyed.append(PeriodKey.from_wire({k: v for k, v in e.items() if k != "destroyed_at"}))
    if destroyed:
        _write_schedule(keys_dir, entries)
    return destroyed, kept


# The central server's keys folder, exactly: its two online keys (freshness, receipts; neither
# can grant power) and the root's public key (what the /check page is built with). Never the
# root's, an issuer's, the committee's or a member's private key.
SERVER_FILES = ("bundle.key", "receipt.key", "root.pub")
SERVER_FOLDER_HELP = (
    "the server's keys folder, made by `kiosk-central keys server --keys AUTHORITY --out DIR`: "
    "bundle.key, receipt.key and root.pub"
)


def server_keys_folder(authority_dir: Path, dest: Path) -> Path:
    """The central server's keys folder made from the authority's: ``SERVER_FILES`` and
    nothing else. What grants power reaches the server as manifests the root signed, through
    its storage. ``dest`` is made (its parent must exist); an existing ``dest`` may hold only
    these files (they are then replaced), never anything else."""
    authority_dir, dest = Path(authority_dir), Path(dest)
    missing = [n for n in SERVER_FILES if not (authority_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{authority_dir}: no {', '.join(missing)} here: --keys names the authority's keys folder "
            "(`kiosk-central keys init` made it)"
        )
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"--out {dest}: the folder {dest.parent} does not exist")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--out {dest}: not a folder")
    if dest.is_dir():
        others = sorted(p.name for p in dest.iterdir() if p.name not in SERVER_FILES)
        if others:
            raise UsageError(
                f"--out {dest}: holds other files ({', '.join(others[:3])}): the server's keys folder "
                "holds bundle.key, receipt.key and root.pub only: give a new folder"
            )
    dest.mkdir(mode=0o700, exist_ok=True)
    for name in SERVER_FILES:
        data = (authority_dir / name).read_bytes()
        tmp = dest / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if name.endswith(".key") else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest / name)
    return dest


def private_keys_in(folder: Path) -> list[Path]:
    """Every file below ``folder`` holding a private key other than the server's own two
    (bundle.key: freshness; receipt.key: receipts): what the server must refuse to start
    beside (the root's, an issuer's, the committee's or a member's)."""
    from kiosk.core.keys import SERVER_PRIVATE

    found = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and (
            path.suffix in (".sealed", ".share") or (path.name.startswith("tag-") and path.suffix == ".key")
        ):  # the committee's wrapped period keys, a member's share, a day's search-tag key
            found.append(path)
            continue
        if path.is_file() and path.name not in SERVER_PRIVATE:
            try:
                if b"PRIVATE KEY" in path.read_bytes()[:65536]:
                    found.append(path)
            except OSError:
                continue
    return found


AUDIT_HASH_INFO = b"venue-kiosk audit hash v1\0"


def audit_hash_key(keys_dir: Path, *, now: float) -> bytes:
    """The committee's secret for the keyed hashes the audit log names opened records and
    exposed passes by: derived from the search-tag key of the day the entry is made, so it is
    destroyed with that day's keys at `keys retire` (after the longest retention) and the
    log's hashes can then be matched by nobody. It never goes to the server."""
    import hashlib
    import hmac

    for start, (end, key) in tag_keys(keys_dir).items():
        if start <= now < end:
            return hmac.new(key, AUDIT_HASH_INFO, hashlib.sha256).digest()
    raise FileNotFoundError(
        f"{keys_dir}: no search-tag key covers today (the audit log's hash key comes from it): "
        "run `kiosk-central keys rotate` first"
    )


def period_private_keys(keys_dir: Path, unlocked) -> Keychain:
    """kid -> X25519 private key for every period key still held, unwrapped in memory with
    the wrap key two members rebuilt (``unlocked``: committee/custody.Unlocked), with each
    key's period (a record is opened by trying its day's keys: the server keeps no key id)."""
    out = {}
    for path in sorted((Path(keys_dir) / PERIODS).glob("sealing-*.sealed")):
        raw = unlocked.unwrap(path.read_bytes(), info=path.stem.encode())
        key = X25519PrivateKey.from_private_bytes(raw)
        out[sealing_kid(key.public_key())] = key
    return Keychain.of(out, load_schedule(keys_dir))


def committee_keys(keys_dir: Path, unlocked) -> Keychain:
    """kid -> X25519 private key for every period key not yet retired, unwrapped in memory
    with the wrap key two members rebuilt (committee/custody.unlock)."""
    keys = period_private_keys(keys_dir, unlocked)
    if not keys:
        raise FileNotFoundError(
            f"{keys_dir}: no period sealing keys held (periods/sealing-*.sealed): nothing can be opened"
        )
    return keys


__all__ = [
    "rotate",
    "retire",
    "load_schedule",
    "public_periods",
    "period_private_keys",
    "committee_keys",
    "private_path",
    "MANIFEST",
    "replace",
]
