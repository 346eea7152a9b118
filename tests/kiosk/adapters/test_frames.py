"""Frame sources: image folders and a real video file through OpenCV; picamera2 with a
hand-written stand-in, because no camera (nor libcamera) exists on this machine."""

import cv2
import numpy as np
import pytest

from kiosk.adapters.decoders import make_decoder
from kiosk.adapters.frames import (
    ArraySource,
    CameraError,
    ImageSource,
    OpenCVSource,
    Picamera2Source,
    Torch,
    expand_images,
    to_grey,
)
from workbench.render import camera_frame


def test_image_source_reads_folders_globs_and_skips_unreadable(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), camera_frame(None, rng))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(expand_images([tmp_path])) == 4
    src = ImageSource([tmp_path])
    frames = [src.read() for _ in range(4)]
    assert [f is None for f in frames] == [False, False, False, True]
    assert frames[0].ndim == 2 and frames[0].shape == (480, 640)
    assert len(expand_images([str(tmp_path / "*.png")])) == 4
    with pytest.raises(CameraError):
        ImageSource([tmp_path / "nothing-here"])


def test_array_source_loops():
    src = ArraySource([np.zeros((2, 2), np.uint8)], loop=True)
    assert all(src.read() is not None for _ in range(5))


def test_opencv_source_on_a_real_video_file(tmp_path, make_pass):
    text = make_pass(0)
    rng = np.random.default_rng(1)
    path = tmp_path / "door.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(6):
        grey = camera_frame(text if i in (3, 4) else None, rng, code_px=240)
        out.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    out.release()
    src = OpenCVSource(str(path))
    decoder = make_decoder("zxing")
    found = []
    while (f := src.read()) is not None:
        assert f.ndim == 2
        found.append(decoder.decode(f))
    src.close()
    assert len(found) == 6 and found[3] == [text] and found[0] == []


def test_opencv_source_that_cannot_open_says_so(tmp_path):
    with pytest.raises(CameraError, match="cannot open"):
        OpenCVSource(str(tmp_path / "absent.avi"))


class FakePicamera2:
    """Stand-in for picamera2.Picamera2 (hand-written: no camera here). It checks that the
    source asks for a YUV420 lores stream with fresh (unqueued) frames, and returns YUV420
    arrays padded on the right as the real one may."""

    instances = []

    def __init__(self):
        self.config = None
        self.started = self.closed = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kw):
        return kw

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def capture_array(self, name):
        assert name == "lores" and self.started
        w, h = self.config["lores"]["size"]
        yuv = np.full((h * 3 // 2, w + 64), 128, np.uint8)  # padded stride
        yuv[:h, :w] = 200
        return yuv

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


def test_picamera2_source_uses_the_luma_of_fresh_lores_frames():
    src = Picamera2Source(width=320, height=240, fps=15, picamera2=FakePicamera2)
    cam = FakePicamera2.instances[-1]
    assert cam.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert cam.config["queue"] is False
    f = src.read()
    assert f.shape == (240, 320) and (f == 200).all()
    src.close()
    assert cam.closed


class FakeCameraModule3(FakePicamera2):
    """The same stand-in, reporting Camera Module 3's controls (it has autofocus), with a
    luma level the test sets (a dark or a bright entrance)."""

    camera_controls = {
        "FrameRate": (1, 120, 30),
        "AfMode": (0, 2, 0),
        "AfSpeed": (0, 1, 0),
        "LensPosition": (0.0, 15.0, 1.0),
        "AeExposureMode": (0, 3, 0),
        "ExposureValue": (-8.0, 8.0, 0.0),
    }
    level = 200

    def capture_array(self, name):
        yuv = super().capture_array(name)
        yuv[...] = self.level
        return yuv


class FakeCameraModule2(FakePicamera2):
    camera_controls = {
        "FrameRate": (1, 120, 30),
        "AeExposureMode": (0, 3, 0),
        "ExposureValue": (-8.0, 8.0, 0.0),
    }


def test_camera_module_3_gets_continuous_autofocus_and_a_screen_exposure():
    src = Picamera2Source(width=640, height=480, fps=10, picamera2=FakeCameraModule3)
    controls = FakePicamera2.instances[-1].config["controls"]
    assert controls == {
        "FrameRate": 10,
        "AfMode": 2,
        "AfSpeed": 1,
        "AeExposureMode": 1,
        "ExposureValue": -1.0,
    }
    src.close()
    src = Picamera2Source(
        picamera2=FakeCameraModule3, autofocus="manual", lens_position=2.5, exposure="normal"
    )
    assert FakePicamera2.instances[-1].config["controls"] == {
        "FrameRate": 10,
        "AfMode": 0,
        "LensPosition": 2.5,
    }
    src.close()


def test_a_camera_without_autofocus_is_not_asked_for_it():
    src = Picamera2Source(picamera2=FakeCameraModule2)
    assert FakePicamera2.instances[-1].config["controls"] == {
        "FrameRate": 10,
        "AeExposureMode": 1,
        "ExposureValue": -1.0,
    }
    src.close()


def test_the_torch_lights_dark_entrances_without_flickering():
    from gpiozero import LED
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    led = LED(5, pin_factory=factory)
    now = [0.0]
    torch = Torch(led, mode="dark", min_on_s=30, clock=lambda: now[0])
    src = Picamera2Source(picamera2=FakeCameraModule3, torch=torch)
    FakeCameraModule3.level = 20  # a dark entrance
    src.read()
    src.read()
    assert not led.is_lit  # not on one or two dark frames
    src.read()
    assert led.is_lit
    FakeCameraModule3.level = 200  # the torch (or daylight) brightens it
    now[0] = 10
    src.read()
    assert led.is_lit  # not off before min_on_s: no flicker
    now[0] = 31
    src.read()
    assert not led.is_lit
    FakeCameraModule3.level = 20
    for _ in range(3):
        src.read()
    src.close()  # closing the camera puts it out
    assert not led.is_lit
    always = Torch(led, mode="always")
    assert led.is_lit
    always.close()


def test_picamera2_missing_is_a_clear_error():
    try:
        import picamera2  # noqa: F401

        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    with pytest.raises(CameraError, match="python3-picamera2"):
        Picamera2Source()


def test_to_grey():
    assert to_grey(np.zeros((4, 4, 3), np.uint8)).shape == (4, 4)
    assert to_grey(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4)
