"""The screen at the door, under a real SDL video driver (dummy: no display here), with the
real pygame-ce, its HarfBuzz-enabled SDL_ttf and a real Khmer font (Debian's
fonts-khmeros, which scripts/setup --test installs)."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
pygame = pytest.importorskip("pygame", reason="pygame-ce is a dependency: scripts/setup installs it")

from gpiozero.pins.mock import MockFactory  # noqa: E402

from kiosk.adapters.screen import FACES, FAULT, IDLE, Renderer, Screen, ScreenError, render_to_file  # noqa: E402
from kiosk.adapters.signal import Signal  # noqa: E402
from kiosk.config import SignalSection  # noqa: E402
from kiosk.core.reasons import Outcome  # noqa: E402
from testkit import ROOT  # noqa: E402

SIZE = (800, 480)


def wait_for(screen: Screen, key, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = screen.last_frame()
        if last and last[0] == key:
            return np.frombuffer(last[1], np.uint8).reshape(last[2][1], last[2][0], 3)
        time.sleep(0.01)
    raise AssertionError(
        f"the screen did not show {key} (last: {screen.last_frame() and screen.last_frame()[0]})"
    )


@pytest.fixture
def screen():
    s = Screen(driver="dummy", size=SIZE, show_s=0.4)
    yield s
    s.close()


def symbol_mask(img: np.ndarray) -> np.ndarray:
    """White pixels inside the symbol's circle (what a visitor who sees no colour sees)."""
    h, w = img.shape[:2]
    cx, cy, r = w // 2, int(h * 0.36), int(min(w, h) * 0.24) * 0.8
    yy, xx = np.mgrid[:h, :w]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    return (img.min(axis=2) > 200) & inside


def test_each_outcome_has_its_own_colour_symbol_and_text_and_the_idle_screen_returns(screen):
    drawn = {}
    for outcome in (Outcome.ADMIT, Outcome.EXPOSED, Outcome.DENY, Outcome.INVALID):
        screen.show(outcome, level=1)
        img = wait_for(screen, ("exposed", 1) if outcome is Outcome.EXPOSED else outcome)
        drawn[outcome] = img
        assert tuple(img[5, 5]) == FACES[outcome].background  # the colour
        assert symbol_mask(img).sum() > 2000  # a big white symbol
        text_rows = img[int(SIZE[1] * 0.66) :, :, :].min(axis=2) > 200
        assert text_rows.sum() > 3000  # the two lines of text
        wait_for(screen, IDLE, timeout=2.0)  # back after show_s
    # Without colour: the symbols differ in shape, pairwise (intersection over union).
    masks = {k: symbol_mask(v) for k, v in drawn.items()}
    keys = list(masks)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.5, (a, b, iou)


def test_the_exposed_screen_says_the_text_of_its_level():
    from kiosk.config import ScreenSection

    texts = ScreenSection().exposed_texts()
    s = Screen(driver="dummy", size=SIZE, show_s=5.0, exposed=texts)
    try:
        assert s.face(("exposed", 2)).english == "Enter — you were probably exposed: get tested today"
        assert s.face(("exposed", 1)).khmer == texts[1][0]
        rows = {}
        for level in (1, 2):
            s.show(Outcome.EXPOSED, level=level)
            img = wait_for(s, ("exposed", level))
            rows[level] = img[int(SIZE[1] * 0.66) :, :, :].min(axis=2) > 200
        assert (rows[1] != rows[2]).sum() > 1000  # another text, drawn
    finally:
        s.close()


def test_a_fault_stays_until_cleared(screen):
    screen.fault()
    wait_for(screen, FAULT)
    time.sleep(0.6)  # longer than show_s: still the fault
    assert screen.last_frame()[0] == FAULT
    screen.clear_fault()
    wait_for(screen, IDLE)


def test_khmer_is_shaped_subscripts_below_not_beside():
    """HarfBuzz shaping: a consonant with a subscript (coeng, U+17D2) takes about one
    consonant's width; unshaped it would be two glyphs and a coeng side by side."""
    r = Renderer(SIZE)
    one = r.text_width("ញ")
    assert r.text_width("ញ្ញ") < 1.5 * one
    word = FACES[Outcome.ADMIT].khmer
    assert r.text_width(word) < 0.8 * sum(r.text_width(c) for c in word)


def test_the_signal_drives_the_screen_with_the_lamps(screen):
    sig = Signal(SignalSection().scaled(0.1), pin_factory=MockFactory(), screen=screen)
    sig.show(Outcome.DENY)
    wait_for(screen, Outcome.DENY)
    sig.fault()
    wait_for(screen, FAULT)
    sig.clear_fault()
    wait_for(screen, IDLE)
    sig.screen = None  # the fixture closes the screen
    sig.close()


def test_no_khmer_font_is_one_clear_error(tmp_path):
    with pytest.raises(ScreenError, match=r"no Khmer font at .*missing\.ttf \(apt install fonts-khmeros"):
        Screen(driver="dummy", size=SIZE, font=str(tmp_path / "missing.ttf"))


def test_an_unusable_video_driver_is_one_clear_error():
    with pytest.raises(ScreenError, match=r"cannot open the screen \(SDL video driver nosuchdriver\)"):
        Screen(driver="nosuchdriver", size=SIZE)


def test_the_door_pages_screenshots_are_what_the_screen_draws(tmp_path):
    door = (ROOT / "docs" / "door.md").read_text()
    shots = ["docs/" + s for s in re.findall(r"\]\((screen-[a-z]+\.png)\)", door)]
    assert len(shots) == 5, shots
    for shot in shots:
        key = {
            "admit": Outcome.ADMIT,
            "exposed": Outcome.EXPOSED,
            "deny": Outcome.DENY,
            "invalid": Outcome.INVALID,
            "idle": IDLE,
        }[shot.split("-")[1][:-4]]
        render_to_file(key, tmp_path / "now.png", size=SIZE)
        now = pygame.surfarray.array3d(pygame.image.load(str(tmp_path / "now.png"))).astype(int)
        kept = pygame.surfarray.array3d(pygame.image.load(str(ROOT / shot))).astype(int)
        assert now.shape == kept.shape and np.abs(now - kept).mean() < 2.0, shot


SYMBOLS = ("check", "exposed", "cross", "bang", "qr")


@pytest.mark.parametrize("size", [SIZE, (480, 320)])
def test_symbols_are_anti_aliased_and_each_mark_stays_clear_of_its_frame(size):
    """Drawn at four times the size and smoothed down: the edges have the in-between shades a
    jagged drawing lacks; and the mark (check, cross, bang, the idle QR sign) never touches its
    ring or triangle, at the usual display and a smaller one."""
    r = Renderer(size)
    for symbol in SYMBOLS:
        frame, mark = (pygame.surfarray.array_alpha(layer) for layer in r.symbol_layers(symbol))
        for name, alpha in (("frame", frame), ("mark", mark)):
            edge = ((alpha > 20) & (alpha < 235)).sum()
            assert edge > 0.15 * (alpha >= 235).sum() ** 0.5 * 4, f"{symbol} {name}: no smooth edge"
        touching = ((frame > 8) & (mark > 8)).sum()
        assert touching == 0, f"{symbol}: the mark runs into its frame ({touching} pixels)"


def _gaps(img: np.ndarray) -> list[int]:
    """The runs of blank columns between the ink of one rendered line."""
    ink = img.max(axis=0) > 60
    cols = np.flatnonzero(ink)
    gaps, run = [], 0
    for x in range(cols[0], cols[-1] + 1):
        if ink[x]:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
    return gaps


@pytest.mark.parametrize("size", [SIZE, (480, 320)])
def test_english_is_set_with_kerning_no_gap_inside_a_word_looks_like_a_space(size):
    """ "pl ease e nter" was a default font's spacing: in every English line, the blank runs
    between the letters of a word stay well under the space between words."""
    r = Renderer(size)
    for key, face in FACES.items():
        for line in face.english.split("—")[0].strip().split(":")[0].split(","):
            words = line.split()
            if len(words) < 2:
                continue
            img = pygame.surfarray.array2d(r.latin.render(line, True, (255, 255, 255), (0, 0, 0))).T & 0xFF
            gaps = sorted(_gaps(img), reverse=True)
            between, inside = gaps[: len(words) - 1], gaps[len(words) - 1 :]
            assert inside and max(inside) * 2 <= min(between), (key, line, gaps)
    # A real outline font with HarfBuzz shaping and kerning (the default bitmap-hinted font
    # spaced "pl ease e nter"): DejaVu Sans Bold, as on the pass cards.
    assert (
        r.latin.name == "DejaVu Sans" and r.latin.size("To")[0] < r.latin.size("T")[0] + r.latin.size("o")[0]
    )


@pytest.mark.parametrize("size", [SIZE, (480, 320), (320, 240)])
def test_every_face_fits_the_display_in_khmer_and_english(size):
    """On a 7" display and on smaller ones: every line of text inside the screen, under the
    symbol, none cut off at an edge."""
    r = Renderer(size)
    w, h = size
    cx, cy, rad = r.geometry()
    for key, face in FACES.items():
        block = r.text_block(face, top=cy + int(rad * 1.2) + h // 60)
        assert len(block) >= 2, key
        for img, y in block:
            assert img.get_width() <= w and y + img.get_height() <= h + 2, (key, size, img.get_size(), y)
        surface = pygame.Surface(size)
        r.draw(surface, face)
        assert tuple(surface.get_at((1, h - 2)))[:3] == face.background  # nothing drawn over the edge
