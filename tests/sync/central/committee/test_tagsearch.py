"""The trace's tags in bulk are exactly the kiosks' own: per venue and day, inline and spread
over processes (issue 34)."""

import random

from kiosk.core.sealkeys import search_tag, venue_tag_key
from sync.central.committee import tagsearch

DAY = 86_400


def world(days=3, kiosks=40):
    rng = random.Random(34)
    keys = {(d * DAY, (d + 1) * DAY): rng.randbytes(32) for d in range(days)}
    return keys, [f"k-{rng.getrandbits(64):016x}" for _ in range(kiosks)], rng.randbytes(16)


def kiosks_own(keys, kiosk_ids, pass_id):
    return {p: [search_tag(venue_tag_key(k, kid), pass_id) for kid in kiosk_ids] for p, k in keys.items()}


def test_the_bulk_tags_are_what_each_kiosk_computes():
    keys, kiosk_ids, pass_id = world()
    assert tagsearch.pass_tags(keys, kiosk_ids, pass_id) == kiosks_own(keys, kiosk_ids, pass_id)
    assert tagsearch.pass_tags({}, kiosk_ids, pass_id) == {}


def test_spread_over_processes_they_are_the_same(monkeypatch):
    keys, kiosk_ids, pass_id = world()
    monkeypatch.setattr(tagsearch, "INLINE_TAGS", 1)  # as a national trace does
    assert tagsearch.pass_tags(keys, kiosk_ids, pass_id, workers=2) == kiosks_own(keys, kiosk_ids, pass_id)
