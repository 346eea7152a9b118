"""The clock adapter: wall time, monotonic time, and whether the kernel clock is NTP-synced."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised (STA_UNSYNC)


class SystemClock:
    def __init__(self):
        self._libc = None
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            pass
        self._cache: tuple[float, bool] | None = None

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        """True when an NTP daemon disciplines the clock (what timedatectl calls
        'System clock synchronized'): adjtimex(2) answers other than TIME_ERROR.
        Asked at most once a minute."""
        m = time.monotonic()
        if self._cache and m - self._cache[0] < 60:
            return self._cache[1]
        ok = False
        if self._libc is not None:
            buf = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0, read only
            try:
                ok = self._libc.adjtimex(buf) not in (-1, TIME_ERROR)
            except (AttributeError, OSError):
                ok = False
        self._cache = (m, ok)
        return ok


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot of the machine (the monotonic clock counts from it)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ClockReference:
    """The server's time as its last signed bundle gave it (the freshness statement's issued-at,
    signed by the bundle key), carried forward on the monotonic clock, which no change of the
    wall clock moves, and shared by the kiosk's processes; until the machine restarts."""

    server: float
    mono: float
    boot: str

    @classmethod
    def taken_now(cls, server_time: float) -> ClockReference:
        return cls(float(server_time), time.monotonic(), boot_id())

    def server_now(self) -> float | None:
        if not self.boot or self.boot != boot_id():
            return None
        return self.server + (time.monotonic() - self.mono)

    def wire(self) -> str:
        return json.dumps({"server": self.server, "mono": self.mono, "boot": self.boot})

    @classmethod
    def parse(cls, text: str | None) -> ClockReference | None:
        try:
            d = json.loads(text) if text else None
            return cls(float(d["server"]), float(d["mono"]), str(d["boot"])) if isinstance(d, dict) else None
        except (ValueError, KeyError, TypeError):
            return None
