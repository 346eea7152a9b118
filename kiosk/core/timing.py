"""Time units and the tolerances between clocks, each defined once for both sides."""

from __future__ import annotations

DAY = 86_400  # seconds in a day: retention, sealing periods, tag days

# A signed request's timestamp may differ from the server's clock by at most this; beyond it,
# the request is refused as stale (and the kiosk corrects its offset from the server's time).
REQUEST_SKEW_S = 300

# A time-ordered record id (UUIDv7) and its record's capture time must agree within this:
# both come from one clock reading, so only the id's millisecond rounding separates them.
RECORD_ID_SKEW_S = 1.0
