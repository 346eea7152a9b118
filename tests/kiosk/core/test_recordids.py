"""Record ids that carry their capture time (UUIDv7), as kiosks before issue 33 made them:
checked by the server still. A kiosk now makes random ids, which say nothing of when."""

import time
import uuid

from kiosk.core.recordids import id_time, placed, time_ordered_id


def test_a_v7_id_carries_its_capture_time_to_the_millisecond():
    now = 1_790_000_000.123456
    rid = time_ordered_id(now)
    u = uuid.UUID(rid)
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert id_time(rid) == 1_790_000_000.123
    assert placed(rid, now) is True and placed(rid, now + 3600) is False
    assert placed(str(uuid.uuid4()), now) is None and id_time("not a uuid") is None
    assert len({time_ordered_id(now) for _ in range(1000)}) == 1000  # random below the time


def test_ids_sort_by_capture_time():
    ids = [time_ordered_id(1_790_000_000 + i * 0.5) for i in range(50)]
    assert sorted(ids) == ids


def test_the_kiosk_makes_random_ids_now(sealing, make_pass, trusted):
    from kiosk.core.decision import Policy, RiskList, decide
    from kiosk.store.checkins import CheckinStore
    from kiosk.store.sqlitedb import open_db

    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    now = time.time()
    d = decide(
        make_pass(0, issued=int(now) - 60, expires=int(now) + 60),
        trusted=trusted,
        risk_list=RiskList(),
        policy=Policy(),
        now=now,
    )
    rid = store.record(d, now=now, clock_synced=True)
    assert uuid.UUID(rid).version == 4 and placed(rid, now) is None and id_time(rid) is None
