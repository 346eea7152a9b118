"""Record ids that carry their capture time: UUID version 7 (RFC 9562), 48 bits of Unix
milliseconds, then 74 random bits. Kiosks made them before issue 33; they now make random
(version 4) ids that say nothing of when, and the server still checks the older ones. The
server keeps records partitioned by capture day, and
an id it can place in time is looked up in that day's partition only, instead of in every
one (the check that refuses another kiosk's record ids). The capture time is no secret from
whoever holds the id: the record beside it carries it in clear."""

from __future__ import annotations

import os
import uuid

from kiosk.core.timing import RECORD_ID_SKEW_S


def time_ordered_id(captured_at: float, *, random_bytes: bytes | None = None) -> str:
    ms = int(captured_at * 1000)
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"capture time {captured_at!r} does not fit a UUIDv7")
    rand = random_bytes if random_bytes is not None else os.urandom(10)
    value = (ms << 80) | int.from_bytes(rand[:10], "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC 9562 variant
    return str(uuid.UUID(int=value))


def id_time(record_id: str) -> float | None:
    """The capture time a version-7 id carries, or None for any other id (version 4 ids of
    older kiosks)."""
    if len(record_id) == 36 and record_id[8] == record_id[13] == record_id[18] == record_id[23] == "-":
        # The canonical form (what the server's schema accepts), read without building a UUID:
        # this runs for every record of every upload.
        if record_id[14] != "7" or record_id[19] not in "89abAB":
            return None
        try:
            return int(record_id[:8] + record_id[9:13], 16) / 1000.0
        except ValueError:
            return None
    try:
        u = uuid.UUID(record_id)
    except ValueError:
        return None
    if u.version != 7 or u.variant != uuid.RFC_4122:
        return None
    return (u.int >> 80) / 1000.0


def placed(record_id: str, captured_at: float) -> bool | None:
    """True: a v7 id whose time is its record's capture time; False: a v7 id that says
    another time (refused: it would hide a record from the check); None: not v7."""
    t = id_time(record_id)
    if t is None:
        return None
    return abs(t - captured_at) <= RECORD_ID_SKEW_S
