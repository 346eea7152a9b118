"""Pass images: segno renders the QR code; OpenCV turns it into camera-like frames.

Used by the authority's `issue-pass --png/--svg`, the demo and the tests (so they decode
real images with the real decoder).
"""

from __future__ import annotations

import cv2
import numpy as np
import segno


def qr_image(text: str, *, module_px: int = 4, border: int = 4) -> np.ndarray:
    """The QR code of ``text`` as a grey uint8 image (black modules on white)."""
    qr = segno.make_qr(text, error="m")
    modules = np.array(qr.matrix, dtype=np.uint8)             # 1 = dark
    modules = np.pad(modules, border, constant_values=0)
    img = np.where(modules == 1, 0, 255).astype(np.uint8)
    return np.kron(img, np.ones((module_px, module_px), dtype=np.uint8))


def save_pass(text: str, *, png: str | None = None, svg: str | None = None, scale: int = 8) -> None:
    qr = segno.make_qr(text, error="m")
    if png:
        qr.save(png, kind="png", scale=scale, border=4)
    if svg:
        qr.save(svg, kind="svg", scale=scale, border=4)


def background(rng: np.random.Generator, size=(480, 640)) -> np.ndarray:
    """A plausible empty entrance: smooth shading, some edges, sensor noise."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = 90 + 60 * np.sin(x / (w / rng.uniform(1.5, 4))) * np.cos(y / (h / rng.uniform(1, 3)))
    img = np.clip(base + rng.normal(0, 6, size), 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 8)):                        # door frames, posters
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.rectangle(img, p1, p2, int(rng.integers(20, 230)), int(rng.integers(1, 6)))
    return img


def camera_frame(text: str | None, rng: np.random.Generator, *, size=(480, 640),
                 code_px: int = 220, angle: float = 0.0, tilt: float = 0.0,
                 blur: float = 0.0, noise: float = 4.0) -> np.ndarray:
    """A grey frame as a camera would see a pass held up to it: ``code_px`` wide, rotated by
    ``angle`` degrees, tilted in perspective by ``tilt`` (0..0.3), blurred, noisy.
    ``text=None`` gives a frame with no code."""
    frame = background(rng, size)
    if text is not None:
        code = qr_image(text, module_px=4)
        code = cv2.resize(code, (code_px, code_px), interpolation=cv2.INTER_AREA)
        h, w = size
        cx = w / 2 + rng.uniform(-0.15, 0.15) * w
        cy = h / 2 + rng.uniform(-0.1, 0.1) * h
        half = code_px / 2
        src = np.float32([[0, 0], [code_px, 0], [code_px, code_px], [0, code_px]])
        corners = np.float32([[-half, -half], [half, -half], [half, half], [-half, half]])
        corners[1:3, 1] *= 1 - tilt                            # right edge further away
        rot = np.deg2rad(angle)
        r = np.float32([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        dst = corners @ r.T + np.float32([cx, cy])
        m = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(code, m, (w, h), borderValue=0)
        mask = cv2.warpPerspective(np.full_like(code, 255), m, (w, h), borderValue=0)
        shade = rng.uniform(0.75, 1.0)                         # paper/screen brightness
        frame = np.where(mask > 127, (warped * shade).astype(np.uint8), frame)
    if blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    if noise > 0:
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    return frame
