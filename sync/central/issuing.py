"""The authority's side of passes: issue a signed pass with the issuer key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.faults import UsageError
from kiosk.core.keys import ISSUER_KEY, load_ed25519_private
from kiosk.core.passes import PASS_ID_BYTES, encode_pass

DEFAULT_VALIDITY = timedelta(days=7)
ISSUER_NAME = "health-committee"


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a time: expected ISO 8601, for example 2026-12-01 or 2026-12-01T08:00:00+00:00"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def issue_pass(
    keys_dir: Path,
    *,
    risk: int,
    issued: datetime | None = None,
    expires: datetime | None = None,
    pass_id: bytes | None = None,
    issuer: str = ISSUER_NAME,
    signing_key=None,
) -> tuple[str, bytes]:
    """Returns (pass text, pass id). The pass id is the committee's to keep; the kiosk
    never prints or logs it."""
    key = signing_key or load_ed25519_private(Path(keys_dir) / ISSUER_KEY)
    issued = issued or datetime.now(UTC)
    expires = expires or issued + DEFAULT_VALIDITY
    if expires <= issued:
        raise UsageError("the expiry must be after the issue time")
    pass_id = pass_id or secrets.token_bytes(PASS_ID_BYTES)
    text = encode_pass(
        signing_key=key,
        issuer=issuer,
        issued_at=int(issued.timestamp()),
        expires_at=int(expires.timestamp()),
        pass_id=pass_id,
        risk_level=risk,
    )
    return text, pass_id


def save_pass(text: str, *, png: str | None = None, svg: str | None = None, scale: int = 8) -> None:
    """The pass as a QR image for a phone or a printer (segno writes PNG and SVG itself)."""
    import segno

    qr = segno.make_qr(text, error="m")
    if png:
        qr.save(png, kind="png", scale=scale, border=4)
    if svg:
        qr.save(svg, kind="svg", scale=scale, border=4)


def read_qr_image(path: Path) -> list[str]:
    """The QR texts in an image file (a photo or scan of a card, a phone's PNG), read by
    zxing-cpp; ValueError names a file that is no image."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            grey = im.convert("L")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(
            f"{path}: not an image this can read ({type(e).__name__}): a PNG, JPEG or similar"
        ) from None
    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [r.text for r in found if r.text]


def pass_from(*, text: str | None = None, image: str | None = None, number: str | None = None):
    """(pass text, pass id) from what a person has of a pass: its text, a photo of its QR
    code, or its printed number (then only the id)."""
    from kiosk.core.passnumbers import parse_pass_number

    if number:
        return None, parse_pass_number(number)
    if image:
        texts = read_qr_image(Path(image))
        passes = [t for t in texts if t.startswith("VC1:")]
        if not passes:
            raise UsageError(
                f"{image}: "
                + (
                    "no QR code found in it (a sharper, larger or straighter photo?)"
                    if not texts
                    else "its QR code is not a pass (it does not start with VC1:)"
                )
            )
        if len(set(passes)) > 1:
            raise UsageError(f"{image}: {len(set(passes))} passes in one image: crop it to one")
        return passes[0], None
    return (text or "").strip(), None


def card_check_url(url: str | None, keys_dir: Path) -> str:
    """The check page's address as a card prints it: with the root's fingerprint in its
    fragment (#root=...), which the page compares with the roots it follows (a page whose
    root was swapped says so). The fragment never reaches a server."""
    if not url:
        return ""
    from kiosk.core.keys import ROOT_PUB, load_ed25519_public
    from kiosk.core.roots import fingerprint

    return url if "#" in url else f"{url}#root={fingerprint(load_ed25519_public(Path(keys_dir) / ROOT_PUB))}"
