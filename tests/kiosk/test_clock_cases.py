"""A kiosk whose clock is wrong (NTP spoofed, a dead battery, moved by hand), while it holds
the server's signed time from its last bundle: no refusal or expiry turns into an admit, no
record is kept or uploaded past its class, and records the server set aside for a wrong clock
come back by themselves once the clock is right."""

from __future__ import annotations

import time

import pytest

from kiosk.app import Trust
from kiosk.clock import ClockReference
from kiosk.core import protocol
from kiosk.core.decision import Policy, RiskList, decide
from kiosk.core.passes import pass_ref
from kiosk.core.reasons import Outcome
from kiosk.core.timing import CLOCK_TOLERANCE_S, DAY, door_time
from kiosk.store.checkins import CheckinStore
from kiosk.store.sqlitedb import open_db
from testkit import NOW

P = b"\x11" * 16


@pytest.fixture
def decision_for(make_pass, trusted):
    def d(level):
        return decide(
            make_pass(level, pass_id=P), trusted=trusted, risk_list=RiskList(), policy=Policy(), now=NOW
        )

    return d


@pytest.mark.parametrize(
    "local, trusted, passes, risk, record",
    [
        (NOW, None, NOW, NOW, NOW),  # no signed time yet: the kiosk's own
        (NOW, NOW + CLOCK_TOLERANCE_S, NOW, NOW, NOW),  # within the tolerance: its own
        (NOW + 20 * DAY, NOW, NOW + 20 * DAY, NOW, NOW),  # pushed ahead: entries stay, records now
        (NOW - 30 * DAY, NOW, NOW, NOW - 30 * DAY, NOW),  # pushed back: passes expire all the same
    ],
)
def test_each_check_takes_the_stricter_time(local, trusted, passes, risk, record):
    t = door_time(local, trusted)
    assert (t.passes, t.risk, t.record) == (passes, risk, record)
    assert t.clock_off == (trusted is not None and abs(trusted - local) > CLOCK_TOLERANCE_S)


def test_a_moved_clock_turns_no_refusal_or_expiry_into_an_admit(make_pass, trusted):
    listed = RiskList(levels={pass_ref(P): 3}, expires={pass_ref(P): NOW + 14 * DAY})
    text = make_pass(0, pass_id=P, expires=NOW + 60 * DAY)

    def at(local):
        t = door_time(local, NOW)  # the server's signed time says NOW
        return decide(text, trusted=trusted, risk_list=listed, policy=Policy(), now=t.passes, risk_now=t.risk)

    assert at(NOW).outcome is Outcome.DENY
    assert at(NOW + 20 * DAY).outcome is Outcome.DENY  # ahead: the entry would have expired
    expiring = make_pass(0, pass_id=b"\x12" * 16, issued=NOW - 10 * DAY, expires=NOW - DAY)  # expired
    t = door_time(NOW - 30 * DAY, NOW)  # a clock a month behind
    back = decide(
        expiring, trusted=trusted, risk_list=RiskList(), policy=Policy(), now=t.passes, risk_now=t.risk
    )
    assert back.outcome is Outcome.INVALID and back.reason.value == "expired"


def test_a_wrong_clock_keeps_no_record_past_its_class_and_uploads_none_past_it(sealing, decision_for):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    ahead = door_time(NOW + 365 * DAY, NOW)  # a clock a year ahead, the server's time known
    rid = store.record(decision_for(0), now=ahead.record, clock_synced=False)
    delete_after = store.db.execute(
        "SELECT delete_after FROM checkins WHERE record_id = ?", [rid]
    ).fetchone()[0]
    assert delete_after == NOW - NOW % 300 + 28 * DAY  # from when it was written (its bucket), not a year on
    assert store.purge(now=NOW + 28 * DAY) == 1
    old = store.record(decision_for(0), now=NOW - 29 * DAY, clock_synced=True)  # offline for a month
    assert [r["record_id"] for r in store.pending(10, now=NOW)] == []  # past its class: never sent
    assert [r["record_id"] for r in store.pending(10)] == [old]


def test_records_set_aside_for_a_wrong_clock_come_back_once_it_is_right(sealing, decision_for):
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    fast = store.record(decision_for(0), now=NOW + DAY, clock_synced=False)  # a clock a day fast
    other = store.record(decision_for(0), now=NOW, clock_synced=True)
    store.set_aside([fast], reason=f"HTTP 400 {protocol.BAD_CAPTURE_TIME}: too far ahead", now=NOW)
    store.set_aside([other], reason="HTTP 400 malformed: x", now=NOW)

    def back(now):
        return store.requeue_clock_set_aside(
            now=now, code=protocol.BAD_CAPTURE_TIME, future_s=3300, oldest_s=89 * DAY
        )

    assert back(NOW) == 0  # still a day ahead of the server: it would be refused again
    assert back(NOW + DAY) == 1  # its time has come: queued again, by itself
    assert [r["record_id"] for r in store.pending(10)] == [fast]  # the malformed one stays aside


def test_the_server_time_is_carried_on_the_monotonic_clock_within_one_boot():
    ref = ClockReference.taken_now(NOW)
    assert abs(ref.server_now() - NOW) < 5  # moments later, by the monotonic clock
    moved = ClockReference(NOW, time.monotonic() - 3600, ref.boot)
    assert abs(moved.server_now() - (NOW + 3600)) < 5  # an hour of monotonic time later
    assert ClockReference(NOW, time.monotonic(), "another-boot").server_now() is None  # restarted
    assert ClockReference.parse(ref.wire()) == ref and ClockReference.parse("junk") is None


def test_the_door_decides_on_the_stricter_time_and_says_so(sealing, trusted, make_pass, caplog):
    """Through the app loop: a kiosk clock three weeks ahead, the server's signed time known:
    a refused pass stays refused, the record takes the server's time, and the journal says why."""
    from gpiozero.pins.mock import MockFactory

    from kiosk.adapters.signal import Signal
    from kiosk.app import KioskApp
    from kiosk.config import SignalSection
    from testkit import FakeClock

    real = time.time()
    listed = RiskList(levels={pass_ref(P): 3}, expires={pass_ref(P): real + 14 * DAY})
    text = make_pass(0, pass_id=P, issued=real - 3600, expires=real + 30 * DAY)

    class Texts:  # the frames are the texts read (as a 2D scanner's are)
        name, errors = "scanner", 0

        def decode(self, frame):
            return [frame]

    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    signal = Signal(SignalSection().scaled(0.1), pin_factory=MockFactory())
    clock = FakeClock()
    clock.offset = 21 * DAY  # the wall clock moved three weeks ahead; the monotonic one did not
    app = KioskApp(
        source=None,
        decoder=Texts(),
        signal=signal,
        store=store,
        trust=lambda: Trust(issuers=trusted, risk_list=listed, policy=Policy(), server_now=time.time),
        clock=clock,
        hold_s=0.0,
    )
    try:
        with caplog.at_level("ERROR", logger="kiosk"):
            (event,) = app.step(text)
        assert event.decision.outcome is Outcome.DENY  # the entry expires in 14 days: still in force
        captured, synced = store.db.execute("SELECT captured_at, clock_synced FROM checkins").fetchone()
        assert abs(captured - time.time()) < 360 and synced == 0  # the server's time (its bucket), flagged
        assert any("off the server's" in r.getMessage() for r in caplog.records)
    finally:
        signal.close()
