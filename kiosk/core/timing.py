"""Time units and the tolerances between clocks, each defined once for both sides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

DAY = 86_400  # seconds in a day: retention, sealing periods, tag days

# A signed request's timestamp may differ from the server's clock by at most this; beyond it,
# the request is refused as stale (and the kiosk corrects its offset from the server's time).
REQUEST_SKEW_S = 300

# A time-ordered record id (UUIDv7) and its record's capture time must agree within this:
# both come from one clock reading, so only the id's millisecond rounding separates them.
RECORD_ID_SKEW_S = 1.0


# What anyone holding a record in clear learns of when it was made (the kiosk's columns, the
# server's): its 5-minute bucket. Tracing reads time within +-30 minutes, so a bucket of 5
# costs it about 8% more records opened (10 minutes would cost about 17%); the exact time is
# only inside the sealed payload ("at"), which the committee reads after opening.
TIME_BUCKET_S = 300


def time_bucket(ts: float) -> float:
    """The start of the 5-minute bucket ``ts`` falls in."""
    return float(int(ts // TIME_BUCKET_S) * TIME_BUCKET_S)


def utc_z(ts: float) -> str:
    """A Unix time as people read it: ISO 8601 in UTC to the second, 2026-12-01T08:00:00Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The kiosk's clock and the server's (as the freshness statement of its last bundle gives it,
# signed, carried forward on the monotonic clock) may disagree by this much before the door
# stops trusting its own clock alone: beyond it, each check takes the time that is stricter for
# it, and records take the server's.
CLOCK_TOLERANCE_S = 600


@dataclass(frozen=True)
class DoorTime:
    """The times one scan is decided and recorded at. With the kiosk's clock far from the
    server's (NTP spoofed, a dead RTC battery), a refusal or an expiry must not turn into an
    admit, and no record may be kept longer than its class allows from when it was written."""

    passes: float  # a pass's validity: the later time (expired by either clock is expired)
    risk: float  # a risk entry's expiry: the earlier time (an entry in force stays in force)
    record: float  # what the record says and its retention counts from: the server's time
    off_by: float | None = None  # server minus kiosk, when beyond the tolerance

    @property
    def clock_off(self) -> bool:
        return self.off_by is not None


def door_time(local: float, trusted: float | None, *, tolerance_s: float = CLOCK_TOLERANCE_S) -> DoorTime:
    """``local``: the kiosk's wall clock; ``trusted``: the server's time as the last signed
    bundle gives it now (None: no bundle yet, or the kiosk restarted since)."""
    if trusted is None or abs(trusted - local) <= tolerance_s:
        return DoorTime(local, local, local)
    return DoorTime(max(local, trusted), min(local, trusted), trusted, trusted - local)
