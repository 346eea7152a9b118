"""The kiosk's main loop: frame -> decode -> verify -> decide -> record -> signal.

Wiring only: every part is handed in. A record is committed before its signal is shown, so
a visitor who saw green has a record that survives a power cut. The same pass seen again
is not recorded twice: while it stays in view (``hold_s``) it is not signalled again; shown
again within ``repeat_window_s`` it is signalled again but not recorded. That memory lives
in RAM only, keyed by a hash of the *verified pass id* (the same pass re-encoded as another
text is still the same pass), or of the text for what is not a valid pass.

Faults never leave a visitor without a signal, and never show green:
- A commit that fails (disk full, a write lock held past the busy timeout, a damaged file)
  shows amber ("see staff"), logs one line, and the store is retried with capped backoff
  (scans meanwhile show amber at once, and the loop probes the store itself, so recording
  resumes on its own). After ``store_fail_exit_s`` of failing, :class:`StoreFailing` ends
  the loop so systemd restarts the kiosk.
- A frame source that fails is reopened with backoff while amber shows steadily; after
  ``camera_fail_exit_s`` :class:`CameraGone` ends the loop. A source that stalls stops the
  watchdog pings, and systemd restarts the kiosk.
The journal never holds an admitted or refused scan's outcome or level: only counts (the
systemd STATUS line), and the reason of invalid scans.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.core.decision import Decision, Policy, RiskList, decide
from kiosk.core.reasons import Outcome, Reason
from kiosk.core.sealkeys import NoSealingKey
from kiosk.core.timing import door_time
from kiosk.errors import CameraGone, StoreFailing
from kiosk.health import note_fault

log = logging.getLogger(__name__)

STORE_ERRORS = (sqlite3.Error, OSError, NoSealingKey)
__all__ = [
    "KioskApp",
    "Trust",
    "ScanEvent",
    "Totals",
    "Retry",
    "StoreFailing",
    "CameraGone",
    "outcome_counts",
]


@dataclass(frozen=True)
class Trust:
    """What the decision needs besides the text and the time."""

    issuers: Mapping[bytes, Ed25519PublicKey]
    risk_list: RiskList = field(default_factory=RiskList)
    policy: Policy = field(default_factory=Policy)
    server_now: Callable[[], float | None] = lambda: None  # the server's signed time, carried on


@dataclass(frozen=True)
class ScanEvent:
    decision: Decision
    recorded: bool  # a new record was committed
    repeat: bool  # the same pass within the repeat window: signalled, not recorded
    latency_s: float  # from the frame being handed in to the signal being started
    shown: Outcome | None = None  # what the visitor saw (amber when the commit failed)

    @property
    def store_failed(self) -> bool:
        return self.shown is not None and self.shown is not self.decision.outcome


@dataclass
class _Seen:
    first: float
    last: float
    shown: Outcome
    done: bool  # recorded (or nothing to record): a repeat is not recorded again
    level: int = 0  # the risk level shown with it (the exposed screen's text depends on it)


@dataclass
class Totals:
    frames: int = 0
    scans: int = 0
    recorded: int = 0
    repeats: int = 0
    outcomes: Counter = field(default_factory=Counter)
    decoder_errors: int = 0
    store_failures: int = 0
    camera_failures: int = 0


@dataclass(frozen=True)
class Retry:
    """Capped exponential backoff for retrying the store or the camera."""

    base_s: float = 0.5
    max_s: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.max_s, self.base_s * 2 ** max(0, failures - 1))


def _store_hint(error: BaseException) -> str:
    if isinstance(error, NoSealingKey):
        return "nothing to seal records to: install the sealing periods or sync; see `kiosk doctor`"
    text = str(error).lower()
    if "full" in text or getattr(error, "errno", None) == 28:
        return "the disk is full: free space on the SD card"
    if "locked" in text or "busy" in text:
        return "another process holds the database's write lock"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return "the database file is damaged: restart the kiosk to move it aside"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "the database is not writable: check the file's owner and mode"
    return "check `kiosk doctor`"


class CheckinRecorder(Protocol):
    """What the loop needs of the store (:class:`kiosk.store.checkins.CheckinStore`)."""

    epoch: int

    def record(self, decision: Decision, *, now: float, clock_synced: bool) -> Any: ...
    def count_invalid(self, reason: Reason, *, now: float) -> Any: ...
    def probe(self, *, now: float) -> None: ...


class KioskApp:
    def __init__(
        self,
        *,
        source,
        decoder,
        signal,
        store: CheckinRecorder,
        trust: Callable[[], Trust],
        clock,
        repeat_window_s: float = 10.0,
        hold_s: float = 1.5,
        notifier=None,
        on_event: Callable[[ScanEvent], None] | None = None,
        reopen: Callable[[], object] | None = None,
        retry: Retry = Retry(),
        store_fail_exit_s: float = 300.0,
        camera_fail_exit_s: float = 120.0,
    ):
        self.source, self.decoder, self.signal, self.store = source, decoder, signal, store
        self.trust, self.clock, self.notifier, self.on_event = trust, clock, notifier, on_event
        self.repeat_window_s, self.hold_s = repeat_window_s, hold_s
        self.reopen, self.retry = reopen, retry
        self.store_fail_exit_s, self.camera_fail_exit_s = store_fail_exit_s, camera_fail_exit_s
        self._seen: dict[bytes, _Seen] = {}
        self._hour: deque[tuple[float, bool]] = deque()
        self._store_failing_since: float | None = None
        self._store_failures = 0
        self._store_next_try = 0.0
        self._last_ping = 0.0
        self.totals = Totals()

    # -- one frame ----------------------------------------------------------------------------
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
        trust = self.trust()
        times = door_time(self.clock.now(), trust.server_now())  # a wrong clock admits no one
        if times.clock_off:
            self._clock_off(times)
        now = times.record
        decision = decide(
            text,
            trusted=trust.issuers,
            risk_list=trust.risk_list,
            policy=trust.policy,
            now=times.passes,
            risk_now=times.risk,
        )
        key = _memory_key(text, decision)
        seen = self._seen.get(key)
        now_m = self.clock.monotonic()
        if seen and now_m - seen.last < self.hold_s:
            seen.last = now_m  # still in front of the camera: already signalled
            return None
        if seen and seen.done and now_m - seen.first < self.repeat_window_s:
            seen.last = now_m
            self.signal.show(seen.shown, level=seen.level)
            return self._emit(ScanEvent(decision, False, True, self.clock.monotonic() - t0, seen.shown))
        if decision.recordable:
            synced = self.clock.synced() and not times.clock_off
            ok = self._commit(lambda: self.store.record(decision, now=now, clock_synced=synced))
        else:  # amber either way; a failed count loses no visit
            self._commit(lambda: self.store.count_invalid(decision.reason, now=now))
            ok = True
        shown = decision.outcome if ok else Outcome.INVALID  # never green or red unrecorded
        level = decision.risk_level or 0
        self.signal.show(shown, level=level)  # ... after the commit
        self._seen[key] = _Seen(now_m, now_m, shown, ok, level)
        recorded = ok and decision.recordable
        return self._emit(ScanEvent(decision, recorded, False, self.clock.monotonic() - t0, shown))

    def _clock_off(self, times) -> None:
        """Said once an hour while it lasts: the journal, and the fault doctor and `status` show."""
        now_m = self.clock.monotonic()
        if now_m - getattr(self, "_clock_said", -1e9) < 3600:
            return
        self._clock_said = now_m
        log.error(
            "this kiosk's clock is %+.0f s off the server's (its last signed bundle): each check takes "
            "the stricter of the two times, records take the server's; fix the clock (NTP)",
            times.off_by,
        )
        try:
            note_fault(self.store, "clock", now=times.record)
        except STORE_ERRORS:
            pass

    # -- the store, and what to do when it fails --------------------------------------------------
    def _commit(self, write: Callable[[], object]) -> bool:
        now_m = self.clock.monotonic()
        if self._store_failing_since is not None and now_m < self._store_next_try:
            return False  # backing off: amber at once, no visitor kept waiting
        try:
            write()
        except STORE_ERRORS as e:
            self._store_failed(e, now_m)
            return False
        self._store_recovered(now_m)
        return True

    def _store_failed(self, error: BaseException, now_m: float) -> None:
        self.totals.store_failures += 1
        self._store_failures += 1
        self._store_next_try = now_m + self.retry.delay(self._store_failures)
        if self._store_failing_since is None:
            self._store_failing_since = now_m
            log.error(
                "cannot record check-ins: %s (%s); showing amber and retrying", error, _store_hint(error)
            )
            cause = "no sealing key" if isinstance(error, NoSealingKey) else "database write failed"
            self._status(f"NOT RECORDING: {cause}; see `kiosk doctor`")
            note_fault(
                self.store, "sealing" if isinstance(error, NoSealingKey) else "store", now=self.clock.now()
            )

    def _store_recovered(self, now_m: float) -> None:
        if self._store_failing_since is not None:
            log.warning(
                "database writable again after %.0f s: recording resumed", now_m - self._store_failing_since
            )
            self._store_failing_since = None
            self._store_failures = 0

    def _probe_store(self) -> None:
        """While the store fails, try it in the background (not only when a visitor comes),
        and give up after ``store_fail_exit_s``."""
        if self._store_failing_since is None:
            return
        now_m = self.clock.monotonic()
        if now_m - self._store_failing_since > self.store_fail_exit_s:
            raise StoreFailing(f"check-ins could not be recorded for {self.store_fail_exit_s:.0f} s")
        if now_m >= self._store_next_try:
            self._commit(lambda: self.store.probe(now=self.clock.now()))

    # -- what the journal and systemd are told ------------------------------------------------------
    def _emit(self, event: ScanEvent) -> ScanEvent:
        t = self.totals
        t.scans += 1
        t.recorded += event.recorded
        t.repeats += event.repeat
        t.outcomes[event.decision.outcome] += 1
        if not event.decision.recordable:
            log.info("scan invalid: %s", event.decision.reason.value)  # no text, no pass id
        elif event.store_failed:
            log.warning("a check-in was not recorded (database failing): amber shown")
        self._count_hour(event)
        if self.on_event:
            self.on_event(event)
        return event

    def _count_hour(self, event: ScanEvent) -> None:
        m = self.clock.monotonic()
        self._hour.append((m, event.decision.recordable))
        while self._hour and m - self._hour[0][0] > 3600:
            self._hour.popleft()
        checkins = sum(1 for _, r in self._hour if r)
        if self._store_failing_since is None:
            self._status(f"scanning; last hour: {checkins} check-ins, {len(self._hour) - checkins} invalid")

    def _status(self, text: str) -> None:
        if self.notifier:
            self.notifier.status(text)

    def _forget(self, now_m: float) -> None:
        horizon = max(self.hold_s, self.repeat_window_s)
        if len(self._seen) > 64 or any(now_m - s.last > horizon for s in self._seen.values()):
            self._seen = {k: s for k, s in self._seen.items() if now_m - s.last <= horizon}

    # -- the loop --------------------------------------------------------------------------------
    def _read(self, stop: threading.Event):
        """The next frame; a failing source is reopened with backoff (amber steady meanwhile)."""
        failing_since, failures = None, 0
        while not stop.is_set():
            try:
                frame = self.source.read()
                if failing_since is not None:
                    log.warning("camera back after %.0f s", time.monotonic() - failing_since)
                    self.signal.clear_fault()
                return frame
            except Exception as e:  # cv2, picamera2 and the kernel raise many kinds
                now_m = time.monotonic()
                self.totals.camera_failures += 1
                failures += 1
                if failing_since is None:
                    failing_since = now_m
                    log.error("camera failed: %s; showing amber and retrying", e)
                    self.signal.fault()
                    note_fault(self.store, "camera", now=self.clock.now())
                    self._status("NO CAMERA: retrying; see `kiosk doctor`")
                if now_m - failing_since > self.camera_fail_exit_s:
                    raise CameraGone(
                        f"camera failed and did not come back in {self.camera_fail_exit_s:.0f} s: {e}"
                    ) from None
                self._ping()
                stop.wait(self.retry.delay(failures))
                if self.reopen is not None and not stop.is_set():
                    try:
                        self.source.close()
                    except Exception:
                        pass
                    try:
                        self.source = self.reopen()
                    except Exception as e2:
                        log.debug("camera reopen failed: %s", e2)
        return None

    def _ping(self) -> None:
        interval = self.notifier.watchdog_interval_s if self.notifier else None
        if self.notifier and interval and time.monotonic() - self._last_ping >= interval:
            self.notifier.watchdog()  # only a loop that still turns pings
            self._last_ping = time.monotonic()

    def run(self, stop: threading.Event | None = None) -> Totals:
        """Until the source ends or ``stop`` is set (SIGTERM). Raises StoreFailing or
        CameraGone when the kiosk cannot go on (the caller exits non-zero)."""
        stop = stop or threading.Event()
        self._last_ping = 0.0
        if self.notifier:
            self.notifier.ready("scanning")
        try:
            while not stop.is_set():
                frame = self._read(stop)
                if frame is None:
                    break
                self.step(frame)
                self._probe_store()
                self._ping()
        finally:
            if self.notifier:
                self.notifier.stopping()
        return self.totals


def _memory_key(text: str, decision: Decision) -> bytes:
    if decision.claims is not None:
        material = b"pass\0" + decision.claims.pass_id
    else:
        material = b"text\0" + text.encode("utf-8", "replace")
    return hashlib.blake2b(material, digest_size=16).digest()


def outcome_counts(totals: Totals) -> dict[str, int]:
    return {o.value: totals.outcomes.get(o, 0) for o in Outcome}
