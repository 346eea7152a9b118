"""Frame sources: each yields grey (single-channel uint8) frames, ``None`` at the end.

- :class:`Picamera2Source`: the Pi camera; the Y plane of a YUV420 lores stream, captured
  after the request (queue=False) so a decision never rests on a stale frame; continuous
  autofocus (or a fixed lens position), an exposure for phone screens, and an optional
  torch LED for dark entrances (:class:`Torch`). Imports no OpenCV.
- :class:`~kiosk.adapters.scanners.EvdevScanner`, :class:`~kiosk.adapters.scanners.SerialScanner`: dedicated
  2D scanners, whose "frames" are the texts they read.
- :class:`OpenCVSource`: a USB camera index, a video file or a stream URL.
- :class:`ImageSource`: files, folders or globs of still images (tests, demo, bench).
- :class:`ArraySource`: frames already in memory.
"""

from __future__ import annotations

import contextlib
import glob
import io
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kiosk.errors import CameraError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".pgm"}
__all__ = [
    "CameraError",
    "ArraySource",
    "ImageSource",
    "OpenCVSource",
    "Picamera2Source",
    "Torch",
    "camera_controls",
    "open_source",
    "Paced",
    "expand_images",
    "load_grey",
    "to_grey",
]


class FrameSource(Protocol):
    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class InputSource(Protocol):
    """What the loop reads from: a frame source, or a 2D scanner that reads text itself."""

    def read(self) -> Any: ...

    def close(self) -> None: ...


def picamera2_import_problem(error: BaseException) -> str:
    """Why picamera2 would not import, in words that point at the real cause."""
    from kiosk.adapters.numpyabi import numpy_clash

    clash = numpy_clash()
    if clash:
        return f"picamera2 cannot be imported ({type(error).__name__}: {error}): {clash}"
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.startswith("picamera2"):
        return (
            "picamera2 is not installed (Raspberry Pi OS: apt install python3-picamera2; plain Debian "
            "has no python3-picamera2: the camera needs Raspberry Pi OS)"
        )
    return f"picamera2 cannot be imported: {type(error).__name__}: {error}"


def to_grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    import cv2  # OpenCV only on the paths that need it (not picamera2)

    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def expand_images(specs: Iterable[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted) and globs, in the order given."""
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            out += sorted(Path(m) for m in glob.glob(str(spec)))
    return out


def load_grey(path: Path) -> np.ndarray | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        log.warning("cannot read image %s", path)
    return img


class ArraySource:
    def __init__(self, frames: Iterable[np.ndarray], *, loop: bool = False):
        self._frames = list(frames)
        self._loop = loop
        self._i = 0

    def read(self) -> np.ndarray | None:
        if self._i >= len(self._frames):
            if not (self._loop and self._frames):
                return None
            self._i = 0
        frame = self._frames[self._i]
        self._i += 1
        return frame

    def close(self) -> None:
        pass


class ImageSource(ArraySource):
    def __init__(self, specs: Iterable[str | Path], *, loop: bool = False):
        specs = list(specs)
        paths = expand_images(specs)
        if not paths:
            raise CameraError(f"no images found in {', '.join(map(str, specs)) or '[camera] images'}")
        frames = [f for f in map(load_grey, paths) if f is not None]
        if not frames:
            raise CameraError(
                f"none of the {len(paths)} images in {', '.join(map(str, specs))} "
                "could be read (not images, or no permission)"
            )
        super().__init__(frames, loop=loop)


class OpenCVSource:
    def __init__(self, device: str, *, width: int = 640, height: int = 480, fps: float = 10):
        import cv2

        target = int(device) if device.isdigit() else device
        self._is_file = not isinstance(target, int) and Path(device).exists()
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            what = (
                "no such video file"
                if not isinstance(target, int) and "://" not in device and not self._is_file
                else "check the cable, `v4l2-ctl --list-devices` and that no other process holds it"
            )
            raise CameraError(f"cannot open camera/video {device!r} ({what})")
        if not self._is_file:
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fresh frames, not a backlog
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_FPS, fps)

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok:
            if self._is_file:
                return None
            raise CameraError("camera stopped delivering frames")
        return to_grey(frame)

    def close(self) -> None:
        self._cap.release()


# libcamera's enums, by value (picamera2's `controls` module needs libcamera to import).
AF_MANUAL, AF_CONTINUOUS, AF_SPEED_FAST, AE_EXPOSURE_SHORT = 0, 2, 1, 1


def camera_controls(
    *,
    fps: float,
    autofocus: str = "continuous",
    lens_position: float = 2.0,
    exposure: str = "screens",
    available=None,
) -> dict:
    """The libcamera controls for a kiosk: ``available`` is the camera's own list
    (Picamera2.camera_controls); controls it lacks (no autofocus on Camera Module 2) are
    left out rather than refused."""
    want = {"FrameRate": fps}
    if autofocus == "continuous":
        want.update(AfMode=AF_CONTINUOUS, AfSpeed=AF_SPEED_FAST)
    else:
        want.update(AfMode=AF_MANUAL, LensPosition=lens_position)
    if exposure == "screens":
        # A phone screen is a bright emitter in a darker scene: metering the whole frame
        # burns the code out. Short exposures and one stop under keep its modules apart
        # (and freeze a moving hand).
        want.update(AeExposureMode=AE_EXPOSURE_SHORT, ExposureValue=-1.0)
    if available is None:
        return want
    return {k: v for k, v in want.items() if k in available}


class Torch:
    """A white or IR LED for dark entrances (anything with on() and off(): a gpiozero LED).
    ``mode`` "dark": switched on after a few dark frames, off again only when the scene is
    bright with it on, and never flickering faster than ``min_on_s``."""

    DARK, BRIGHT = 45, 150  # mean grey level of a subsampled frame

    def __init__(self, light, *, mode: str = "dark", min_on_s: float = 30.0, clock=time.monotonic):
        self.light, self.mode, self.min_on_s, self.clock = light, mode, min_on_s, clock
        self.is_on, self._dark_frames, self._since = False, 0, 0.0
        if mode == "always":
            self._set(True)

    def observe(self, grey: np.ndarray) -> None:
        if self.mode != "dark":
            return
        level = float(grey[::16, ::16].mean())
        if not self.is_on:
            self._dark_frames = self._dark_frames + 1 if level < self.DARK else 0
            if self._dark_frames >= 3:
                self._set(True)
        elif level > self.BRIGHT and self.clock() - self._since >= self.min_on_s:
            self._set(False)

    def _set(self, on: bool) -> None:
        self.is_on, self._since, self._dark_frames = on, self.clock(), 0
        self.light.on() if on else self.light.off()

    def close(self) -> None:
        if self.is_on:
            self.light.off()


class Picamera2Source:
    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 10,
        picamera2=None,
        autofocus: str = "continuous",
        lens_position: float = 2.0,
        exposure: str = "screens",
        torch: Torch | None = None,
    ):
        if picamera2 is None:
            # numpy 2 prints a traceback of its own when a module built for numpy 1 loads
            # (simplejpeg, under picamera2): kept off the journal, the cause is named below.
            noise = io.StringIO()
            try:
                with contextlib.redirect_stderr(noise):
                    # only on a Pi (apt: python3-picamera2)
                    from picamera2 import Picamera2 as picamera2  # type: ignore[no-redef]
            except Exception as e:
                log.debug("picamera2 import: %s", noise.getvalue())
                raise CameraError(picamera2_import_problem(e)) from e
        try:
            self._cam = picamera2()
            controls = camera_controls(
                fps=fps,
                autofocus=autofocus,
                lens_position=lens_position,
                exposure=exposure,
                available=getattr(self._cam, "camera_controls", None),
            )
            config = self._cam.create_video_configuration(
                main={"size": (width * 2, height * 2), "format": "YUV420"},
                lores={"size": (width, height), "format": "YUV420"},
                controls=controls,
                buffer_count=2,
                queue=False,
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as e:
            raise CameraError(f"cannot start the Pi camera: {e}") from e
        self.controls = controls
        self._w, self._h = width, height
        self._torch = torch

    def read(self) -> np.ndarray | None:
        yuv = self._cam.capture_array("lores")  # waits for a frame captured after the request
        grey = yuv[: self._h, : self._w]  # Y (luma) plane, without row padding
        if self._torch is not None:
            self._torch.observe(grey)
        return grey

    def close(self) -> None:
        try:
            if self._torch is not None:
                self._torch.close()
            self._cam.stop()
        finally:
            self._cam.close()


SCANNER_SOURCES = ("evdev", "serial")


def open_source(camera: Any, *, torch_light: Any = None) -> InputSource:
    """The frame source a [camera] config section names. ``torch_light``: the LED for
    ``torch_pin`` (made by the caller with its pin factory), if any."""
    if camera.source == "picamera2":
        torch = (
            Torch(torch_light, mode=camera.torch)
            if torch_light is not None and camera.torch != "off"
            else None
        )
        return Picamera2Source(
            width=camera.width,
            height=camera.height,
            fps=camera.fps,
            autofocus=camera.autofocus,
            lens_position=camera.lens_position,
            exposure=camera.exposure,
            torch=torch,
        )
    if camera.source == "opencv":
        return OpenCVSource(camera.device, width=camera.width, height=camera.height, fps=camera.fps)
    if camera.source == "evdev":
        from kiosk.adapters.scanners import EvdevScanner

        return EvdevScanner(camera.scanner_device, grab=camera.scanner_grab)
    if camera.source == "serial":
        from kiosk.adapters.scanners import SerialScanner

        return SerialScanner(camera.scanner_device, baud=camera.scanner_baud)
    return ImageSource(camera.images, loop=camera.loop)


class Paced:
    """Delivers a source's frames no faster than ``fps`` (an image folder as a camera)."""

    def __init__(self, source: FrameSource, fps: float):
        self._source, self._period, self._next = source, 1.0 / fps, time.monotonic()

    def read(self) -> np.ndarray | None:
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + self._period, time.monotonic())
        return self._source.read()

    def close(self) -> None:
        self._source.close()
