"""The faults a kiosk command ends on, each with its exit status (README: "Exit status").

Kept free of heavy imports (no OpenCV, gpiozero or SQLite) so that every command can catch
them. systemd acts on the status: 2 (config) is not restarted, the others are.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1   # doctor found a FAIL; a sync round failed; scan could not read an image
EXIT_CONFIG = 2         # config or usage: fix the file, restarting will not help
EXIT_GPIO = 3           # the lamps cannot be driven on a Raspberry Pi
EXIT_CAMERA = 4         # no frames: camera missing or gone, video file missing, no readable images
EXIT_DATABASE = 5       # the database cannot be opened or written (disk full, lock, damage, owner)
EXIT_INTERNAL = 70      # a bug (EX_SOFTWARE): one line in the journal, details at DEBUG
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`... | head`), as for SIGPIPE


class KioskFault(Exception):
    label = "error"
    exit_code = EXIT_INTERNAL


class GpioError(KioskFault):
    label = "GPIO error"
    exit_code = EXIT_GPIO


class CameraError(KioskFault):
    label = "camera error"
    exit_code = EXIT_CAMERA


class CameraGone(CameraError):
    """The frame source failed and could not be reopened for longer than allowed."""


class StoreFailing(KioskFault):
    """Check-ins could not be committed for longer than allowed."""
    label = "database error"
    exit_code = EXIT_DATABASE
