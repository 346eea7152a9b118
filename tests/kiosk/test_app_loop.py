"""The real app loop on an image source, with gpiozero's MockFactory pins."""

import threading
import time

import cv2
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk import patterns
from kiosk.adapters.decoders import make_decoder
from kiosk.adapters.frames import ArraySource, ImageSource
from kiosk.adapters.signal import Signal
from kiosk.app import KioskApp, Trust
from kiosk.config import SignalSection
from kiosk.core.decision import Policy
from kiosk.core.reasons import Outcome
from kiosk.store.checkins import CheckinStore
from kiosk.store.sqlitedb import open_db
from testkit import FakeClock
from workbench.render import camera_frame

CFG = SignalSection().scaled(0.3)
RED, AMBER, GREEN, BUZZ = CFG.red_pin, CFG.amber_pin, CFG.green_pin, CFG.buzzer_pin


@pytest.fixture
def rig(sealing, trusted):
    factory = MockFactory()
    signal = Signal(CFG, pin_factory=factory)
    store = CheckinStore(open_db(None), sealing=sealing, venue_id="v")
    clock = FakeClock()

    def app(source, **kw):
        return KioskApp(
            source=source,
            decoder=make_decoder("zxing"),
            signal=signal,
            store=store,
            trust=lambda: Trust(issuers=trusted, policy=Policy()),
            clock=clock,
            **kw,
        )

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
    passes = [
        make_pass(0, issued=now - 60, expires=now + 3600),
        make_pass(3, issued=now - 60, expires=now + 3600),
        "https://example.org",
    ]
    for i, text in enumerate([None, passes[0], None, passes[1], None, passes[2]]):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), frame(text, seed=i))
    events = []
    a = app(ImageSource([tmp_path]), on_event=events.append, hold_s=0.0, repeat_window_s=0.0)
    totals = a.run()
    assert [e.decision.outcome for e in events] == [Outcome.ADMIT, Outcome.DENY, Outcome.INVALID]
    assert totals.frames == 6 and totals.recorded == 2 and store.stats()["records"] == 2
    assert store.stats()["invalid_scans"] == 1


def played(pin_) -> list[tuple[float, bool]]:
    """A mock pin's changes as (seconds from the first switch-on, state), from its history."""
    states = pin_.states
    on = [i for i, st in enumerate(states) if st.state][:1]
    if not on:
        return []
    t, out = 0.0, []
    for st in states[on[0] :]:
        t += st.timestamp if out else 0.0
        out.append((t, st.state))
    return out


def assert_plays(pin_, pattern_text):
    want = patterns.events(pattern_text)
    got = played(pin_)
    assert [on for _, on in got] == [on for _, on in want], (got, want)
    for (tg, _), (tw, _) in zip(got, want):
        assert tg == pytest.approx(tw, abs=0.06)


@pytest.mark.parametrize("outcome", [Outcome.ADMIT, Outcome.EXPOSED, Outcome.DENY, Outcome.INVALID])
def test_each_outcome_plays_its_own_lamp_and_sound_pattern(rig, make_pass, outcome):
    app, factory, store, clock = rig
    now = int(time.time())
    text = {
        Outcome.ADMIT: make_pass(0, issued=now - 60, expires=now + 60),
        Outcome.EXPOSED: make_pass(1, issued=now - 60, expires=now + 60),
        Outcome.DENY: make_pass(3, issued=now - 60, expires=now + 60),
        Outcome.INVALID: "VC1:NOT-A-REAL-PASS",
    }[outcome]
    a = app(ArraySource([frame(text)]))
    a.step(frame(None))  # warm the decoder up, then watch the pins
    for n in (GREEN, RED, AMBER, BUZZ):
        pin(factory, n).clear_states()
    a.run()
    lamp_pin, lamp, sound = {
        Outcome.ADMIT: (GREEN, CFG.admit_lamp, CFG.admit_sound),
        Outcome.EXPOSED: (GREEN, CFG.exposed_lamp, CFG.exposed_sound),
        Outcome.DENY: (RED, CFG.deny_lamp, CFG.deny_sound),
        Outcome.INVALID: (AMBER, CFG.invalid_lamp, CFG.invalid_sound),
    }[outcome]
    time.sleep(max(patterns.duration(lamp), patterns.duration(sound)) + 0.3)
    assert_plays(pin(factory, lamp_pin), lamp)
    assert_plays(pin(factory, BUZZ), sound)
    for other in {GREEN, RED, AMBER} - {lamp_pin}:  # no other lamp lit at all
        assert not any(st.state for st in pin(factory, other).states)


def test_default_patterns_differ_without_colour():
    """What a colour-blind visitor has: the rhythm of a lamp and of the buzzer. The defaults
    give each outcome a different count of flashes and of beeps."""
    d = SignalSection()
    lamps = [patterns.pulses(x) for x in (d.admit_lamp, d.deny_lamp, d.invalid_lamp, d.exposed_lamp)]
    sounds = [patterns.pulses(x) for x in (d.admit_sound, d.deny_sound, d.invalid_sound, d.exposed_sound)]
    assert len(set(lamps)) == 4 and len(set(sounds)) == 4, (lamps, sounds)
    assert lamps[0] == 1 and sounds[0] == 1  # enter: one steady light, one beep


def test_a_new_signal_cuts_the_one_still_playing():
    factory = MockFactory()
    sig = Signal(SignalSection(), pin_factory=factory)
    sig.show(Outcome.DENY)
    time.sleep(0.05)
    sig.show(Outcome.ADMIT)
    time.sleep(0.3)
    assert not pin(factory, RED).state and pin(factory, GREEN).state
    sig.close()


def test_commit_happens_before_the_signal(rig, make_pass):
    app, factory, store, clock = rig
    now = int(time.time())
    seen = {}
    a = app(ArraySource([frame(make_pass(0, issued=now - 60, expires=now + 60))]))
    original = a.signal.show

    def show(outcome, *, level=0):
        seen["records_when_shown"] = store.stats()["records"]
        original(outcome, level=level)

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
    a.step(p)  # still in view: nothing new
    assert len(events) == 1 and events[0].recorded
    clock.offset += 3  # taken away and shown again within the window
    a.step(p)
    assert len(events) == 2 and events[1].repeat and not events[1].recorded
    clock.offset += 20  # a new visit
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
