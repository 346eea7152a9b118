"""The uploader's bookkeeping in the kiosk's state table, under typed keys: what it last heard
from the server and when, which the health summary reports and doctor shows. (What the kiosk
*trusts* is :mod:`kiosk.trust`'s alone, under its own keys.)"""

from __future__ import annotations

from enum import StrEnum


class SyncKey(StrEnum):
    SERVER_CLOCK_OFFSET = "server_clock_offset"  # seconds the server's clock is ahead of ours
    BUNDLE_ETAG = "bundle_etag"  # the ETag of the bundle held (asked again with If-None-Match)
    BUNDLE_CHECKED_AT = "bundle_checked_at"  # when the server last answered a bundle poll
    BUNDLE_VERSION = "bundle_version"  # the risk-list version of the bundle held
    BUNDLE_ISSUED_AT = "bundle_issued_at"  # when the server issued it
    BUNDLE_ERROR = "bundle_error"  # why the last bundle was refused ("" when it was taken)
    LAST_SYNC_AT = "last_sync_at"  # the last round that ended well
    LAST_SYNC_ERROR = "last_sync_error"  # what the last round that failed said ("" after a good one)
    LAST_SYNC_ERROR_AT = "last_sync_error_at"
    HEALTH_SENT_AT = "health_sent_at"  # the time of the last health summary sent
