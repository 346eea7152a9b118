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


class Renderer:
    """Draws a face on a pygame surface. Pure drawing, no display: the thread below and the
    tests (which save what it draws) share it."""

    def __init__(self, size: tuple[int, int], *, font: str = ""):
        import pygame

        self.pg = pygame
        pygame.font.init()
        self.size = w, h = size
        khmer = khmer_font_path(font)
        self.khmer = pygame.font.Font(str(khmer), max(16, h // 12))
        self.khmer.set_script("Khmr")  # HarfBuzz shaping for Khmer
        self.latin = pygame.font.Font(None, max(16, h // 10))

    def draw(self, surface, face: Face) -> None:
        pg = self.pg
        w, h = self.size
        surface.fill(face.background)
        cx, cy, r = w // 2, int(h * 0.36), int(min(w, h) * 0.24)
        thick = max(6, r // 5)
        if face.symbol == "exposed":  # a triangle, not a circle: a check that says "take care"
            tri = [(cx, cy - r * 1.05), (cx + r * 1.05, cy + r * 0.75), (cx - r * 1.05, cy + r * 0.75)]
            pg.draw.polygon(surface, WHITE, tri, width=thick // 2)
            pg.draw.lines(
                surface,
                WHITE,
                False,
                [(cx - r * 0.4, cy + r * 0.2), (cx - r * 0.1, cy + r * 0.5), (cx + r * 0.42, cy - r * 0.15)],
                thick,
            )
        else:
            pg.draw.circle(surface, WHITE, (cx, cy), r, width=thick // 2)
        if face.symbol == "check":
            pg.draw.lines(
                surface,
                WHITE,
                False,
                [
                    (cx - r * 0.5, cy + r * 0.02),
                    (cx - r * 0.12, cy + r * 0.42),
                    (cx + r * 0.55, cy - r * 0.4),
                ],
                thick,
            )
        elif face.symbol == "cross":
            d = r * 0.45
            pg.draw.line(surface, WHITE, (cx - d, cy - d), (cx + d, cy + d), thick)
            pg.draw.line(surface, WHITE, (cx - d, cy + d), (cx + d, cy - d), thick)
        elif face.symbol == "bang":
            pg.draw.rect(surface, WHITE, pg.Rect(cx - thick // 2, cy - r * 0.6, thick, r * 0.8))
            pg.draw.circle(surface, WHITE, (cx, int(cy + r * 0.45)), thick // 2 + 2)
        elif face.symbol == "exposed":
            pass  # drawn above
        else:  # idle: a small QR-like mark
            q = r // 2
            for dx, dy in ((-1, -1), (1, -1), (-1, 1)):
                box = pg.Rect(cx + dx * q - q // 2, cy + dy * q - q // 2, q, q)
                pg.draw.rect(surface, WHITE, box, width=max(3, q // 6))
        y = int(h * 0.66)
        for font, text in ((self.khmer, face.khmer), (self.latin, face.english)):
            img = font.render(text, True, WHITE)
            if img.get_width() > w * 0.94:  # long text: scale down to fit
                f = w * 0.94 / img.get_width()
                img = pg.transform.smoothscale(img, (int(img.get_width() * f), int(img.get_height() * f)))
            surface.blit(img, (cx - img.get_width() // 2, y))
            y += img.get_height() + h // 40

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
