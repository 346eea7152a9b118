"""The signal at the door: gpiozero TrafficLights and an optional Buzzer.

green (+ one short beep) = enter, red (+ long beep) = refused, amber blinking = see staff.
The pin factory is handed in (gpiozero's own ``pin_factory=``); where the machine has no GPIO,
:func:`make_pin_factory` falls back to gpiozero's MockFactory and the signal shows in the log.
"""

from __future__ import annotations

import logging

from gpiozero import Buzzer, TrafficLights

from kiosk.config import SignalSection
from kiosk.reasons import Outcome

log = logging.getLogger(__name__)


def make_pin_factory(name: str = "auto"):
    """Returns (factory, is_mock)."""
    from gpiozero.pins.mock import MockFactory
    if name == "mock":
        return MockFactory(), True
    candidates = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
                  "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
                  "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
                  "native": ("gpiozero.pins.native", "NativeFactory")}
    names = list(candidates) if name == "auto" else [name]
    errors = []
    for n in names:
        module, cls = candidates[n]
        try:
            import importlib
            return getattr(importlib.import_module(module), cls)(), False
        except Exception as e:  # missing library, not a Pi, no /dev/gpiomem ...
            errors.append(f"{n}: {type(e).__name__}")
    if name != "auto":
        raise RuntimeError(f"GPIO pin factory {name!r} unavailable ({'; '.join(errors)})")
    log.warning("no GPIO on this machine: using mock pins, the signal shows in the log only")
    return MockFactory(), True


class Signal:
    def __init__(self, cfg: SignalSection, *, pin_factory, echo=None):
        self.cfg = cfg
        self.lights = TrafficLights(red=cfg.red_pin, amber=cfg.amber_pin, green=cfg.green_pin,
                                    pin_factory=pin_factory)
        self.buzzer = Buzzer(cfg.buzzer_pin, pin_factory=pin_factory) if cfg.buzzer else None
        self.echo = echo  # optional callable(str): where mock pins show what a person would see

    def show(self, outcome: Outcome) -> None:
        """Start the signal for ``outcome`` and return at once (gpiozero times it in the
        background); a new signal replaces one still showing."""
        c = self.cfg
        self.lights.off()
        if self.buzzer:
            self.buzzer.off()
        if outcome is Outcome.ADMIT:
            self.lights.green.blink(on_time=c.show_s, off_time=0, n=1)
            self._beep(c.beep_short_s)
        elif outcome is Outcome.DENY:
            self.lights.red.blink(on_time=c.show_s, off_time=0, n=1)
            self._beep(c.beep_long_s)
        else:
            self.lights.amber.blink(on_time=c.blink_s, off_time=c.blink_s,
                                    n=max(1, round(c.show_s / (2 * c.blink_s))))
        colour = {Outcome.ADMIT: "GREEN", Outcome.DENY: "RED", Outcome.INVALID: "AMBER"}[outcome]
        log.info("signal %s (%s)", colour, outcome.value)
        if self.echo:
            self.echo(colour)

    def _beep(self, seconds: float) -> None:
        if self.buzzer:
            self.buzzer.beep(on_time=seconds, off_time=0, n=1)

    def self_test(self, step_s: float = 0.3) -> None:
        """Each lamp in turn, blocking: for `kiosk doctor` and start-up."""
        for led in (self.lights.red, self.lights.amber, self.lights.green):
            led.blink(on_time=step_s, off_time=0, n=1, background=False)
        if self.buzzer:
            self.buzzer.beep(on_time=0.05, off_time=0, n=1, background=False)

    def close(self) -> None:
        self.lights.close()
        if self.buzzer:
            self.buzzer.close()
