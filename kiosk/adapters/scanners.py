"""Dedicated 2D scanners as the kiosk's input, beside or instead of a camera: the scanner
decodes, the kiosk gets the text, and the same decision, record and signal path follows.

- :class:`EvdevScanner`: a USB scanner in keyboard-wedge mode, read through evdev and
  *grabbed*, so its keystrokes never reach a console or a login prompt. Its key events are
  turned into text by :class:`KeyboardWedge` (US layout, as scanners ship), a line per scan.
- :class:`SerialScanner`: a scanner on a serial port or USB CDC-ACM (pyserial), a line per
  scan (CR, LF or both).

Both are frame sources for the app loop whose "frames" are the texts read (a list, empty
when nothing was scanned within ``poll_s``), decoded by :class:`ScannedText`. A scanner
that goes away raises CameraError, so the loop shows amber, retries and, after
``[camera] fail_exit_s``, exits 4 as it does for a camera. evdev and pyserial are imported
only when configured.
"""

from __future__ import annotations

import logging
import select
from typing import Any

from kiosk.errors import CameraError

log = logging.getLogger(__name__)

MAX_LINE = 4096  # a pass is well under 1 KB; longer is junk (it will be amber)

# Linux input event codes (linux/input-event-codes.h: a stable kernel ABI) to characters,
# (plain, with shift), for the US layout scanners type in.
_ROWS = {
    2: "1!",
    3: "2@",
    4: "3#",
    5: "4$",
    6: "5%",
    7: "6^",
    8: "7&",
    9: "8*",
    10: "9(",
    11: "0)",
    12: "-_",
    13: "=+",
    16: "qQ",
    17: "wW",
    18: "eE",
    19: "rR",
    20: "tT",
    21: "yY",
    22: "uU",
    23: "iI",
    24: "oO",
    25: "pP",
    26: "[{",
    27: "]}",
    30: "aA",
    31: "sS",
    32: "dD",
    33: "fF",
    34: "gG",
    35: "hH",
    36: "jJ",
    37: "kK",
    38: "lL",
    39: ";:",
    40: "'\"",
    41: "`~",
    43: "\\|",
    44: "zZ",
    45: "xX",
    46: "cC",
    47: "vV",
    48: "bB",
    49: "nN",
    50: "mM",
    51: ",<",
    52: ".>",
    53: "/?",
    57: "  ",
    # keypad (some scanners send digits there)
    71: "77",
    72: "88",
    73: "99",
    74: "--",
    75: "44",
    76: "55",
    77: "66",
    78: "++",
    79: "11",
    80: "22",
    81: "33",
    82: "00",
    83: "..",
    55: "**",
    98: "//",
}
KEYMAP = {code: (pair[0], pair[1]) for code, pair in _ROWS.items()}
EV_KEY = 1
KEY_ENTER, KEY_KPENTER, KEY_TAB = 28, 96, 15
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
DOWN, UP, REPEAT = 1, 0, 2


class KeyboardWedge:
    """Key events in, scanned lines out. Pure: ``feed(type, code, value)`` returns the text
    of a completed scan (on Enter) or None."""

    def __init__(self):
        self._chars: list[str] = []
        self._shift = 0
        self._caps = False
        self.unknown_keys = 0

    def feed(self, ev_type: int, code: int, value: int) -> str | None:
        if ev_type != EV_KEY:
            return None
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self._shift = max(0, self._shift + (1 if value == DOWN else -1 if value == UP else 0))
            return None
        if value != DOWN:  # key up; auto-repeat never comes from a scanner
            return None
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in (KEY_ENTER, KEY_KPENTER, KEY_TAB):
            line, self._chars = "".join(self._chars), []
            return line or None
        pair = KEYMAP.get(code)
        if pair is None:
            self.unknown_keys += 1  # a key no pass contains: the text will be amber
            if len(self._chars) < MAX_LINE:  # bounded, whatever is typed without an Enter
                self._chars.append("\ufffd")
            return None
        shifted = bool(self._shift)
        if self._caps and pair[0].isalpha():
            shifted = not shifted
        if len(self._chars) < MAX_LINE:
            self._chars.append(pair[1] if shifted else pair[0])
        return None


class ScannedText:
    """The 'decoder' for scanner sources: their frames are already the texts read."""

    name = "scanner"
    errors = 0

    def decode(self, frame) -> list[str]:
        return list(frame) if isinstance(frame, list) else []


class EvdevScanner:
    def __init__(self, path: str, *, grab: bool = True, poll_s: float = 0.1, evdev: Any = None):
        if evdev is None:
            try:
                import evdev  # type: ignore[no-redef]  # apt: python3-evdev; pip: evdev
            except ImportError as e:
                raise CameraError(
                    "evdev is not installed (on Raspberry Pi OS: apt install python3-evdev)"
                ) from e
        if not path:
            raise CameraError(
                "[camera] scanner_device is empty: name the scanner's event device "
                "(ls /dev/input/by-id/*-event-kbd)"
            )
        try:
            self._dev = evdev.InputDevice(path)
            if grab:
                self._dev.grab()  # its keystrokes go to the kiosk only
        except OSError as e:
            raise CameraError(
                f"cannot open scanner {path}: {e.strerror or e} (is it plugged in? "
                "is the kiosk user in the input group?)"
            ) from None
        self._wedge, self._poll_s, self._path = KeyboardWedge(), poll_s, path

    def read(self) -> list[str]:
        try:
            ready, _, _ = select.select([self._dev.fd], [], [], self._poll_s)
            if not ready:
                return []
            lines = []
            for ev in self._dev.read():
                line = self._wedge.feed(ev.type, ev.code, ev.value)
                if line is not None:
                    lines.append(line)
            return lines
        except BlockingIOError:
            return []
        except OSError as e:  # unplugged: ENODEV
            raise CameraError(f"scanner {self._path} gone: {e.strerror or e}") from None

    def close(self) -> None:
        try:
            self._dev.ungrab()
        except OSError:
            pass
        self._dev.close()


class SerialScanner:
    def __init__(self, port: str, *, baud: int = 9600, poll_s: float = 0.1, serial: Any = None):
        if serial is None:
            try:
                import serial  # type: ignore[no-redef]  # pyserial
            except ImportError as e:
                raise CameraError("pyserial is not installed (pip install pyserial)") from e
        if not port:
            raise CameraError(
                "[camera] scanner_device is empty: name the scanner's serial port (ls /dev/serial/by-id/)"
            )
        try:
            self._port = serial.Serial(port, baudrate=baud, timeout=poll_s)
        except (OSError, serial.SerialException) as e:
            raise CameraError(
                f"cannot open scanner {port}: {e} (is it plugged in? is the kiosk user in the dialout group?)"
            ) from None
        self._serial_error = serial.SerialException
        self._buf = bytearray()
        self._name = port

    def read(self) -> list[str]:
        try:
            chunk = self._port.read(max(1, self._port.in_waiting))
        except (OSError, self._serial_error) as e:
            raise CameraError(f"scanner {self._name} gone: {e}") from None
        self._buf += chunk
        lines = []
        while True:
            cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                break
            line, self._buf = bytes(self._buf[:cut]), self._buf[cut + 1 :]
            if line:
                lines.append(line.decode("utf-8", "replace"))
        if len(self._buf) > MAX_LINE:  # no end of line in sight: junk, shown amber
            lines.append(bytes(self._buf[:MAX_LINE]).decode("utf-8", "replace"))
            self._buf.clear()
        return lines

    def close(self) -> None:
        self._port.close()
