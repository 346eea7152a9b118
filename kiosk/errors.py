"""The device's own faults (README: "Exit status"); the base and the statuses are shared
(:mod:`kiosk.core.faults`)."""

from __future__ import annotations

from kiosk.core.faults import EXIT_CAMERA, EXIT_DATABASE, EXIT_GPIO, Fault


class GpioError(Fault):
    label = "GPIO error"
    exit_code = EXIT_GPIO


class CameraError(Fault):
    label = "camera error"
    exit_code = EXIT_CAMERA


class CameraGone(CameraError):
    """The frame source failed and could not be reopened for longer than allowed."""


class StoreFailing(Fault):
    """Check-ins could not be committed for longer than allowed."""

    label = "database error"
    exit_code = EXIT_DATABASE
