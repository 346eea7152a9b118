"""An optional screen at the door (HDMI or DSI, through pygame-ce on SDL's KMS/DRM driver):
a large symbol (✓ enter, ✓ in a triangle enter and get tested, ✗ refused, ! see staff) that
differs in shape, not only in colour,
and a short text in Khmer and English. Khmer is shaped by SDL_ttf's HarfBuzz (the script
set to Khmr), so subscript consonants and vowel signs sit where they belong.

pygame is imported only when a screen is configured. One thread owns the display (SDL
wants the thread that made the window to draw in it): the scan loop hands it an outcome
and goes on at once; after ``show_s`` the screen returns to its idle text. Like the lamps,
nothing here logs what was shown.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.core.faults import EXIT_GPIO, Fault
from kiosk.core.reasons import Outcome

log = logging.getLogger(__name__)

IDLE, FAULT = "idle", "fault"


@dataclass(frozen=True)
class Face:
    symbol: str  # "check", "exposed", "cross", "bang", "qr"
    background: tuple[int, int, int]
    khmer: str
    english: str


# Short, plain texts (reviewed wording belongs to the venue's authority: change them here).
FACES = {
    Outcome.ADMIT: Face("check", (0, 110, 50), "សូមអញ្ជើញចូល", "Welcome, please enter"),
    Outcome.EXPOSED: Face(
        "exposed",
        (0, 80, 110),
        "សូមអញ្ជើញចូល — អ្នកអាចបានប៉ះពាល់ជំងឺ៖ សូមទៅធ្វើតេស្ត",
        "Enter — you may have been exposed: get tested",
    ),
    Outcome.DENY: Face("cross", (170, 20, 20), "មិនអនុញ្ញាតឱ្យចូលទេ", "Entry refused"),
    Outcome.INVALID: Face("bang", (190, 120, 0), "សូមទាក់ទងបុគ្គលិក", "Please see staff"),
    IDLE: Face("qr", (20, 20, 30), "សូមស្កេនកូដ QR របស់អ្នក", "Please scan your pass"),
    FAULT: Face("bang", (190, 120, 0), "ម៉ាស៊ីនមិនដំណើរការ សូមទាក់ទងបុគ្គលិក", "Out of order: please see staff"),
}
WHITE = (255, 255, 255)


class ScreenError(Fault):
    """A configured screen cannot be driven: like the lamps, a signal device (exit 3)."""

    label = "screen error"
    exit_code = EXIT_GPIO


def khmer_font_path(configured: str = "") -> Path:
    """The configured font, or the first Khmer font Debian's packages put in place."""
    candidates = (
        [configured]
        if configured
        else [
            "/usr/share/fonts/truetype/khmeros/KhmerOS.ttf",  # fonts-khmeros
            "/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf",  # fonts-noto-core
            "/usr/share/fonts/truetype/noto/NotoSerifKhmer-Regular.ttf",
        ]
    )
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise ScreenError(
        f"no Khmer font at {configured or candidates[0]} (apt install fonts-khmeros, or set [screen] font)"
    )


LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"  # fonts-dejavu-core (scripts/setup)
SUPERSAMPLE = 4  # symbols are drawn at 4x and smoothed down: anti-aliased edges, clean joins


class Renderer:
    """Draws a face on a pygame surface. Pure drawing, no display: the thread below and the
    tests (which save what it draws) share it.

    The symbol is two layers, its frame (a ring, or the exposed face's triangle) and its mark
    (check, cross, bang, the idle QR sign) drawn apart, each at four times the size and
    smoothed down, so edges are anti-aliased and the mark is laid out to stay clear of its
    frame (the tests check the two never touch). Text is set in real fonts with HarfBuzz
    shaping and kerning (Khmer OS for Khmer, DejaVu Sans Bold for English), wrapped at spaces
    and made smaller until it fits the display under the symbol, 800x480 or smaller."""

    def __init__(self, size: tuple[int, int], *, font: str = ""):
        import pygame

        self.pg = pygame
        pygame.font.init()
        self.size = w, h = size
        self._khmer_path = str(khmer_font_path(font))
        latin = Path(LATIN_FONT)
        self._latin_path = str(latin) if latin.is_file() else None  # pygame's own font otherwise
        self._fonts: dict[tuple[str, int], object] = {}
        self.khmer = self._font("khmer", max(14, h // 12))
        self.latin = self._font("latin", max(12, h // 15))

    def _font(self, which: str, px: int):
        key = (which, px)
        if key not in self._fonts:
            f = self.pg.font.Font(self._khmer_path if which == "khmer" else self._latin_path, px)
            f.set_script("Khmr" if which == "khmer" else "Latn")  # HarfBuzz shaping, kerning
            self._fonts[key] = f
        return self._fonts[key]

    # -- the symbol ------------------------------------------------------------------------------
    def geometry(self) -> tuple[int, int, int]:
        """(centre x, centre y, radius) of the symbol on the display."""
        w, h = self.size
        return w // 2, int(h * 0.36), int(min(w, h) * 0.24)

    def symbol_layers(self, symbol: str):
        """(frame, mark): two transparent surfaces of the symbol's box (2.4 radii square), at
        the display's resolution, anti-aliased."""
        pg = self.pg
        _, _, r = self.geometry()
        box = int(r * 2.4)
        k = SUPERSAMPLE
        big = box * k
        c = big / 2
        R = r * k
        ring = max(3.0, r / 10) * k  # the frame's stroke
        stroke = max(6.0, r / 5) * k  # the mark's stroke
        frame = pg.Surface((big, big), pg.SRCALPHA)
        mark = pg.Surface((big, big), pg.SRCALPHA)

        def line(surface, points, width):  # a thick polyline with round caps and joins
            import math

            pts = [(c + x * R, c + y * R) for x, y in points]
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                n = math.hypot(x1 - x0, y1 - y0) or 1.0
                ox, oy = -(y1 - y0) / n * width / 2, (x1 - x0) / n * width / 2  # across the stroke
                pg.draw.polygon(
                    surface,
                    WHITE,
                    [(x0 + ox, y0 + oy), (x1 + ox, y1 + oy), (x1 - ox, y1 - oy), (x0 - ox, y0 - oy)],
                )
            for x, y in pts:
                pg.draw.circle(surface, WHITE, (x, y), width / 2)

        if symbol == "exposed":  # an equilateral triangle around the check: "enter, take care"
            import math

            rt, dy = 1.2, 0.3  # circumradius; the centroid sits lower so the triangle is centred
            corners = [
                (rt * math.cos(math.radians(a)), dy + rt * math.sin(math.radians(a))) for a in (-90, 30, 150)
            ]
            line(frame, [*corners, corners[0]], ring)
            inner = rt / 2 - ring / R / 2  # the incircle, inside the frame's stroke
            width = stroke * 0.8
            reach = inner - width / R / 2 - 0.06  # the check stays clear of the frame
            check = [(-0.5, 0.02), (-0.12, 0.42), (0.55, -0.4)]
            far = max(math.hypot(x, y) for x, y in check)
            line(mark, [(x * reach / far, dy + y * reach / far) for x, y in check], width)
        else:
            pg.draw.circle(frame, WHITE, (c, c), R, int(ring))
        if symbol == "check":
            line(mark, [(-0.5, 0.02), (-0.12, 0.42), (0.55, -0.4)], stroke)
        elif symbol == "cross":
            d = 0.45
            line(mark, [(-d, -d), (d, d)], stroke)
            line(mark, [(-d, d), (d, -d)], stroke)
        elif symbol == "bang":
            line(mark, [(0, -0.55), (0, 0.15)], stroke)
            pg.draw.circle(mark, WHITE, (c, c + 0.45 * R), stroke * 0.6)
        elif symbol == "qr":  # three finder patterns and a few modules, inside the ring
            q = 0.44 * R  # a finder pattern's side
            for fx, fy in ((-0.3, -0.3), (0.3, -0.3), (-0.3, 0.3)):
                x, y = c + fx * R - q / 2, c + fy * R - q / 2
                pg.draw.rect(mark, WHITE, pg.Rect(round(x), round(y), round(q), round(q)), round(q / 7))
                pg.draw.rect(
                    mark,
                    WHITE,
                    pg.Rect(round(x + 2 * q / 7), round(y + 2 * q / 7), round(3 * q / 7), round(3 * q / 7)),
                )
            m = q / 4
            for mx, my in ((0.12, 0.12), (0.32, 0.12), (0.12, 0.32), (0.42, 0.32), (0.27, 0.42)):
                pg.draw.rect(mark, WHITE, pg.Rect(round(c + mx * R), round(c + my * R), round(m), round(m)))
        return pg.transform.smoothscale(frame, (box, box)), pg.transform.smoothscale(mark, (box, box))

    # -- the text ----------------------------------------------------------------------------
    def _wrap(self, font, text: str, width: int) -> list[str]:
        """The text in lines no wider than ``width``, broken at spaces (at most two lines)."""
        if font.size(text)[0] <= width or " " not in text:
            return [text]
        words = text.split(" ")
        best = [text]
        for i in range(1, len(words)):  # the most even break at a space
            a, b = " ".join(words[:i]), " ".join(words[i:])
            if max(font.size(a)[0], font.size(b)[0]) < max(font.size(x)[0] for x in best):
                best = [a, b]
        return best

    def text_block(self, face: Face, *, top: int):
        """[(surface, y)] for the Khmer and English lines, the largest size that fits."""
        w, h = self.size
        room, width = h - top - h // 40, int(w * 0.94)
        for scale in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
            fonts = (
                (self._font("khmer", max(12, int(h // 12 * scale))), face.khmer),
                (self._font("latin", max(10, int(h // 15 * scale))), face.english),
            )
            lines = [(f, line) for f, text in fonts for line in self._wrap(f, text, width)]
            height = sum(f.get_linesize() for f, _ in lines)
            if height <= room and all(f.size(t)[0] <= width for f, t in lines):
                break
        out, y = [], top
        for f, line in lines:
            img = f.render(line, True, WHITE)
            if img.get_width() > width:  # one word wider than the display: shrink it
                img = self.pg.transform.smoothscale(
                    img, (width, max(1, int(img.get_height() * width / img.get_width())))
                )
            out.append((img, y))
            y += f.get_linesize()
        return out

    def draw(self, surface, face: Face) -> None:
        w, h = self.size
        surface.fill(face.background)
        cx, cy, r = self.geometry()
        for layer in self.symbol_layers(face.symbol):
            surface.blit(layer, (cx - layer.get_width() // 2, cy - layer.get_height() // 2))
        for img, y in self.text_block(face, top=cy + int(r * 1.2) + h // 60):
            surface.blit(img, (w // 2 - img.get_width() // 2, y))

    def text_width(self, text: str) -> int:
        return self.khmer.size(text)[0]


def render_to_file(face_key, path: Path, *, size=(800, 480), font: str = "") -> None:
    """One face saved as an image (README's screenshots, tests): no display needed."""
    import pygame

    r = Renderer(size, font=font)
    surface = pygame.Surface(size)
    r.draw(surface, FACES[face_key])
    pygame.image.save(surface, str(path))


class Screen:
    """The display thread. ``show(outcome)``, ``fault()``, ``clear_fault()`` return at once."""

    def __init__(
        self,
        *,
        driver: str = "",
        size: tuple[int, int] = (0, 0),
        show_s: float = 3.0,
        font: str = "",
        ready_timeout_s: float = 10.0,
        exposed: dict[int, tuple[str, str]] | None = None,
    ):
        self.show_s = show_s
        self.exposed = dict(exposed or {})  # level -> (Khmer, English) of the exposed face
        self._q: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._last: tuple[str, bytes, tuple[int, int]] | None = None  # the last draw: face, RGB, size
        self.drawn = 0
        khmer_font_path(font)  # a missing font is a clear error now, not later
        self._thread = threading.Thread(
            target=self._run, args=(driver, size, font), name="screen", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(ready_timeout_s) or self._error:
            raise ScreenError(
                f"cannot open the screen (SDL video driver "
                f"{driver or os.environ.get('SDL_VIDEODRIVER', 'default')}): "
                f"{self._error or 'no answer'}; check the cable, the driver "
                "([screen] driver: kmsdrm on a Pi) and membership of the video group"
            )

    def _run(self, driver: str, size, font: str) -> None:
        try:
            if driver:
                os.environ["SDL_VIDEODRIVER"] = driver
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            import pygame

            pygame.display.init()
            flags = pygame.FULLSCREEN if size == (0, 0) else 0
            surface = pygame.display.set_mode(size, flags)
            pygame.mouse.set_visible(False)
            renderer = Renderer(surface.get_size(), font=font)
        except BaseException as e:  # no display, no permission, no font ...
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        current, until = IDLE, None
        self._draw(pygame, surface, renderer, IDLE)
        while True:
            timeout = None if until is None else max(0.0, until - time.monotonic())
            try:
                item = self._q.get(timeout=timeout if timeout is not None else 0.5)
            except queue.Empty:
                pygame.event.pump()
                if until is not None and time.monotonic() >= until:
                    current, until = IDLE, None
                    self._draw(pygame, surface, renderer, IDLE)
                continue
            if item is None:
                break
            if item == "clear_fault":
                if current == FAULT:
                    current, until = IDLE, None
                    self._draw(pygame, surface, renderer, IDLE)
                continue
            current = item
            until = None if item == FAULT else time.monotonic() + self.show_s
            self._draw(pygame, surface, renderer, item)
        pygame.display.quit()

    def face(self, key) -> Face:
        """The face for a key: an outcome, ("exposed", level), idle or fault."""
        if isinstance(key, tuple):
            base = FACES[Outcome.EXPOSED]
            texts = self.exposed.get(key[1])
            return Face(base.symbol, base.background, *texts) if texts else base
        return FACES[key]

    def _draw(self, pygame, surface, renderer: Renderer, key) -> None:
        renderer.draw(surface, self.face(key))
        pygame.display.flip()
        with self._lock:
            self._last = (key, pygame.image.tobytes(surface, "RGB"), surface.get_size())
            self.drawn += 1

    def show(self, outcome: Outcome, *, level: int = 0) -> None:
        self._q.put((Outcome.EXPOSED.value, level) if outcome is Outcome.EXPOSED else outcome)

    def fault(self) -> None:
        self._q.put(FAULT)

    def clear_fault(self) -> None:
        self._q.put("clear_fault")

    def last_frame(self):
        """(what was drawn last, its RGB bytes, (width, height)), for tests and doctor."""
        with self._lock:
            return self._last

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5)
