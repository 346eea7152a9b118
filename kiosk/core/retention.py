"""The public rules on how long anything is kept, defined once for both sides (the kiosk, the
server, the committee's commands, and the SQL the database runs, which is given them).

Check-ins are deleted 28 days after capture, 90 when significant (a risk level of 2 or more,
or a refusal). Nothing reaches past the longest retention: a case's window, a case's hold on
a record, a risk entry's life, the period keys a case keeps. A removed risk entry is kept a
while longer as a tombstone so that kiosks holding it learn of its removal by delta.
"""

from __future__ import annotations

from kiosk.core.timing import DAY

NORMAL_DAYS = 28  # a normal check-in, from its capture
SIGNIFICANT_DAYS = 90  # a significant one: the longest retention, which nothing outlives
SIGNIFICANT_LEVEL = 2  # this risk level or more (or a refusal) makes a check-in significant
TOMBSTONE_DAYS = 30  # a removed risk entry, kept for kiosks to catch up by delta
UNTAGGED_DAYS = SIGNIFICANT_DAYS + 1  # counts of untagged records per day (no record outlives them)

HOLD_MAX_S = SIGNIFICANT_DAYS * DAY  # a case holds a record (and its period's key) at most this long
TOMBSTONE_S = TOMBSTONE_DAYS * DAY
