"""Second looks for the decoder: small image operations in numpy alone (the Pi camera path
imports no OpenCV), each meant for a crop or a frame that a first look could not read.

- :func:`stretch`: a dim frame's levels spread over 0..255 (from its 1st and 99.5th
  percentiles), through a lookup table;
- :func:`smooth`: a 3x3 binomial blur, which takes the sensor noise out of a stretched
  dim frame;
- :func:`sharpen`: an unsharp mask, for soft (defocused) symbols;
- :func:`upscale2`: twice the size, bilinear, for symbols at under two pixels a module;
- :func:`region`: a symbol's bounding box with a margin, clipped to the frame.
"""

from __future__ import annotations

import numpy as np


def level(grey: np.ndarray) -> float:
    """The 99.5th percentile of a subsample: the frame's bright end (cheap: ~1/64 of it)."""
    return float(np.percentile(grey[::8, ::8], 99.5))


def stretch(grey: np.ndarray) -> np.ndarray:
    sample = grey[::4, ::4]
    lo, hi = np.percentile(sample, (1, 99.5))
    span = max(float(hi - lo), 1.0)
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / span), 0, 255).astype(np.uint8)
    return lut[grey]


def smooth(grey: np.ndarray) -> np.ndarray:
    a = grey.astype(np.uint16)
    p = np.pad(a, 1, mode="edge")
    rows = p[:-2, :] + 2 * p[1:-1, :] + p[2:, :]
    out = rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]
    return (out >> 4).astype(np.uint8)


def sharpen(grey: np.ndarray, amount: float = 1.5) -> np.ndarray:
    a = grey.astype(np.float32)
    blurred = smooth(smooth(grey)).astype(np.float32)
    return np.clip(a + amount * (a - blurred), 0, 255).astype(np.uint8)


def upscale2(grey: np.ndarray) -> np.ndarray:
    a = grey.astype(np.float32)
    r = np.empty((a.shape[0], a.shape[1] * 2 - 1), np.float32)
    r[:, 0::2] = a
    r[:, 1::2] = (a[:, :-1] + a[:, 1:]) * 0.5
    c = np.empty((r.shape[0] * 2 - 1, r.shape[1]), np.float32)
    c[0::2] = r
    c[1::2] = (r[:-1] + r[1:]) * 0.5
    return c.astype(np.uint8)


def region(points, shape, *, margin: float = 0.35) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) around ``points`` [(x, y), ...], grown by ``margin`` of its size."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    if w < 4 or h < 4:
        return None
    mx, my = int(w * margin) + 4, int(h * margin) + 4
    y0, y1 = max(0, min(ys) - my), min(shape[0], max(ys) + my)
    x0, x1 = max(0, min(xs) - mx), min(shape[1], max(xs) + mx)
    if y1 - y0 < 8 or x1 - x0 < 8:
        return None
    return y0, y1, x0, x1
