"""Pass images: segno renders the QR code; OpenCV turns it into camera-like frames.

Used by the demo, the benchmarks and the tests (so they decode real images with the real
decoder); the authority's own pass images are :func:`sync.central.issuing.save_pass`.
"""

from __future__ import annotations

import cv2
import numpy as np
import segno


def qr_image(text: str, *, module_px: int = 4, border: int = 4) -> np.ndarray:
    """The QR code of ``text`` as a grey uint8 image (black modules on white)."""
    qr = segno.make_qr(text, error="m")
    modules = np.array(qr.matrix, dtype=np.uint8)  # 1 = dark
    modules = np.pad(modules, border, constant_values=0)
    img = np.where(modules == 1, 0, 255).astype(np.uint8)
    return np.kron(img, np.ones((module_px, module_px), dtype=np.uint8))


def background(rng: np.random.Generator, size=(480, 640)) -> np.ndarray:
    """A plausible empty entrance: smooth shading, some edges, sensor noise."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = 90 + 60 * np.sin(x / (w / rng.uniform(1.5, 4))) * np.cos(y / (h / rng.uniform(1, 3)))
    img = np.clip(base + rng.normal(0, 6, size), 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 8)):  # door frames, posters
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.rectangle(img, p1, p2, int(rng.integers(20, 230)), int(rng.integers(1, 6)))
    return img


def camera_frame(
    text: str | None,
    rng: np.random.Generator,
    *,
    size=(480, 640),
    code_px: int = 220,
    angle: float = 0.0,
    tilt: float = 0.0,
    blur: float = 0.0,
    noise: float = 4.0,
) -> np.ndarray:
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
        corners[1:3, 1] *= 1 - tilt  # right edge further away
        rot = np.deg2rad(angle)
        r = np.float32([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        dst = corners @ r.T + np.float32([cx, cy])
        m = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(code, m, (w, h), borderValue=0)
        mask = cv2.warpPerspective(np.full_like(code, 255), m, (w, h), borderValue=0)
        shade = rng.uniform(0.75, 1.0)  # paper/screen brightness
        frame = np.where(mask > 127, (warped * shade).astype(np.uint8), frame)
    if blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), blur)
    if noise > 0:
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    return frame


# -- what a camera at a door really sees ----------------------------------------------------------
# Each condition renders a pass into a 640x480 grey frame the way a kiosk meets it; the
# benchmark and the tests measure read rates on them (kiosk decoder vs raw zxing-cpp vs
# pyzbar). Parameters are drawn from the ranges the issue names.
CONDITIONS = (
    "plain",
    "small",
    "dim",
    "motion",
    "defocus",
    "thumb",
    "backlight",
    "motion-near",
    "defocus-near",
)


def _modules(text: str) -> int:
    return segno.make_qr(text, error="m").symbol_size(border=4)[0]


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    for t in np.linspace(-c, c, length * 3):
        k[int(round(c + t * dy)), int(round(c + t * dx))] = 1
    return k / k.sum()


def disc_kernel(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    k = (x * x + y * y <= radius * radius).astype(np.float32)
    return k / k.sum()


def condition_frame(text: str | None, condition: str, rng: np.random.Generator) -> np.ndarray:
    """A 640x480 grey frame of ``text`` (None: no code) under ``condition``:

    - plain: 3-4.5 px a module, slight tilt and blur (the easy case);
    - small: 1.3-2 px a module (a pass at arm's length, a wide lens);
    - dim: 5-10% of full brightness, with sensor (shot and read) noise;
    - motion: motion blur of 10-18 px in any direction;
    - defocus: a disc blur of radius 3-6 px (a lens hunting for focus);
    - thumb: a thumb over a fifth of the code, from one side;
    - backlight: a bright doorway behind, the pass underexposed in front;
    - motion-near, defocus-near: the same blurs on a pass held close, 5-7 px a module.
    """
    modules = _modules(text) if text is not None else 61
    if condition == "small":
        ppm = rng.uniform(1.3, 2.0)
    elif condition.endswith("-near"):
        ppm = rng.uniform(5.0, 7.0)
        condition = condition[:-5]
    else:
        ppm = rng.uniform(3.0, 4.5)
    code_px = int(round(modules * ppm))
    frame = camera_frame(
        text,
        rng,
        code_px=code_px,
        angle=rng.uniform(-20, 20),
        tilt=rng.uniform(0, 0.12),
        blur=0.6 if condition != "small" else 0.4,
        noise=0.0,
    )
    f = frame.astype(np.float32)
    if condition == "dim":
        f *= rng.uniform(0.05, 0.10)
        f = rng.poisson(np.maximum(f, 0) * 2.0) / 2.0  # shot noise
        f += rng.normal(0, 1.2, f.shape)  # read noise
    elif condition == "motion":
        f = cv2.filter2D(f, -1, motion_kernel(int(rng.integers(10, 19)), rng.uniform(0, 180)))
    elif condition == "defocus":
        f = cv2.filter2D(f, -1, disc_kernel(rng.uniform(3, 6)))
    elif condition == "thumb" and text is not None:
        f = _thumb(f, code_px, rng)
    elif condition == "backlight":
        h, w = f.shape
        code = f < 128  # dark-ish: the pass and shadows
        f = 25 + f * rng.uniform(0.2, 0.3)  # the front: underexposed
        y, x = np.mgrid[0:h, 0:w]
        side = rng.choice([-1, 1])
        glow = 255 * np.clip(1.2 - np.abs(x - w * (0.5 + 0.45 * side)) / (w * 0.35), 0, 1)
        f = np.maximum(f, glow * ~code)  # the bright doorway beside it
        f = cv2.GaussianBlur(f, (0, 0), 3) * 0.3 + f * 0.7  # veiling glare
    if condition != "dim":
        f += rng.normal(0, 3.0, f.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


def _thumb(f: np.ndarray, code_px: int, rng: np.random.Generator) -> np.ndarray:
    """An ellipse of skin tone over about a fifth of the code's area, from its lower edge
    or a side (a hand holding a phone), near the frame centre where the code is."""
    h, w = f.shape
    out = f.copy()
    cx, cy = w / 2, h / 2
    side = rng.choice(["bottom", "left", "right"])
    a, b = code_px * 0.22, code_px * 0.45  # semi-axes: ~0.2 of the area
    if side == "bottom":
        ex, ey, ax, ay = cx + rng.uniform(-0.2, 0.2) * code_px, cy + code_px * 0.55, a, b
    else:
        s = -1 if side == "left" else 1
        ex, ey, ax, ay = cx + s * code_px * 0.55, cy + rng.uniform(-0.1, 0.25) * code_px, b, a
    y, x = np.mgrid[0:h, 0:w]
    inside = ((x - ex) / ax) ** 2 + ((y - ey) / ay) ** 2 <= 1
    tone = rng.uniform(140, 190)
    out[inside] = tone + (y[inside] - ey) * 0.1
    return out


def framed(img: np.ndarray, how: str = "fit", size=(480, 640)) -> np.ndarray:
    """A photo placed in a camera-sized frame: ``fit`` scales it to fit inside (the rest a
    plain grey of its median), ``fill`` scales it to cover the frame and crops the middle."""
    h, w = img.shape[:2]
    fh, fw = size
    s = min(fw / w, fh / h) if how == "fit" else max(fw / w, fh / h)
    r = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    rh, rw = r.shape[:2]
    if how == "fit":
        out = np.full(size, int(np.median(img)), np.uint8)
        y, x = (fh - rh) // 2, (fw - rw) // 2
        out[y : y + rh, x : x + rw] = r
        return out
    y, x = (rh - fh) // 2, (rw - fw) // 2
    return np.ascontiguousarray(r[y : y + fh, x : x + fw])
