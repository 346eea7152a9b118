"""Passes in bulk: a printable PDF of cards, one image per pass for phones, and the issuing
office's manifest (`kiosk-central issue-passes`).

Every request is checked before anything is signed or written (a CSV's bad row is named by
row and column and nothing is written); the batch is built in a folder beside ``--out`` and
moved into place whole at the end, so an interrupted run leaves no half batch.

QR codes are made by zxing-cpp's encoder (C++, about 0.2 ms a code: a pure-Python encoder
spends 10 ms choosing a mask), cards are laid out by fpdf2, whose text shaping (HarfBuzz,
through uharfbuzz) puts Khmer's subscript consonants and vowel signs where they belong; the
font is embedded (subset), so the PDF prints the same anywhere.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.console import csv_cell
from kiosk.core.faults import UsageError
from kiosk.core.passes import PASS_ID_BYTES, RISK_LEVELS, encode_pass
from kiosk.core.passnumbers import pass_number
from kiosk.core.timing import utc_z

MAX_VALIDITY_DAYS = 366  # cards last up to a year; the risk list does the rest
DEFAULT_CARD_DAYS = 365
MAX_PASSES = 20_000_000
REFERENCE, EXPIRES, RISK = "reference", "expires", "risk"
MANIFEST = "manifest.csv"
CARDS = "cards.pdf"
# A PDF is held in memory until it is written (fpdf2): past this many cards a batch goes into
# volumes, cards-0001.pdf, cards-0002.pdf, ... (1,000 A4 pages each, about 100 MiB of memory).
CARDS_PER_FILE = 10_000
IMAGES = "images"
MANIFEST_COLUMNS = ("seq", "number", "pass_id", "issuer", "issued", "expires", "risk", "reference", "card")

FONT_DIR = Path("/usr/share/fonts/truetype")
KHMER_FONTS = (
    FONT_DIR / "khmeros/KhmerOS.ttf",  # Debian's fonts-khmeros
    FONT_DIR / "noto/NotoSansKhmer-Regular.ttf",  # fonts-noto-core
)
LATIN_FONT = FONT_DIR / "dejavu/DejaVuSans.ttf"  # fonts-dejavu-core
MONO_FONT = FONT_DIR / "dejavu/DejaVuSansMono.ttf"

# The card's words: the health authority's to review. Khmer first, as on the door's screen.
# Khmer writes no spaces between words: a zero-width space (U+200B) marks where a line may
# break.
ZWSP = "\u200b"
TITLE = ("ប័ណ្ណចូល", "Entry pass")
SHOW = (f"សូម{ZWSP}បង្ហាញ{ZWSP}កាត{ZWSP}នេះ{ZWSP}នៅ{ZWSP}ច្រកចូល។", "Show this card at the entrance.")
CHECK = (f"ពិនិត្យមើល{ZWSP}ថាតើ{ZWSP}អ្នក{ZWSP}បាន{ZWSP}ប៉ះពាល់{ZWSP}ឬទេ៖", "Check whether you were exposed:")
VALID = ("មានសុពលភាពដល់", "Valid until")


FOOTER_PT = 6.5  # the authority's name and contact, along the card's foot


class BatchError(UsageError):
    """A request that cannot be issued; the message names the row and column."""


@dataclass(frozen=True)
class CardRequest:
    seq: int
    reference: str
    expires: datetime
    risk: int


@dataclass(frozen=True)
class IssuedPass:
    seq: int
    number: str
    pass_id: bytes
    text: str
    issued: datetime
    expires: datetime
    risk: int
    reference: str


@dataclass(frozen=True)
class BatchResult:
    out: Path
    count: int
    pages: int
    files: tuple[str, ...]  # the card PDFs: cards.pdf, or volumes cards-0001.pdf, ...
    sign_s: float
    cards_s: float
    images_s: float


def _utc(t: datetime) -> str:
    return utc_z(t.timestamp())


def _check_expiry(expires: datetime, issued: datetime, where: str) -> None:
    if expires <= issued:
        raise BatchError(f"{where}: {_utc(expires)} is not after the issue time ({_utc(issued)})")
    if expires > issued + timedelta(days=MAX_VALIDITY_DAYS):
        raise BatchError(
            f"{where}: {_utc(expires)} is more than {MAX_VALIDITY_DAYS} days after issue "
            "(cards last at most a year: the risk list does the rest)"
        )


def counted_requests(count: int, *, issued: datetime, days: int, risk: int) -> list[CardRequest]:
    if not 1 <= count <= MAX_PASSES:
        raise BatchError(f"--count: 1 to {MAX_PASSES:,} passes, not {count}")
    expires = issued + timedelta(days=days)
    _check_expiry(expires, issued, "--expires")
    return [CardRequest(i + 1, "", expires, risk) for i in range(count)]


def _parse_expiry(text: str) -> datetime:
    t = datetime.fromisoformat(text.strip())
    if len(text.strip()) == 10:  # a date: valid through that whole day (UTC)
        t = t + timedelta(days=1) - timedelta(seconds=1)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def csv_requests(
    path: Path, *, issued: datetime, days: int, risk: int, reference: str = REFERENCE
) -> list[CardRequest]:
    """One request per row of a CSV with a ``reference`` column (the office's own id for the
    person or card, unique) and optional ``expires`` (ISO 8601 date or time) and ``risk``
    (0..3) columns overriding --expires and --risk. ``reference``: the name of the reference
    column, if the sheet calls it something else. Rows are numbered as a spreadsheet shows
    them (the header is row 1)."""
    ref_col = reference.strip().lower()
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise BatchError(f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)") from None
    except csv.Error as e:
        raise BatchError(f"{path}: not a CSV file ({e})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise BatchError(f"{path}: empty: expected a header row with a '{ref_col}' column")
    header = [h.strip().lower() for h in rows[0]]
    if ref_col not in header:
        raise BatchError(
            f"{path}: no '{ref_col}' column (the header row, row 1, has: "
            f"{', '.join(repr(h) for h in header if h) or 'nothing'})"
        )
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise BatchError(f"{path}: row 1: the column {dupes[0]!r} appears twice")
    col = {name: header.index(name) for name in (ref_col, EXPIRES, RISK) if name in header}
    default_expires = issued + timedelta(days=days)
    _check_expiry(default_expires, issued, "--expires")
    seen: dict[str, int] = {}
    out: list[CardRequest] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line: nothing asked
        if len(row) > len(header):
            raise BatchError(f"{path}: row {n}: {len(row)} cells, but the header names {len(header)} columns")

        def cell(name: str, row: list[str] = row) -> str:
            i = col[name]
            return row[i].strip() if i < len(row) else ""

        ref = cell(ref_col)
        if not ref:
            raise BatchError(f"{path}: row {n}, column {ref_col}: empty (every card needs its reference)")
        if ref in seen:
            raise BatchError(f"{path}: row {n}, column {ref_col}: {ref!r} is already on row {seen[ref]}")
        seen[ref] = n
        expires = default_expires
        if EXPIRES in col and cell(EXPIRES):
            try:
                expires = _parse_expiry(cell(EXPIRES))
            except ValueError:
                raise BatchError(
                    f"{path}: row {n}, column {EXPIRES}: {cell(EXPIRES)!r} is not a date "
                    "(ISO 8601, for example 2027-06-30)"
                ) from None
            _check_expiry(expires, issued, f"{path}: row {n}, column {EXPIRES}")
        level = risk
        if RISK in col and cell(RISK):
            try:
                level = int(cell(RISK))
            except ValueError:
                level = -1
            if level not in RISK_LEVELS:
                raise BatchError(f"{path}: row {n}, column {RISK}: {cell(RISK)!r} is not a risk level 0..3")
        out.append(CardRequest(len(out) + 1, ref, expires, level))
    if not out:
        raise BatchError(f"{path}: no rows below the header: nothing to issue")
    if len(out) > MAX_PASSES:
        raise BatchError(f"{path}: {len(out):,} rows: at most {MAX_PASSES:,} passes a batch")
    return out


def sign_passes(
    requests: Iterable[CardRequest], *, key: Ed25519PrivateKey, issuer: str, issued: datetime
) -> Iterable[IssuedPass]:
    at = int(issued.timestamp())
    for r in requests:
        pass_id = secrets.token_bytes(PASS_ID_BYTES)
        text = encode_pass(
            signing_key=key,
            issuer=issuer,
            issued_at=at,
            expires_at=int(r.expires.timestamp()),
            pass_id=pass_id,
            risk_level=r.risk,
        )
        yield IssuedPass(r.seq, pass_number(pass_id), pass_id, text, issued, r.expires, r.risk, r.reference)


def qr_matrix(text: str, *, quiet_zone: bool = True):
    """The QR code of a pass as a numpy array (0 dark, 255 light), one pixel a module."""
    import zxingcpp

    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return code.to_image(scale=1, add_quiet_zones=quiet_zone)


def khmer_font() -> Path:
    for p in KHMER_FONTS:
        if p.is_file():
            return p
    raise BatchError(f"no Khmer font at {KHMER_FONTS[0]} (apt install fonts-khmeros)")


class CardSheet:
    """A4 sheets of ten cards (2 x 5, 90 x 54 mm, a credit card's size with a margin), each
    with a cutting line: the QR code, the pass number under it, the expiry, and what to do,
    in Khmer and English."""

    COLS, ROWS = 2, 5
    W, H = 90.0, 54.0
    LEFT, TOP = (210 - 2 * 90.0) / 2, (297 - 5 * 54.0) / 2
    QR = 38.0

    def __init__(self, *, check_url: str = "", authority: str = "", contact: str = ""):
        from fpdf import FPDF

        for f in (LATIN_FONT, MONO_FONT):
            if not f.is_file():
                raise BatchError(f"no font at {f} (apt install fonts-dejavu-core)")
        pdf = FPDF(format="A4", unit="mm")
        pdf.set_auto_page_break(False)
        pdf.set_creator("kiosk-central issue-passes")
        pdf.add_font("khmer", fname=str(khmer_font()))
        pdf.add_font("sans", fname=str(LATIN_FONT))
        pdf.add_font("mono", fname=str(MONO_FONT))
        pdf.set_fallback_fonts(["khmer"])  # a name in Khmer on the authority's line
        pdf.set_text_shaping(True)  # HarfBuzz: Khmer clusters, subscripts, vowel signs
        pdf.c_margin = 0
        pdf.set_draw_color(180)
        pdf.set_line_width(0.2)
        self.pdf = pdf
        self.count = 0
        # The words are the same on every card: lay them out once, then only place lines.
        self.text_x = 3 + self.QR + 2
        width = self.W - self.text_x - 3
        lines: list[tuple[str, float, str]] = []  # (font, size, line)
        for km, en in (SHOW, (CHECK[0], CHECK[1]) if check_url else ("", "")):
            if km:
                lines += [("khmer", 8.0, ln) for ln in self._wrap("khmer", 8.0, km, width)]
                lines += [("sans", 7.0, ln) for ln in self._wrap("sans", 7.0, en, width)]
        if check_url:
            lines += [("mono", 6.5, ln) for ln in self._wrap("mono", 6.5, check_url, width, chars=True)]
        self.lines = lines
        pdf.set_font("khmer", size=10)
        self.title_w = pdf.get_string_width(TITLE[0])
        # Who issued the card and how to reach them (the privacy notice promises both on the
        # passes): one line along the card's foot, under the QR code and the words.
        self.footer = " · ".join(x.strip() for x in (authority, contact) if x.strip())
        if self.footer:
            pdf.set_font("sans", size=FOOTER_PT)
            room, width = self.W - 6, pdf.get_string_width(self.footer)
            if width > room:
                fits = int(len(self.footer) * room / width)
                raise BatchError(
                    f"--authority and --contact: {self.footer!r} is longer than a card's line "
                    f"({len(self.footer)} characters; about {fits} fit): shorten them"
                )

    def _wrap(self, font: str, size: float, text: str, width: float, *, chars: bool = False) -> list[str]:
        self.pdf.set_font(font, size=size)
        import re

        units = list(text) if chars else re.split(f"( |{ZWSP})", text)[::2]
        seps = [""] * len(units) if chars else re.findall(f"( |{ZWSP})", text)
        lines, line = [], ""
        for u, sep in zip(units, [""] + [s.replace(ZWSP, "") for s in seps]):
            trial = f"{line}{sep}{u}" if line else u
            if line and self.pdf.get_string_width(trial) > width:
                lines.append(line)
                line = u
            else:
                line = trial
        return lines + ([line] if line else [])

    def add(self, p: IssuedPass) -> None:
        from PIL import Image

        pdf = self.pdf
        slot = self.count % (self.COLS * self.ROWS)
        if slot == 0:
            pdf.add_page()
        self.count += 1
        x = self.LEFT + (slot % self.COLS) * self.W
        y = self.TOP + (slot // self.COLS) * self.H
        pdf.rect(x, y, self.W, self.H)  # where to cut
        qr = Image.fromarray(qr_matrix(p.text)).convert("1")
        pdf.image(qr, x=x + 2, y=y + 2, w=self.QR, h=self.QR)
        pdf.set_font("mono", size=8.5)
        groups = p.number.split("-")
        for i, part in enumerate(("-".join(groups[:4]), "-".join(groups[4:]))):
            pdf.text(x + 3, y + self.QR + 5.5 + i * 4, part)
        tx = x + self.text_x
        day = p.expires.astimezone(UTC).strftime("%Y-%m-%d")
        # Khmer through cell(): fpdf2 shapes text there (text() would place unshaped glyphs).
        pdf.set_font("khmer", size=10)
        pdf.set_xy(tx, y + 2)
        pdf.cell(h=6, text=TITLE[0])
        pdf.set_font("sans", size=9)
        pdf.text(tx + self.title_w + 2, y + 6.5, TITLE[1])
        pdf.set_font("khmer", size=7.5)
        pdf.set_xy(tx, y + 9)
        pdf.cell(h=4.5, text=f"{VALID[0]} {day}")
        pdf.set_font("sans", size=7)
        pdf.text(tx, y + 16.5, f"{VALID[1]} {day}")
        ty = y + 19
        for font, size, line in self.lines:
            pdf.set_font(font, size=size)
            h = size * 0.5
            if font == "khmer":
                pdf.set_xy(tx, ty)
                pdf.cell(h=h, text=line)
            else:
                pdf.text(tx, ty + h * 0.75, line)
            ty += h + 0.4
        if self.footer:
            pdf.set_font("sans", size=FOOTER_PT)
            pdf.set_xy(x + 3, y + self.H - 4.2)
            pdf.cell(h=3, text=self.footer)  # shaped (a Khmer name falls back to the Khmer font)

    def save(self, path: Path) -> int:
        self.pdf.output(str(path))
        return self.pdf.pages_count


def save_image(p: IssuedPass, folder: Path, kind: str) -> Path:
    """One pass for a phone: the QR code (8 pixels a module) with its number under it (PNG),
    or the QR code alone as SVG."""
    import zxingcpp

    if kind == "svg":
        code = zxingcpp.create_barcode(p.text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
        path = folder / f"{p.number}.svg"
        path.write_text(code.to_svg(add_quiet_zones=True))
        return path
    from PIL import Image, ImageDraw, ImageFont

    qr = Image.fromarray(qr_matrix(p.text)).convert("L")
    scale = 8
    qr = qr.resize((qr.width * scale, qr.height * scale), Image.Resampling.NEAREST)
    img = Image.new("L", (qr.width, qr.height + 70), 255)
    img.paste(qr, (0, 0))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(MONO_FONT), 22)
    groups = p.number.split("-")
    for i, part in enumerate(("-".join(groups[:4]), "-".join(groups[4:]))):
        w = draw.textlength(part, font=font)
        draw.text(((img.width - w) / 2, qr.height - 12 + i * 30), part, fill=0, font=font)
    path = folder / f"{p.number}.png"
    img.save(path, optimize=False, compress_level=6)
    return path


def _progress(out: Callable[[str], None] | None, every_s: float = 2.0):
    start, last = time.monotonic(), [time.monotonic()]

    def tick(done: int, total: int) -> None:
        now = time.monotonic()
        if out is None or (now - last[0] < every_s and done < total):
            return
        if done == total and now - start < every_s:
            return  # a short run says nothing until its summary
        last[0] = now
        rate = done / max(now - start, 1e-9)
        left = (total - done) / rate if rate else 0
        out(
            f"issue-passes: {done:,} / {total:,} passes ({100 * done // total}%), "
            f"{rate:,.0f} a second, about {left:,.0f} s left"
        )

    return tick


def issue_batch(
    requests: list[CardRequest],
    out: Path,
    *,
    key: Ed25519PrivateKey,
    issuer: str,
    issued: datetime,
    images: str = "png",
    check_url: str = "",
    authority: str = "",
    contact: str = "",
    progress: Callable[[str], None] | None = None,
) -> BatchResult:
    """Sign every request, lay out the cards, save the images and the manifest, in a folder
    beside ``out`` that becomes ``out`` only when all is written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BatchError(
            f"--out {out}: already exists and is not an empty folder (a batch is never mixed with another)"
        )
    parent = out.absolute().parent
    if not parent.is_dir():
        raise BatchError(f"--out {out}: the folder {parent} does not exist")
    card = {"check_url": check_url, "authority": authority, "contact": contact}
    sheet: CardSheet | None = CardSheet(**card)  # fonts and the foot line checked before anything is signed
    volumes = len(requests) > CARDS_PER_FILE

    def volume_name(index: int) -> str:
        return f"cards-{index + 1:04d}.pdf" if volumes else CARDS

    pages = 0
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    try:
        os.chmod(work, 0o700)  # the manifest links references to pass ids: the office's only
        if images != "none":
            (work / IMAGES).mkdir()
        tick = _progress(progress)
        sign_s = cards_s = images_s = 0.0
        fd = os.open(work / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as mf:
            writer = csv.writer(mf)
            writer.writerow(MANIFEST_COLUMNS)
            passes = iter(sign_passes(requests, key=key, issuer=issuer, issued=issued))
            for done in range(1, len(requests) + 1):
                t0 = time.perf_counter()
                p = next(passes)
                t1 = time.perf_counter()
                volume, at = divmod(done - 1, CARDS_PER_FILE)
                if sheet is None:
                    sheet = CardSheet(**card)
                sheet.add(p)
                if at + 1 == CARDS_PER_FILE or done == len(requests):
                    pages += sheet.save(work / volume_name(volume))  # and its memory is freed
                    sheet = None
                t2 = time.perf_counter()
                if images != "none":
                    save_image(p, work / IMAGES, images)
                t3 = time.perf_counter()
                sign_s, cards_s, images_s = sign_s + t1 - t0, cards_s + t2 - t1, images_s + t3 - t2
                writer.writerow(
                    (
                        p.seq,
                        p.number,
                        p.pass_id.hex(),
                        issuer,
                        _utc(p.issued),
                        _utc(p.expires),
                        p.risk,
                        csv_cell(p.reference),  # the office's own text: never a live formula
                        f"{volume_name(volume)} page {at // 10 + 1} card {at % 10 + 1}",
                    )
                )
                tick(done, len(requests))
            mf.flush()
            os.fsync(mf.fileno())
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = tuple(volume_name(i) for i in range((len(requests) - 1) // CARDS_PER_FILE + 1))
    return BatchResult(out, len(requests), pages, files, sign_s, cards_s, images_s)
