"""Passes in bulk and pass numbers: `kiosk-central issue-passes` and `kiosk-central pass show`,
run as the issuing office would (real processes), the card sheet rendered by Debian's
pdftoppm and read back through the kiosk's own decoder."""

from __future__ import annotations

import csv
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from kiosk.adapters.decoders import make_decoder
from kiosk.core.keys import ISSUER_PUB, trusted_issuers
from kiosk.core.passes import verify_pass
from kiosk.core.passnumbers import PassNumberError, parse_pass_number, pass_number
from sync.central.passcards import CardSheet, _progress
from testkit import run_bin

needs_poppler = pytest.mark.skipif(
    not shutil.which("pdftoppm"),
    reason="pdftoppm not installed (apt install poppler-utils; scripts/setup --test)",
)


central = functools.partial(run_bin, "kiosk-central", timeout=300)


def manifest_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


# -- pass numbers --------------------------------------------------------------------------------
@given(st.binary(min_size=16, max_size=16))
def test_a_pass_number_reads_back_to_its_id_however_it_is_typed(pass_id):
    number = pass_number(pass_id)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){6}[0-9A-HJKMNP-TV-Z]{4}", number)
    assert parse_pass_number(number) == pass_id
    sloppy = number.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse_pass_number(sloppy) == pass_id


@given(st.binary(min_size=16, max_size=16), st.integers(0, 27), st.integers(1, 31))
def test_one_mistyped_symbol_is_refused_by_the_check(pass_id, where, shift):
    symbols = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    plain = pass_number(pass_id).replace("-", "")
    wrong = plain[:where] + symbols[(symbols.index(plain[where]) + shift) % 32] + plain[where + 1 :]
    with pytest.raises(PassNumberError):
        parse_pass_number(wrong)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 26))
def test_two_neighbours_swapped_are_refused(pass_id, where):
    plain = pass_number(pass_id).replace("-", "")
    if plain[where] == plain[where + 1]:
        return
    swapped = plain[:where] + plain[where + 1] + plain[where] + plain[where + 2 :]
    with pytest.raises(PassNumberError, match="mistyped or two are swapped|too large"):
        parse_pass_number(swapped)


def test_a_number_of_the_wrong_length_or_with_a_foreign_symbol_says_so():
    with pytest.raises(PassNumberError, match="28 symbols"):
        parse_pass_number("1MST-2BE8")
    with pytest.raises(PassNumberError, match="no 'U'"):
        parse_pass_number("UMST-2BE8-9VYY-G5W4-ENEA-D8VE-2BK7")


# -- issue-passes ----------------------------------------------------------------------------------
@needs_poppler
def test_every_card_on_the_sheet_decodes_to_a_pass_that_verifies_with_its_printed_number(tmp_path, authority):
    refs = tmp_path / "people.csv"
    refs.write_text(
        "reference,expires,risk\n" + "".join(f"R-{i:03d},,\n" for i in range(11)) + "R-X,2027-03-31,1\n"
    )
    out = tmp_path / "batch"
    p = central(
        "issue-passes",
        "--keys",
        authority,
        "--csv",
        refs,
        "--out",
        out,
        "--check-url",
        "https://h.test/check",
    )
    assert "12 passes issued" in p.stdout and "never on the central server" in p.stdout
    assert sorted(os.listdir(out)) == ["cards.pdf", "images", "manifest.csv"]
    assert (out / "manifest.csv").stat().st_mode & 0o077 == 0  # the office's only
    rows = manifest_rows(out)
    assert [r["reference"] for r in rows] == [f"R-{i:03d}" for i in range(11)] + ["R-X"]
    assert rows[-1]["expires"] == "2027-03-31T23:59:59Z" and rows[-1]["risk"] == "1"
    by_id = {r["pass_id"]: r for r in rows}

    trusted = trusted_issuers([authority / ISSUER_PUB])
    decoder = make_decoder("zxing")
    seen = set()
    for page in (1, 2):
        subprocess.run(
            [
                "pdftoppm",
                "-r",
                "150",
                "-gray",
                "-f",
                str(page),
                "-l",
                str(page),
                "-png",
                out / "cards.pdf",
                tmp_path / "p",
            ],
            check=True,
        )
        png = next(tmp_path.glob(f"p-*{page}.png"))
        grey = np.asarray(Image.open(png).convert("L"))
        printed = subprocess.run(
            ["pdftotext", "-f", str(page), "-l", str(page), "-layout", out / "cards.pdf", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        h, w = grey.shape
        cards = 10 if page == 1 else 2
        for slot in range(cards):  # each card cut out as a visitor holds it
            col, row = slot % 2, slot // 2
            x0, y0 = int(w * (15 + col * 90) / 210), int(h * (13.5 + row * 54) / 297)
            card = grey[y0 : y0 + int(h * 54 / 297), x0 : x0 + int(w * 90 / 210)]
            texts = decoder.decode(np.ascontiguousarray(card))
            assert len(texts) == 1, (page, slot, texts)
            claims = verify_pass(texts[0], trusted)
            number = pass_number(claims.pass_id)
            assert claims.pass_id.hex() in by_id and by_id[claims.pass_id.hex()]["number"] == number
            groups = number.split("-")
            assert "-".join(groups[:4]) in printed and "-".join(groups[4:]) in printed  # under the QR
            seen.add(claims.pass_id)
        assert "ប័ណ្ណចូល" in printed and "Valid until" in printed and "https://h.test/check" in printed
        png.unlink()
    assert len(seen) == 12
    # the phone's image of each pass: the same pass, its number under it
    phone = Image.open(out / "images" / f"{rows[0]['number']}.png").convert("L")
    texts = decoder.decode(np.asarray(phone))
    assert [verify_pass(t, trusted).pass_id.hex() for t in texts] == [rows[0]["pass_id"]]


def test_khmer_on_the_cards_is_shaped():
    """HarfBuzz shaping (fpdf2 + uharfbuzz): a consonant with its subscript is about one
    consonant wide; unshaped it would be two glyphs and a coeng side by side."""
    sheet = CardSheet()
    pdf = sheet.pdf
    pdf.set_font("khmer", size=10)
    assert pdf.text_shaping and pdf.get_string_width("ណ្ណ") < 1.3 * pdf.get_string_width("ណ")


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "name,expires\nA,2027-01-01\n",
            r"no 'reference' column \(the header row, row 1, has: 'name', 'expires'\)",
        ),
        ("reference\nA\nB\nA\n", r"row 4, column reference: 'A' is already on row 2"),
        (
            "reference,expires\nA,2027-01-01\nB,2027-02-30\n",
            r"row 3, column expires: '2027-02-30' is not a date",
        ),
        ("reference,expires\nA,2020-01-01\n", r"row 2, column expires: .* is not after the issue time"),
        ("reference,expires\nA,2030-01-01\n", r"row 2, column expires: .* more than 366 days"),
        ("reference,risk\nA,7\n", r"row 2, column risk: '7' is not a risk level 0..3"),
        ("reference,risk\nA,0\n\n,1\n", r"row 4, column reference: empty"),
        ("reference\n", r"no rows below the header"),
    ],
)
def test_a_bad_csv_names_row_and_column_and_writes_nothing(tmp_path, authority, content, message):
    refs = tmp_path / "people.csv"
    refs.write_text(content)
    p = central("issue-passes", "--keys", authority, "--csv", refs, "--out", tmp_path / "batch", check=False)
    assert p.returncode == 2, p.stderr
    assert re.search(message, p.stderr), p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert os.listdir(tmp_path) == ["people.csv"]  # nothing written, no half batch beside it


def test_the_reference_column_may_have_the_sheets_own_name(tmp_path, authority):
    refs = tmp_path / "people.csv"
    refs.write_text("Card No,expires\nC-1,\nC-2,\n")
    central(
        "issue-passes",
        "--keys",
        authority,
        "--csv",
        refs,
        "--out",
        tmp_path / "b",
        "--images",
        "none",
        "--reference-column",
        "Card No",
    )
    assert [r["reference"] for r in manifest_rows(tmp_path / "b")] == ["C-1", "C-2"]
    assert sorted(os.listdir(tmp_path / "b")) == ["cards.pdf", "manifest.csv"]


def test_a_used_out_folder_or_a_year_too_long_is_refused(tmp_path, authority):
    used = tmp_path / "used"
    used.mkdir()
    (used / "cards.pdf").write_text("an earlier batch")
    p = central("issue-passes", "--keys", authority, "--count", "2", "--out", used, check=False)
    assert p.returncode == 2 and "not an empty folder" in p.stderr
    p = central(
        "issue-passes",
        "--keys",
        authority,
        "--count",
        "2",
        "--out",
        tmp_path / "b",
        "--expires",
        "400",
        check=False,
    )
    assert p.returncode == 2 and "1 to 366 days" in p.stderr
    assert sorted(os.listdir(tmp_path)) == ["used"]


def test_cards_carry_the_authoritys_name_and_contact_as_the_privacy_notice_promises(tmp_path, authority):
    """--authority and --contact along each card's foot, as real (searchable) text, a Khmer
    name shaped; without them a warning says what the cards lack; too long is refused."""
    out = tmp_path / "b"
    name, contact = "ក្រសួងសុខាភិបាល Ministry of Health", "115 · privacy@health.example"
    p = central("issue-passes", "--keys", authority, "--count", "3", "--out", out, "--images", "none",
                "--authority", name, "--contact", contact)  # fmt: skip
    assert "warning" not in p.stderr
    text = subprocess.run(["pdftotext", out / "cards.pdf", "-"], capture_output=True, text=True).stdout
    assert text.count("Ministry of Health") == 3 and text.count("privacy@health.example") == 3
    assert "សុខាភិបាល" in text  # (pdftotext splits a shaped cluster now and then)
    bare = central(
        "issue-passes", "--keys", authority, "--count", "1", "--out", tmp_path / "c", "--images", "none"
    )
    assert "warning: the cards carry no authority name and no contact" in bare.stderr
    long = central("issue-passes", "--keys", authority, "--count", "1", "--out", tmp_path / "d",
                   "--authority", "A" * 200, "--contact", contact, check=False)  # fmt: skip
    assert long.returncode == 2 and "longer than a card's line" in long.stderr
    assert not (tmp_path / "d").exists()


def test_progress_is_shown_on_long_runs():
    lines: list[str] = []
    tick = _progress(lines.append, every_s=0.0)
    for done in range(1, 4):
        tick(done, 3)
    assert lines and lines[-1].startswith("issue-passes: 3 / 3 passes (100%)")


# -- pass show -------------------------------------------------------------------------------------
def test_pass_show_reads_a_pass_from_its_text_its_image_or_its_number(tmp_path, authority):
    out = tmp_path / "batch"
    central("issue-passes", "--keys", authority, "--count", "3", "--out", out, "--expires", "30")
    row = manifest_rows(out)[1]
    image = out / "images" / f"{row['number']}.png"
    by_image = central("pass", "show", "--image", image, "--keys", authority).stdout
    assert f"number:    {row['number']}\n" in by_image and f"pass id:   {row['pass_id']}\n" in by_image
    assert f"expires:   {row['expires']}\n" in by_image and "signature: valid" in by_image
    assert "issuer:    health-committee" in by_image and "risk:      0" in by_image
    text = make_decoder("zxing").decode(np.asarray(Image.open(image).convert("L")))[0]
    assert central("pass", "show", text).stdout.replace("not checked (give --keys DIR to check it)", "") == (
        by_image.split("signature:")[0] + "signature: \n"
    )
    typed = row["number"].lower().replace("-", " ")
    by_number = central("pass", "show", "--number", typed, "--manifest", out / "manifest.csv").stdout
    assert f"pass id:   {row['pass_id']}\n" in by_number and f"expires:   {row['expires']}\n" in by_number
    bare = central("pass", "show", "--number", row["number"]).stdout
    assert f"pass id:   {row['pass_id']}" in bare and "give --manifest FILE" in bare
    # the id is what trace and open-records take
    assert re.fullmatch(r"[0-9a-f]{32}", row["pass_id"])

    plain = row["number"].replace("-", "")
    wrong = plain[:5] + ("A" if plain[5] != "A" else "B") + plain[6:]
    p = central("pass", "show", "--number", wrong, check=False)
    assert p.returncode == 2 and "check symbol does not match" in p.stderr and not p.stdout


def test_pass_show_refuses_a_forged_pass_and_an_unreadable_image(tmp_path, authority, make_pass):
    import segno

    from workbench.world import seeded_ed25519

    forged = make_pass(0, key=seeded_ed25519("forger"))  # not this authority's issuer key
    p = central("pass", "show", forged, "--keys", authority, check=False)
    assert p.returncode == 1 and "does not verify (unknown_key)" in p.stderr
    junk = tmp_path / "photo.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    p = central("pass", "show", "--image", junk, check=False)
    assert p.returncode == 2 and "not an image this can read" in p.stderr and "Traceback" not in p.stderr
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    p = central("pass", "show", "--image", blank, check=False)
    assert p.returncode == 2 and "no QR code found" in p.stderr
    other = tmp_path / "other.png"
    segno.make_qr("https://example.org/").save(other, scale=6)
    p = central("pass", "show", "--image", other, check=False)
    assert p.returncode == 2 and "not a pass" in p.stderr
    p = central("pass", "show", "--image", tmp_path / "missing.png", check=False)
    assert p.returncode == 2 and "no such file" in p.stderr and "[Errno" not in p.stderr


@needs_poppler
def test_a_large_batch_goes_into_volumes_each_card_findable_from_the_manifest(
    tmp_path, authority, monkeypatch
):
    """Past CARDS_PER_FILE cards (10,000: a PDF is held in memory until written) the cards go
    into volumes; the manifest says where each card is."""
    from datetime import UTC, datetime

    from kiosk.core.keys import ISSUER_KEY, load_ed25519_private
    from sync.central import passcards

    monkeypatch.setattr(passcards, "CARDS_PER_FILE", 12)
    issued = datetime.now(UTC).replace(microsecond=0)
    requests = passcards.counted_requests(30, issued=issued, days=30, risk=0)
    r = passcards.issue_batch(
        requests,
        tmp_path / "b",
        key=load_ed25519_private(authority / ISSUER_KEY),
        issuer="x",
        issued=issued,
        images="none",
    )
    assert r.files == ("cards-0001.pdf", "cards-0002.pdf", "cards-0003.pdf") and r.pages == 2 + 2 + 1
    assert sorted(os.listdir(tmp_path / "b")) == [*r.files, "manifest.csv"]
    rows = manifest_rows(tmp_path / "b")
    assert rows[0]["card"] == "cards-0001.pdf page 1 card 1"
    assert rows[11]["card"] == "cards-0001.pdf page 2 card 2"
    assert rows[29]["card"] == "cards-0003.pdf page 1 card 6"
    info = subprocess.run(
        ["pdfinfo", tmp_path / "b" / "cards-0002.pdf"], capture_output=True, text=True
    ).stdout
    assert re.search(r"Pages:\s+2\b", info)
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", tmp_path / "b" / "cards-0003.pdf", "-"],
        capture_output=True,
        text=True,
    ).stdout
    assert rows[29]["number"].split("-")[0] in text
