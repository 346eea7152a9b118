"""Enrolment tokens, the committee's side (on its machine, with the root key): a one-time,
expiring token for one venue, whose document the root signs and the store keeps, with the
venue's search-tag keys of the days ahead sealed to the token's own key (so a kiosk is
traceable from its first check-in). The code itself is printed once and kept nowhere.
See :mod:`kiosk.core.enroltokens` for what each side checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from kiosk.core.enroltokens import QR_PREFIX, Code, Token, make_token, new_code
from kiosk.core.faults import UsageError
from kiosk.core.keys import ROOT_KEY, KeyFileError, load_ed25519_private
from kiosk.core.protocol import KEY_MARGIN_DAYS
from kiosk.core.timing import DAY
from sync.central.keyring import sealed_tag_keys
from sync.central.storage.interface import KioskRegistry
from sync.central.storage.rows import EnrolmentToken

MAX_DAYS = 90  # a token lives at most this long: one that is never used must not linger
DEFAULT_DAYS = 14


@dataclass(frozen=True)
class Issued:
    code: Code
    token: Token
    tag_keys: int  # days of search-tag keys sealed with it


def issue(keys_dir: Path, storage: KioskRegistry, *, venue: str, expires_at: float, now: float) -> Issued:
    venue = venue.strip()
    if not venue or len(venue) > 200 or not venue.isprintable():
        raise UsageError("--venue: give the venue's id, as its kiosk's [kiosk] venue_id will say")
    if not now < expires_at <= now + MAX_DAYS * DAY:
        raise UsageError(f"--expires: must be in the future and at most {MAX_DAYS} days away")
    try:
        root = load_ed25519_private(Path(keys_dir) / ROOT_KEY)
    except KeyFileError as e:
        raise UsageError(
            f"--keys {keys_dir}: {e} (tokens are signed by the root, on the committee's machine)"
        ) from None
    code = new_code()
    kiosk_id = "k-" + secrets.token_hex(8)
    token, doc = make_token(
        code, kiosk_id=kiosk_id, venue=venue, issued_at=now, expires_at=expires_at, root=root
    )
    seal_to = X25519PublicKey.from_public_bytes(token.seal_public)
    # Its days until the token expires and a kiosk's offline margin after: enough until the
    # committee's next `keys rotate --data` seals the kiosk's keys to its own key; no more,
    # since whoever kept the code could open these.
    rows = sealed_tag_keys(keys_dir, kiosk_id, seal_to, now=now, until=expires_at + KEY_MARGIN_DAYS * DAY)
    storage.put_enrolment_token(
        EnrolmentToken(token.lookup, kiosk_id, venue, now, expires_at, doc.decode("ascii"), None), rows
    )
    return Issued(code, token, len(rows))


def write_card(issued: Issued, out: Path) -> None:
    """The token as a QR code to show the kiosk's camera (PNG or SVG by the file's name)."""
    import segno

    if out.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"--out {out}: name a .png or .svg file (the token's QR code)")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    segno.make(QR_PREFIX + issued.code.text, error="m").save(str(tmp), scale=8, border=4)
    tmp.replace(out)


def counts(storage: KioskRegistry, *, now: float) -> dict[str, int]:
    """Tokens by state: outstanding (usable now), used, expired unused."""
    out = {"outstanding": 0, "used": 0, "expired": 0}
    for t in storage.enrolment_tokens():
        out["used" if t.used_at is not None else "outstanding" if t.expires_at > now else "expired"] += 1
    return out
