"""Blink and sound patterns (kiosk/patterns.py): pure parsing and timing."""

import pytest

from kiosk import patterns
from kiosk.patterns import PatternError


def test_durations_alternate_on_and_off_and_xn_repeats():
    assert patterns.parse("2.0") == (2.0,)
    assert patterns.parse("0.15 0.15 x2") == (0.15, 0.15, 0.15, 0.15)
    assert patterns.parse("0.2 x3") == (0.2, 0.2) * 3  # an odd list repeats its last as off
    assert patterns.parse("") == ()


def test_events_end_dark_and_count_pulses():
    assert patterns.events("0.5 0.2 x2") == [(0.0, True), (0.5, False), (0.7, True), (1.2, False)]
    assert patterns.events("2.0") == [(0.0, True), (2.0, False)]
    assert patterns.pulses("0.5 0.2 x3") == 3 and patterns.duration("0.5 0.2 x3") == pytest.approx(2.1)


def test_scaling_keeps_the_rhythm():
    assert patterns.parse(patterns.scale("0.5 0.2 x3", 0.1)) == pytest.approx((0.05, 0.02) * 3)


@pytest.mark.parametrize(
    "text,message",
    [
        ("fast", "durations in seconds"),
        ("0.1 x", "repeat is x and a whole number"),
        ("x3", "needs durations"),
        ("0.001", "each duration"),
        ("10 10 x2", "at most 30 s"),
        ("0.1 x51", "repeat 1 to 50 times"),
    ],
)
def test_mistakes_say_what_is_wrong(text, message):
    with pytest.raises(PatternError, match=message):
        patterns.parse(text)
