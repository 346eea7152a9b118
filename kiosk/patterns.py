"""Blink and sound patterns: what tells outcomes apart without relying on colour.

A pattern is written as durations in seconds, alternately on and off, starting on, with an
optional ``xN`` at the end to play it N times: ``"2.0"`` is one steady 2-second light,
``"0.15 0.15 x6"`` six fast flashes, ``"0.4 0.2 x3"`` three long beeps. ``""`` is nothing.
Pure: no GPIO here (kiosk.adapters.signal plays them).
"""

from __future__ import annotations

MAX_TOTAL_S = 30.0
MIN_STEP_S = 0.02


class PatternError(ValueError):
    pass


def parse(text: str) -> tuple[float, ...]:
    """The flat on/off durations of a pattern; PatternError names what is wrong."""
    words = text.split()
    if not words:
        return ()
    times = 1
    if words[-1].lower().startswith("x"):
        try:
            times = int(words[-1][1:])
        except ValueError:
            raise PatternError(f"{words[-1]!r}: a repeat is x and a whole number, like x3") from None
        if not 1 <= times <= 50:
            raise PatternError(f"{words[-1]!r}: repeat 1 to 50 times")
        words = words[:-1]
        if not words:
            raise PatternError("a repeat needs durations before it")
    try:
        steps = [float(w) for w in words]
    except ValueError:
        raise PatternError(f'{text!r}: durations in seconds, like "0.2 0.1 x3"') from None
    if any(not MIN_STEP_S <= s <= MAX_TOTAL_S for s in steps):
        raise PatternError(f"{text!r}: each duration must be {MIN_STEP_S} to {MAX_TOTAL_S} s")
    if times > 1 and len(steps) % 2:
        steps.append(steps[-1])  # "0.2 x3": on 0.2, off 0.2, three times
    flat = tuple(steps * times)
    if sum(flat) > MAX_TOTAL_S:
        raise PatternError(f"{text!r}: lasts {sum(flat):.1f} s, at most {MAX_TOTAL_S:.0f} s")
    return flat


def events(text: str) -> list[tuple[float, bool]]:
    """(seconds from start, on?) for each change, ending off."""
    out, t = [], 0.0
    for i, step in enumerate(parse(text)):
        out.append((t, i % 2 == 0))
        t += step
    if out and out[-1][1]:
        out.append((t, False))
    return _merge(out)


def _merge(evts: list[tuple[float, bool]]) -> list[tuple[float, bool]]:
    merged: list[tuple[float, bool]] = []
    for e in evts:
        if merged and merged[-1][1] == e[1]:
            continue
        merged.append(e)
    return merged


def duration(text: str) -> float:
    return sum(parse(text))


def scale(text: str, factor: float) -> str:
    """The same rhythm, ``factor`` times as long (tests and the demo play it faster)."""
    steps = parse(text)
    return " ".join(f"{max(MIN_STEP_S, s * factor):g}" for s in steps)


def pulses(text: str) -> int:
    """How many times it switches on: what a visitor counts."""
    return sum(1 for _, on in events(text) if on)
