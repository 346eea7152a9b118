"""The search tags one pass would carry at every venue on every day of a window, in bulk
(issue 34): a trace at 155,000 venues over 15 days needs 2.3 million of them.

Each is exactly what a kiosk computes (kiosk.core.sealkeys: the venue's key by HKDF-SHA256 of
the day's key with the kiosk id, then an HMAC of the pass id), made cheaper by doing once what
repeats: HKDF's extract step once a day (cryptography's HKDF.extract), its expand step per
venue (HKDFExpand), the HMAC by the standard library's one-shot ``hmac.digest``. That is 2 us
a tag against 5 for sealkeys.venue_tags; the days then go to separate processes (one task a
day), so the cores of the committee's machine share the work. Small searches stay inline.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from kiosk.core.sealkeys import TAG_CONTEXT, VENUE_TAG_INFO
from kiosk.core.timing import time_bucket

Period = tuple[float, float]
INLINE_TAGS = 200_000  # fewer than this: computed here (starting processes costs more)


def day_tags(day_key: bytes, kiosk_ids: Sequence[str], pass_id: bytes) -> list[str]:
    """The pass's tag at each kiosk on one day: sealkeys.search_tag(venue_tag_key(day_key,
    kiosk), pass_id), for every kiosk."""
    prk = HKDF.extract(hashes.SHA256(), None, day_key)
    message = TAG_CONTEXT + pass_id
    out = []
    for kiosk_id in kiosk_ids:
        venue_key = HKDFExpand(hashes.SHA256(), 32, VENUE_TAG_INFO + kiosk_id.encode()).derive(prk)
        out.append(hmac.digest(venue_key, message, "sha256").hex()[:32])
    return out


def _task(args: tuple[bytes, Sequence[str], bytes]) -> list[str]:
    return day_tags(*args)


def pass_tags(
    day_keys: Mapping[Period, bytes], kiosk_ids: Sequence[str], pass_id: bytes, *, workers: int | None = None
) -> dict[Period, list[str]]:
    """(valid_from, valid_to) of each day -> the pass's tags at ``kiosk_ids`` that day, in
    that order. ``workers``: processes (default: the machine's cores; 1 computes inline)."""
    periods = sorted(day_keys)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(periods) < 2 or len(periods) * len(kiosk_ids) < INLINE_TAGS:
        return {p: day_tags(day_keys[p], kiosk_ids, pass_id) for p in periods}
    # spawned, not forked: the caller may hold threads (a database pool) that a fork would copy
    with ProcessPoolExecutor(min(workers, len(periods)), mp_context=get_context("spawn")) as pool:
        tags = pool.map(_task, [(day_keys[p], kiosk_ids, pass_id) for p in periods])
        return dict(zip(periods, tags, strict=True))


def records_of_pass(storage, tag_keys: Mapping[float, tuple[float, bytes]], kiosk_ids: Sequence[str],
                    pass_id: bytes, start: float, end: float) -> list:  # fmt: skip
    """The records carrying this pass's tag at any of these kiosks on the days of [start, end)
    (``tag_keys``: valid_from -> (valid_to, key), as keyring.tag_keys gives them), looked up
    from the 5-minute bucket that holds ``start``."""
    days = {(s, e): key for s, (e, key) in tag_keys.items() if s < end and e > start}
    return storage.records_by_tags(pass_tags(days, kiosk_ids, pass_id), time_bucket(start), end)
