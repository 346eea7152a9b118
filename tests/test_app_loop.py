"""The real app loop on an image source, with gpiozero's MockFactory pins."""

import threading
import time

import cv2
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.app import KioskApp, Trust
from kiosk.clock import SystemClock
from kiosk.config import SignalSection
from kiosk.decision import Policy
from kiosk.decoders import make_decoder
from kiosk.frames import ArraySource, ImageSource
from kiosk.reasons import Outcome
from kiosk.render import camera_frame
from kiosk.signal import Signal
from kiosk.sqlite import open_db
from kiosk.store import CheckinStore

CFG = SignalSection(show_s=0.3, blink_s=0.1, beep_short_s=0.1, beep_long_s=0.25)
RED, AMBER, GREEN, BUZZ = CFG.red_pin, CFG.amber_pin, CFG.green_pin, CFG.buzzer_pin


class FakeClock(SystemClock):
    """Real monotonic time plus an offset the test moves forward (to step past windows)."""
    def __init__(self):
        super().__init__()
        self.offset = 0.0

    def monotonic(self):
        return time.monotonic() + self.offset

    def now(self):
        return time.time() + self.offset

    def synced(self):
        return True


@pytest.fixture
def rig(sealing, trusted):
    factory = MockFactory()
    signal = Signal(CFG, pin_factory=factory)
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    clock = FakeClock()

    def app(source, **kw):
        return KioskApp(source=source, decoder=make_decoder("zxing"), signal=signal, store=store,
                        trust=lambda: Trust(issuers=trusted, policy=Policy()), clock=clock, **kw)
    yield app, factory, store, clock
    signal.close()


def frame(text, seed=0, **kw):
    return camera_frame(text, np.random.default_rng(seed), code_px=220, **kw)


def pin(factory, n):
    return factory.pin(n)


def test_loop_on_image_files_records_and_signals(rig, make_pass, tmp_path):
    import time as _t
    now = int(_t.time())
    app, factory, store, clock = rig
    passes = [make_pass(0, issued=now - 60, expires=now + 3600),
              make_pass(3, issued=now - 60, expires=now + 3600), "https://example.org"]
    for i, text in enumerate([None, passes[0], None, passes[1], None, passes[2]]):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), frame(text, seed=i))
    events = []
    a = app(ImageSource([tmp_path]), on_event=events.append, hold_s=0.0, repeat_window_s=0.0)
    totals = a.run()
    assert [e.decision.outcome for e in events] == [Outcome.ADMIT, Outcome.DENY, Outcome.INVALID]
    assert totals.frames == 6 and totals.recorded == 2 and store.stats()["records"] == 2
    assert store.stats()["invalid_scans"] == 1


def test_green_timing_and_short_beep(rig, make_pass):
    app, factory, store, clock = rig
    now = int(time.time())
    a = app(ArraySource([frame(make_pass(1, issued=now - 60, expires=now + 60))]))
    a.step(frame(None))          # warm the decoder up, then watch the pins
    for n in (GREEN, RED, AMBER, BUZZ):
        pin(factory, n).clear_states()
    a.run()
    time.sleep(CFG.show_s + 0.2)
    g = pin(factory, GREEN)
    assert [s.state for s in g.states] == [False, True, False]
    g.assert_states_and_times([(0.0, False), (0.0, True), (CFG.show_s, False)])
    b = pin(factory, BUZZ)
    assert [s.state for s in b.states] == [False, True, False]
    assert b.states[2].timestamp == pytest.approx(CFG.beep_short_s, abs=0.05)
    assert [s.state for s in pin(factory, RED).states] == [False]
    assert [s.state for s in pin(factory, AMBER).states] == [False]


def test_red_long_beep_and_amber_blinks(rig, make_pass):
    app, factory, store, clock = rig
    now = int(time.time())
    denied = frame(make_pass(3, issued=now - 60, expires=now + 60))
    for n in (RED, AMBER, BUZZ):
        pin(factory, n).clear_states()
    app(ArraySource([denied])).run()
    time.sleep(CFG.show_s + 0.2)
    r, b = pin(factory, RED), pin(factory, BUZZ)
    assert [s.state for s in r.states] == [False, True, False]
    r.assert_states_and_times([(0.0, False), (0.0, True), (CFG.show_s, False)])
    assert b.states[2].timestamp == pytest.approx(CFG.beep_long_s, abs=0.05)

    bad = frame("VC1:NOT-A-REAL-PASS")
    pin(factory, AMBER).clear_states()
    pin(factory, BUZZ).clear_states()
    clock.offset += 60
    app(ArraySource([bad])).run()
    time.sleep(CFG.show_s + 0.3)
    am = pin(factory, AMBER)
    blinks = round(CFG.show_s / (2 * CFG.blink_s))
    assert [s.state for s in am.states] == [False] + [True, False] * blinks
    b = CFG.blink_s
    am.assert_states_and_times([(0.0, False), (0.0, True)] + [(b, False), (b, True)] * (blinks - 1)
                               + [(b, False)])
    assert [s.state for s in pin(factory, BUZZ).states] == [False]          # no beep for amber


def test_commit_happens_before_the_signal(rig, make_pass):
    app, factory, store, clock = rig
    now = int(time.time())
    seen = {}
    a = app(ArraySource([frame(make_pass(0, issued=now - 60, expires=now + 60))]))
    original = a.signal.show

    def show(outcome):
        seen["records_when_shown"] = store.stats()["records"]
        original(outcome)
    a.signal.show = show
    a.run()
    assert seen["records_when_shown"] == 1


def test_same_pass_held_then_shown_again(rig, make_pass):
    app, factory, store, clock = rig
    now = int(time.time())
    p = frame(make_pass(0, issued=now - 60, expires=now + 3600))
    events = []
    a = app(ArraySource([]), on_event=events.append, hold_s=1.0, repeat_window_s=10.0)
    a.step(p)
    a.step(p)                       # still in view: nothing new
    assert len(events) == 1 and events[0].recorded
    clock.offset += 3               # taken away and shown again within the window
    a.step(p)
    assert len(events) == 2 and events[1].repeat and not events[1].recorded
    clock.offset += 20              # a new visit
    a.step(p)
    assert len(events) == 3 and events[2].recorded
    assert store.stats()["records"] == 2


def test_stop_event_ends_the_loop(rig):
    app, factory, store, clock = rig
    empty = frame(None)
    a = app(ArraySource([empty], loop=True))
    stop = threading.Event()
    t = threading.Thread(target=a.run, args=(stop,))
    t.start()
    time.sleep(0.3)
    stop.set()
    t.join(5)
    assert not t.is_alive() and a.totals.frames > 1 and a.totals.scans == 0
