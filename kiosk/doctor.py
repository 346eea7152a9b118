"""`kiosk doctor`: what a technician checks at a kiosk, one line each.

ok / warn / FAIL, and a detail that never holds a pass id or key material.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import Config, ConfigError

RISK_LIST_STALE_S = 2 * 86_400       # a risk list older than this is worth a look
SYNC_STALE_S = 86_400


@dataclass(frozen=True)
class Check:
    name: str
    status: str        # "ok", "warn", "FAIL"
    detail: str


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def check_keys(cfg: Config) -> list[Check]:
    from kiosk.runtime import load_bundle_key, load_sealing, load_trust
    out = []
    try:
        trust = load_trust(cfg)
        out.append(Check("keys", "ok", f"{len(trust.issuers)} issuer key(s) trusted"))
        sealing = load_sealing(cfg)
        out.append(Check("sealing", "ok", f"records sealed to committee key {sealing.kid}"))
        bundle_key = load_bundle_key(cfg)
        out.append(Check("bundle key", "ok" if bundle_key else "warn",
                         "set" if bundle_key else "not set: downloaded bundles cannot be used"))
    except ConfigError as e:
        out.append(Check("keys", "FAIL", str(e)))
    if cfg.sync.server_url:
        ok = Path(cfg.keys.device_key).is_file()
        out.append(Check("device key", "ok" if ok else "FAIL",
                         cfg.keys.device_key if ok else f"{cfg.keys.device_key} missing: run `kiosk keys init`"))
    return out


def check_store(cfg: Config, now: float) -> list[Check]:
    from kiosk.runtime import open_store
    try:
        store = open_store(cfg)
    except Exception as e:                 # a bad key file (ConfigError), a locked or broken file
        return [Check("database", "FAIL", f"{cfg.kiosk.database}: {e}")]
    out = []
    try:
        integrity = store.db.execute("PRAGMA quick_check").fetchone()[0]
        mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
        stats = store.stats()
        out.append(Check("database", "ok" if integrity == "ok" and mode == "wal" else "FAIL",
                         f"{cfg.kiosk.database}: integrity {integrity}, journal {mode}, "
                         f"{stats['records']} records, {stats['invalid_scans']} invalid scans counted"))
        oldest = stats["oldest_pending_age_s"]
        out.append(Check("pending", "ok" if not oldest or oldest < SYNC_STALE_S or not cfg.sync.server_url
                         else "warn",
                         f"{stats['pending']} records to upload"
                         + (f", oldest {_age(oldest)}" if oldest else "")
                         + (f"; {stats['set_aside']} set aside (refused by the server)"
                            if stats["set_aside"] else "")))
        if cfg.sync.server_url:
            last = store.get_state("last_sync_at")
            err = store.get_state("last_sync_error") or ""
            if last is None:
                out.append(Check("last sync", "warn", "never" + (f" ({err})" if err else "")))
            else:
                age = now - float(last)
                out.append(Check("last sync", "ok" if age < SYNC_STALE_S and not err else "warn",
                                 f"{_age(age)} ago" + (f"; last error: {err}" if err else "")))
        else:
            out.append(Check("last sync", "ok", "offline kiosk ([sync] server_url not set)"))
        version = store.get_state("bundle_version")
        issued = store.get_state("bundle_issued_at")
        if version and issued and Path(cfg.kiosk.bundle_file).is_file():
            age = now - float(issued)
            out.append(Check("risk list", "ok" if age < RISK_LIST_STALE_S else "warn",
                             f"bundle version {version}, {_age(age)} old"))
        else:
            out.append(Check("risk list", "warn", "no bundle downloaded yet: passes' own levels only"))
    finally:
        store.close()
    return out


def check_clock() -> Check:
    from kiosk.clock import SystemClock
    synced = SystemClock().synced()
    return Check("clock", "ok" if synced else "warn",
                 "NTP-synchronised" if synced else
                 "not synchronised: records are flagged; check `timedatectl`")


def check_camera(cfg: Config) -> Check:
    from kiosk.frames import open_source
    try:
        source = open_source(cfg.camera)
    except Exception as e:
        return Check("camera", "FAIL", f"{cfg.camera.source}: {e} (is `kiosk run` holding it?)")
    try:
        frame = source.read()
    finally:
        source.close()
    if frame is None:
        return Check("camera", "FAIL", f"{cfg.camera.source}: no frame")
    return Check("camera", "ok", f"{cfg.camera.source}: {frame.shape[1]}x{frame.shape[0]} frame, "
                                 f"mean level {float(frame.mean()):.0f}")


def check_signal(cfg: Config) -> Check:
    from kiosk.signal import Signal, make_pin_factory
    try:
        factory, is_mock = make_pin_factory(cfg.signal.pin_factory)
        signal = Signal(cfg.signal, pin_factory=factory)
    except Exception as e:
        return Check("signal", "FAIL", str(e))
    try:
        signal.self_test(step_s=0.3)
    finally:
        signal.close()
    if is_mock:
        return Check("signal", "warn", "no GPIO here: self-test ran on mock pins")
    return Check("signal", "ok", f"self-test: red, amber, green{', buzzer' if cfg.signal.buzzer else ''} "
                                 f"(pins {cfg.signal.red_pin}, {cfg.signal.amber_pin}, {cfg.signal.green_pin})")


def run_checks(cfg: Config, *, camera: bool = True, signal: bool = True, now: float | None = None):
    now = time.time() if now is None else now
    yield from check_keys(cfg)
    yield from check_store(cfg, now)
    yield check_clock()
    if camera:
        yield check_camera(cfg)
    if signal:
        yield check_signal(cfg)
