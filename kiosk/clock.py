"""The clock adapter: wall time, monotonic time, and whether the kernel clock is NTP-synced."""

from __future__ import annotations

import ctypes
import ctypes.util
import time

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
