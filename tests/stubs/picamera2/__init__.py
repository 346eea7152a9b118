"""A stand-in for picamera2 (hand-written: no Pi camera on the machines that run the tests
and the benchmark). It is put on PYTHONPATH of a real `kiosk run` process so that process
takes the Pi camera path (no OpenCV) end to end: it serves the luma frames in the .npy file
named by $KIOSK_FAKE_CAMERA_FRAMES as YUV420 arrays, one per capture, looping, at the
configured frame rate, and reports Camera Module 3's controls."""

import os
import time

import numpy as np

# Raspberry Pi OS's picamera2 imports simplejpeg, compiled against apt's numpy: where the
# compiled stand-in (tests/stubs/simplejpeg) is on the path, this imports it the same way.
try:
    import simplejpeg  # noqa: F401
except ModuleNotFoundError:
    pass

camera_controls_of_module_3 = {
    "FrameRate": (1, 120, 30), "AfMode": (0, 2, 0), "AfSpeed": (0, 1, 0),
    "LensPosition": (0.0, 15.0, 1.0), "AeExposureMode": (0, 3, 0), "ExposureValue": (-8.0, 8.0, 0.0)}


class Picamera2:
    def __init__(self):
        self.camera_controls = camera_controls_of_module_3
        self._frames = np.load(os.environ["KIOSK_FAKE_CAMERA_FRAMES"], mmap_mode="r")
        self._i, self._period, self._next = 0, 0.1, time.monotonic()

    def create_video_configuration(self, **kw):
        return kw

    def configure(self, config):
        self._size = config["lores"]["size"]
        self._period = 1.0 / config["controls"].get("FrameRate", 10)

    def start(self):
        pass

    def capture_array(self, name):
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + self._period, time.monotonic())
        w, h = self._size
        y = self._frames[self._i % len(self._frames)]
        self._i += 1
        yuv = np.full((h * 3 // 2, w), 128, np.uint8)
        yuv[:h, :w] = y[:h, :w]
        return yuv

    def stop(self):
        pass

    def close(self):
        pass
