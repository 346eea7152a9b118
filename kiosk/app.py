"""The kiosk's main loop: frame -> decode -> verify -> decide -> record -> signal.

Wiring only: every part is handed in. A record is committed before its signal is shown, so
a visitor who saw green has a record that survives a power cut. The same pass seen again
is not recorded twice: while it stays in view (``hold_s``) it is not signalled again; shown
again within ``repeat_window_s`` it is signalled again but not recorded. That memory lives
in RAM only, keyed by a hash of the text.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.decision import Decision, Policy, RiskList, decide
from kiosk.reasons import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trust:
    """What the decision needs besides the text and the time."""

    issuers: Mapping[bytes, Ed25519PublicKey]
    risk_list: RiskList = field(default_factory=RiskList)
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class ScanEvent:
    decision: Decision
    recorded: bool        # a new record was committed
    repeat: bool          # the same pass within the repeat window: signalled, not recorded
    latency_s: float      # from the frame being handed in to the signal being started


@dataclass
class _Seen:
    first: float
    last: float
    decision: Decision


@dataclass
class Totals:
    frames: int = 0
    scans: int = 0
    recorded: int = 0
    repeats: int = 0
    outcomes: Counter = field(default_factory=Counter)
    decoder_errors: int = 0


class KioskApp:
    def __init__(self, *, source, decoder, signal, store, trust: Callable[[], Trust], clock,
                 repeat_window_s: float = 10.0, hold_s: float = 1.5, notifier=None,
                 on_event: Callable[[ScanEvent], None] | None = None):
        self.source, self.decoder, self.signal, self.store = source, decoder, signal, store
        self.trust, self.clock, self.notifier, self.on_event = trust, clock, notifier, on_event
        self.repeat_window_s, self.hold_s = repeat_window_s, hold_s
        self._seen: dict[bytes, _Seen] = {}
        self.totals = Totals()

    def step(self, frame) -> list[ScanEvent]:
        """Handle one frame; returns what it did (nothing for most frames)."""
        t0 = self.clock.monotonic()
        self.totals.frames += 1
        events = []
        for text in dict.fromkeys(self.decoder.decode(frame)):  # unique, in order
            event = self._scan(text, t0)
            if event:
                events.append(event)
        self._forget(t0)
        self.totals.decoder_errors = getattr(self.decoder, "errors", 0)
        return events

    def _scan(self, text: str, t0: float) -> ScanEvent | None:
        key = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()
        seen = self._seen.get(key)
        now_m = self.clock.monotonic()
        if seen and now_m - seen.last < self.hold_s:
            seen.last = now_m             # still in front of the camera: already signalled
            return None
        if seen and now_m - seen.first < self.repeat_window_s:
            seen.last = now_m
            self.signal.show(seen.decision.outcome)
            return self._emit(ScanEvent(seen.decision, False, True, self.clock.monotonic() - t0))
        trust = self.trust()
        now = self.clock.now()
        decision = decide(text, trusted=trust.issuers, risk_list=trust.risk_list,
                          policy=trust.policy, now=now)
        recorded = False
        if decision.recordable:
            self.store.record(decision, now=now, clock_synced=self.clock.synced())  # commit ...
            recorded = True
        else:
            self.store.count_invalid(decision.reason, now=now)
        self.signal.show(decision.outcome)                                          # ... then show
        self._seen[key] = _Seen(now_m, now_m, decision)
        return self._emit(ScanEvent(decision, recorded, False, self.clock.monotonic() - t0))

    def _emit(self, event: ScanEvent) -> ScanEvent:
        t = self.totals
        t.scans += 1
        t.recorded += event.recorded
        t.repeats += event.repeat
        t.outcomes[event.decision.outcome] += 1
        log.info("scan %s reason=%s level=%s%s", event.decision.outcome.value,
                 event.decision.reason.value, event.decision.risk_level,
                 " (repeat, not recorded)" if event.repeat else "")
        if self.on_event:
            self.on_event(event)
        return event

    def _forget(self, now_m: float) -> None:
        horizon = max(self.hold_s, self.repeat_window_s)
        if len(self._seen) > 64 or any(now_m - s.last > horizon for s in self._seen.values()):
            self._seen = {k: s for k, s in self._seen.items() if now_m - s.last <= horizon}

    def run(self, stop: threading.Event | None = None) -> Totals:
        """Until the source ends or ``stop`` is set (SIGTERM)."""
        stop = stop or threading.Event()
        notifier = self.notifier
        interval = notifier.watchdog_interval_s if notifier else None
        last_ping = 0.0
        if notifier:
            notifier.ready("scanning")
        try:
            while not stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.step(frame)
                if interval and time.monotonic() - last_ping >= interval:
                    notifier.watchdog()          # only a loop that still gets frames pings
                    last_ping = time.monotonic()
        finally:
            if notifier:
                notifier.stopping()
        return self.totals


def outcome_counts(totals: Totals) -> dict[str, int]:
    return {o.value: totals.outcomes.get(o, 0) for o in Outcome}
