"""Time units and the tolerances between clocks, each defined once for both sides."""

from __future__ import annotations

from datetime import UTC, datetime

DAY = 86_400  # seconds in a day: retention, sealing periods, tag days

# A signed request's timestamp may differ from the server's clock by at most this; beyond it,
# the request is refused as stale (and the kiosk corrects its offset from the server's time).
REQUEST_SKEW_S = 300

# A time-ordered record id (UUIDv7) and its record's capture time must agree within this:
# both come from one clock reading, so only the id's millisecond rounding separates them.
RECORD_ID_SKEW_S = 1.0


def utc_z(ts: float) -> str:
    """A Unix time as people read it: ISO 8601 in UTC to the second, 2026-12-01T08:00:00Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
