"""The signal at the door: gpiozero TrafficLights and an optional Buzzer.

Each outcome has its own lamp and its own rhythm, on the lamp and on the buzzer
(``[signal] *_lamp``, ``*_sound``: kiosk/patterns.py): by default enter is green steady
and one short beep, enter-and-get-tested (exposed) is green long-short twice and three
pips then a long tone, refused is red flashing fast and three long beeps, see staff is amber
blinking slowly and two short pips; a visitor who cannot tell red from green can still
tell them apart (and an optional screen says it in words: kiosk/screen.py).
The pin factory is handed in (gpiozero's own ``pin_factory=``). On a Raspberry Pi the real
pins are driven or :class:`GpioError` says why (the kiosk then exits non-zero); gpiozero's
MockFactory is used only where the machine has no GPIO at all, or where the config asks for
it. Nothing here logs which signal was shown: that would put decisions in the journal.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero import Buzzer, TrafficLights

from kiosk.config import SignalSection
from kiosk.core.reasons import Outcome
from kiosk.errors import GpioError
from kiosk.patterns import events

log = logging.getLogger(__name__)


PI_MODEL = Path("/proc/device-tree/model")
# For tests and checks only: the board's model as the probe should read it ("Raspberry Pi 4
# Model B", or "none"), instead of the device tree. Doctor warns while it is set.
MODEL_OVERRIDE = "KIOSK_HARDWARE_MODEL"


def hardware_model(model_file: Path = PI_MODEL) -> str:
    """The board's model from the device tree ("" where there is none), or the override."""
    override = os.environ.get(MODEL_OVERRIDE)
    if override is not None:
        return "" if override.strip().lower() == "none" else override
    try:
        return model_file.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return ""


def is_raspberry_pi(model_file: Path = PI_MODEL) -> bool:
    return "Raspberry Pi" in hardware_model(model_file)


def make_pin_factory(
    name: str = "auto", *, on_pi: bool | None = None, importer: Callable[[str], Any] | None = None
):
    """Returns (factory, is_mock). ``on_pi``: whether this is a Raspberry Pi (the probe's
    answer when None); there, "auto" never falls back to mock pins. ``importer``: how a pin
    library's module is imported (tests hand in one that fails)."""
    import importlib

    from gpiozero.pins.mock import MockFactory

    load = importer or importlib.import_module

    if name == "mock":
        return MockFactory(), True
    candidates = {
        "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
        "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
        "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
        "native": ("gpiozero.pins.native", "NativeFactory"),
    }
    names = list(candidates) if name == "auto" else [name]
    errors = []
    for n in names:
        module, cls = candidates[n]
        try:
            return getattr(load(module), cls)(), False
        except Exception as e:  # missing library, not a Pi, no /dev/gpiomem ...
            errors.append(f"{n}: {type(e).__name__}")
    if name != "auto":
        raise GpioError(
            f"GPIO pin factory {name!r} unavailable ({'; '.join(errors)}): "
            "install python3-lgpio, check the gpio group"
        )
    if is_raspberry_pi() if on_pi is None else on_pi:
        raise GpioError(
            f"this is a Raspberry Pi but no GPIO library could drive its pins "
            f"({'; '.join(errors)}): apt install python3-lgpio, and run as a member "
            "of the gpio group with a writable working directory"
        )
    log.warning("no GPIO on this machine: using mock pins (no lamps, no buzzer)")
    return MockFactory(), True


# The demo's stand-in for the lamps: each outcome's lamp and rhythm in words.
ECHO = {
    Outcome.ADMIT: "GREEN",
    Outcome.EXPOSED: "GREEN-TESTED (long-short: enter, and get tested)",
    Outcome.DENY: "RED",
    Outcome.INVALID: "AMBER",
}


class Signal:
    def __init__(self, cfg: SignalSection, *, pin_factory, echo=None, screen=None):
        self.cfg = cfg
        self.screen = screen  # optional kiosk.adapters.screen.Screen: the same outcome in words
        try:
            self.lights = TrafficLights(
                red=cfg.red_pin, amber=cfg.amber_pin, green=cfg.green_pin, pin_factory=pin_factory
            )
            self.buzzer = Buzzer(cfg.buzzer_pin, pin_factory=pin_factory) if cfg.buzzer else None
        except Exception as e:  # pin in use, no permission, no such pin ...
            raise GpioError(
                f"cannot drive GPIO pins {cfg.red_pin}, {cfg.amber_pin}, "
                f"{cfg.green_pin}{f', {cfg.buzzer_pin}' if cfg.buzzer else ''}: "
                f"{type(e).__name__}: {e}"
            ) from None
        self.echo = echo  # optional callable(str): the demo's stand-in for the lamps

    def patterns(self, outcome: Outcome):
        """(lamp, lamp pattern, sound pattern) for an outcome."""
        c = self.cfg
        return {
            Outcome.ADMIT: (self.lights.green, c.admit_lamp, c.admit_sound),
            Outcome.EXPOSED: (self.lights.green, c.exposed_lamp, c.exposed_sound),
            Outcome.DENY: (self.lights.red, c.deny_lamp, c.deny_sound),
            Outcome.INVALID: (self.lights.amber, c.invalid_lamp, c.invalid_sound),
        }[outcome]

    def show(self, outcome: Outcome, *, level: int = 0) -> None:
        """Start the signal for ``outcome`` and return at once (played in the background);
        a new signal replaces one still showing. ``level``: the risk level behind an EXPOSED
        outcome (its screen text)."""
        self._stop_player()
        self.lights.off()
        if self.buzzer:
            self.buzzer.off()
        lamp, lamp_pattern, sound = self.patterns(outcome)
        plan = [(t, lamp, on) for t, on in events(lamp_pattern)]
        if self.buzzer:
            plan += [(t, self.buzzer, on) for t, on in events(sound)]
        plan.sort(key=lambda e: e[0])
        self._stop = threading.Event()
        player = threading.Thread(target=self._play, args=(plan, self._stop), name="signal", daemon=True)
        self._player: threading.Thread | None = player
        player.start()
        if self.screen:
            self.screen.show(outcome, level=level)
        if self.echo:
            self.echo(ECHO[outcome])

    @staticmethod
    def _play(plan, stop: threading.Event) -> None:
        start = time.monotonic()
        for t, device, on in plan:
            if stop.wait(max(0.0, start + t - time.monotonic())):
                return
            device.on() if on else device.off()

    def _stop_player(self) -> None:
        player = getattr(self, "_player", None)
        if player is not None:
            self._stop.set()
            player.join()
            self._player = None

    def fault(self) -> None:
        """Amber, steady: the kiosk cannot scan now (see staff). Cleared by the next signal."""
        self._stop_player()
        self.lights.off()
        self.lights.amber.on()
        if self.screen:
            self.screen.fault()
        if self.echo:
            self.echo("AMBER (steady: fault)")

    def clear_fault(self) -> None:
        self.lights.amber.off()
        if self.screen:
            self.screen.clear_fault()

    def lamp_check(self, on_s: float = 0.5) -> None:
        """At start-up: all three lamps together, then dark. No decision looks like that, so
        a restarting kiosk never shows a waiting visitor a lone green."""
        self._stop_player()
        self.lights.on()  # red, amber, then green: green never lit alone ...
        try:
            time.sleep(on_s)
        finally:
            self.lights.green.off()  # ... nor left alone when they go dark
            self.lights.off()

    def self_test(self, step_s: float = 0.3) -> None:
        """`kiosk doctor --signal-test`: each lamp in turn, the buzzer, then all three together
        and dark (never ending on green). Blocking."""
        for led in (self.lights.green, self.lights.red, self.lights.amber):
            led.blink(on_time=step_s, off_time=0, n=1, background=False)
        if self.buzzer:
            self.buzzer.beep(on_time=0.05, off_time=0, n=1, background=False)
        self.lamp_check(step_s)

    def close(self) -> None:
        self._stop_player()
        if self.screen:
            self.screen.close()
        self.lights.close()
        if self.buzzer:
            self.buzzer.close()


def make_screen(cfg):
    """The screen a [screen] section asks for, or None (pygame is imported only then)."""
    if not cfg.enabled:
        return None
    from kiosk.adapters.screen import Screen

    return Screen(
        driver=cfg.driver,
        size=(cfg.width, cfg.height),
        show_s=cfg.show_s,
        font=cfg.font,
        exposed=cfg.exposed_texts(),
    )


def make_torch(pin: int, *, pin_factory):
    """The torch LED on ``pin`` (a gpiozero LED), or GpioError naming it."""
    from gpiozero import LED

    try:
        return LED(pin, pin_factory=pin_factory)
    except Exception as e:
        raise GpioError(f"cannot drive the torch on GPIO pin {pin}: {type(e).__name__}: {e}") from None
