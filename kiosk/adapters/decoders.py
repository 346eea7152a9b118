"""QR decoders behind one small interface: a grey frame in, the texts found out.

zxing-cpp is the default. A first look is one plain call (LocalAverage binariser, which
also reports symbols it located but could not read). Only when that reads nothing come
second looks, cheapest and likeliest first, each bounded so an empty frame costs little
more than the plain call (scripts/bench prints the ratio; goal <= 1.5x):

1. a **dim** frame (its bright end under ``DIM_LEVEL``): levels stretched and the noise
   smoothed, then the same frame averaged with the previous dim frames (several frames of
   the same pass carry the same code and independent noise);
2. **regions**: where a symbol was located but not read, in this frame or the last
   ``REMEMBER_FRAMES`` ones (a pass held up stays where it was): the crop at twice its size
   (codes at 1.3-2 pixels a module), sharpened (soft focus, a moving hand), and through
   pyzbar, which reads some codes zxing-cpp does not;
3. the whole frame again with GlobalHistogram (located but unread), or at half size when
   nothing was located (large, soft or unevenly lit codes).

Every text found goes through the same verification: a misread is never admitted (a QR
code's error correction makes one unlikely, and the pass signature rejects it: amber).
No OpenCV here: the Pi camera path runs without it (kiosk/looks.py is numpy). pyzbar
(libzbar0) is also a decoder of its own. A decoder that raises is caught and counted: a
bad frame never stops the loop.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

import numpy as np

from kiosk.adapters import looks

log = logging.getLogger(__name__)


class Decoder(Protocol):
    name: str

    def decode(self, grey: np.ndarray) -> list[str]: ...


def half_size(grey: np.ndarray) -> np.ndarray:
    """Each 2x2 block averaged (as OpenCV's INTER_AREA does at one half)."""
    h, w = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    a = grey[:h, :w].astype(np.uint16)
    return ((a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) >> 2).astype(np.uint8)


def _ascii(symbols) -> list[str]:
    """pyzbar's texts as a second opinion, ASCII only: a pass is ASCII, and zbar guesses a
    byte segment's character set differently from zxing-cpp (Shift-JIS, Latin-1), so a
    non-ASCII text from it could differ from what the code says."""
    out = []
    for s in symbols:
        try:
            out.append(s.data.decode("ascii"))
        except UnicodeDecodeError:
            pass
    return out


class ZxingDecoder:
    name = "zxing"
    DIM_LEVEL = 70  # a frame whose 99.5th percentile is below this is dim
    DIM_FRAMES = 4  # dim frames averaged at most
    REMEMBER_FRAMES = 10  # about a second at 10 fps
    MAX_REGIONS = 2
    MAX_REGION_PIXELS = 200_000  # upscaled crops stay smaller than a 640x480 frame

    def __init__(self, *, retry_located: bool = True, second_looks: bool = True, pyzbar: bool = True):
        import zxingcpp

        self._z = zxingcpp
        self._retry = retry_located
        self._second = second_looks and retry_located
        self._opts: dict[str, Any] = dict(
            formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain
        )
        self._regions: deque = deque()  # (region, frames left)
        self._dim: deque = deque(maxlen=self.DIM_FRAMES - 1)
        self._pyzbar = None
        if pyzbar and self._second:
            try:
                from pyzbar import pyzbar as pz

                self._pyzbar = (pz.decode, [pz.ZBarSymbol.QRCODE])
            except (ImportError, OSError):  # no libzbar0: zxing's looks only
                self._pyzbar = None
        self.looks = {
            "first": 0,
            "dim": 0,
            "dim_average": 0,
            "region": 0,
            "pyzbar": 0,
            "global": 0,
            "half": 0,
        }

    def _read(self, img: np.ndarray, **kw):
        return self._z.read_barcodes(img, **self._opts, **kw)

    def _located(self, found, shape) -> list:
        out = []
        for b in found:
            p = b.position
            pts = [
                (p.top_left.x, p.top_left.y),
                (p.top_right.x, p.top_right.y),
                (p.bottom_left.x, p.bottom_left.y),
                (p.bottom_right.x, p.bottom_right.y),
            ]
            r = looks.region(pts, shape)
            if r:
                out.append(r)
        return out

    def decode(self, grey: np.ndarray) -> list[str]:
        found = self._read(grey, return_errors=self._retry)
        texts = [b.text for b in found if b.valid]
        if texts:
            self.looks["first"] += 1
            return texts
        if not self._retry:
            return []
        located = self._located([b for b in found if not b.valid], grey.shape)
        if self._second:
            texts = self._dim_look(grey, located) or self._region_looks(grey, located)
            self._age_regions(located)
            if texts:
                return texts
        if found:  # located but not read: a second binariser often reads it
            texts = [b.text for b in self._read(grey, binarizer=self._z.Binarizer.GlobalHistogram)]
            self.looks["global"] += bool(texts)
            return texts or self._pyzbar_look(grey)
        # Nothing located: a coarse look at half size (cheap: a quarter of the pixels).
        # (A look at the frame's centre at twice its size was measured too: it read almost
        # nothing the first look missed, for +0.8x on every empty frame.)
        half = half_size(grey)
        found = self._read(half, binarizer=self._z.Binarizer.GlobalHistogram, return_errors=self._second)
        texts = [b.text for b in found if b.valid]
        self.looks["half"] += bool(texts)
        if texts or not found:
            return texts
        return self._pyzbar_look(grey, half=half)

    def _pyzbar_look(self, grey: np.ndarray, *, half: np.ndarray | None = None) -> list[str]:
        """pyzbar on a frame where zxing-cpp located a symbol it could not read: at half
        size first (a quarter of the cost), then whole. Only then: it costs ~6x a plain
        zxing-cpp call, and reads some such codes zxing-cpp does not."""
        if self._pyzbar is None or not self._second:
            return []
        decode, symbols = self._pyzbar
        for img in (half_size(grey) if half is None else half, grey):
            texts = _ascii(decode(img, symbols=symbols))
            if texts:
                self.looks["pyzbar"] += 1
                return texts
        return []

    def _dim_look(self, grey: np.ndarray, located: list) -> list[str]:
        if looks.level(grey) >= self.DIM_LEVEL:
            self._dim.clear()
            return []
        clean = looks.smooth(looks.stretch(grey))
        found = self._read(clean, return_errors=True)
        texts = [b.text for b in found if b.valid]
        if texts:
            self.looks["dim"] += 1
            self._dim.clear()
            return texts
        also = self._located([b for b in found if not b.valid], grey.shape)
        located += also
        # Averaged with the last dim frames, when this one shows a symbol (no cost else).
        if also and self._dim and self._dim[-1].shape == clean.shape:
            stack = sum((f.astype(np.uint16) for f in self._dim), clean.astype(np.uint16))
            stack = (stack // (len(self._dim) + 1)).astype(np.uint8)
            texts = [b.text for b in self._read(looks.stretch(stack))]
            if texts:
                self.looks["dim_average"] += 1
                self._dim.clear()
                return texts
        self._dim.append(clean)
        return []

    def _region_looks(self, grey: np.ndarray, located: list) -> list[str]:
        seen, tried = set(), 0
        for r in [*located, *(r for r, _ in self._regions)]:
            if r in seen or tried >= self.MAX_REGIONS:
                continue
            seen.add(r)
            y0, y1, x0, x1 = r
            crop = grey[y0:y1, x0:x1]
            if crop.size * 4 > self.MAX_REGION_PIXELS:
                continue
            tried += 1
            big = looks.upscale2(crop)
            for img in (big, looks.sharpen(big)):
                texts = [b.text for b in self._read(img)]
                if texts:
                    self.looks["region"] += 1
                    return texts
            if self._pyzbar is not None:
                decode, symbols = self._pyzbar
                texts = _ascii(decode(big, symbols=symbols))
                if texts:
                    self.looks["pyzbar"] += 1
                    return texts
        return []

    def _age_regions(self, located: list) -> None:
        kept = [(r, n - 1) for r, n in self._regions if n > 1 and r not in located]
        self._regions = deque([(r, self.REMEMBER_FRAMES) for r in located] + kept)
        while len(self._regions) > 4:
            self._regions.pop()


class PyzbarDecoder:
    name = "pyzbar"

    def __init__(self):
        from pyzbar import pyzbar

        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, grey: np.ndarray) -> list[str]:
        return [s.data.decode("utf-8", "replace") for s in self._decode(grey, symbols=self._symbols)]


DECODERS = {"zxing": ZxingDecoder, "pyzbar": PyzbarDecoder}


class SafeDecoder:
    """Wraps a decoder: its exceptions become 'nothing found' and are counted."""

    def __init__(self, inner: Decoder):
        self.inner = inner
        self.name = inner.name
        self.errors = 0

    def decode(self, grey: np.ndarray) -> list[str]:
        try:
            return self.inner.decode(np.ascontiguousarray(grey))
        except Exception as e:  # decoders raise on odd images (pyzbar: ValueError on some)
            self.errors += 1
            log.warning("decoder %s failed on a frame: %s", self.name, type(e).__name__)
            return []


def make_decoder(name: str = "zxing") -> SafeDecoder:
    try:
        cls = DECODERS[name]
    except KeyError:
        raise ValueError(f"unknown decoder {name!r} (known: {', '.join(DECODERS)})") from None
    return SafeDecoder(cls())
