"""From a Config to running parts. Each loader turns file problems into a ConfigError that
names the config key, so a technician reads one line and knows what to fix."""

from __future__ import annotations

from pathlib import Path

from kiosk.app import KioskApp, Trust
from kiosk.clock import SystemClock
from kiosk.config import Config, ConfigError
from kiosk.decision import Policy
from kiosk.decoders import make_decoder
from kiosk.keys import KeyFileError, load_x25519_public, trusted_issuers
from kiosk.seal import SealingKey
from kiosk.signal import Signal, make_pin_factory
from kiosk.store import CheckinStore, Retention


def policy_of(cfg: Config) -> Policy:
    return Policy(deny_level=cfg.policy.deny_level, clock_skew_s=cfg.policy.clock_skew_s)


def load_trust(cfg: Config) -> Trust:
    try:
        issuers = trusted_issuers(cfg.keys.issuer_keys)
    except KeyFileError as e:
        raise ConfigError(f"[keys] issuer_keys: {e}") from None
    return Trust(issuers=issuers, policy=policy_of(cfg))


def load_sealing(cfg: Config) -> SealingKey:
    try:
        return SealingKey.of(load_x25519_public(cfg.keys.sealing_key))
    except KeyFileError as e:
        raise ConfigError(f"[keys] sealing_key: {e}") from None


def retention_of(cfg: Config) -> Retention:
    r = cfg.retention
    return Retention(normal_days=r.normal_days, significant_days=r.significant_days,
                     significant_level=r.significant_level, synced_grace_s=r.synced_grace_s)


def open_store(cfg: Config) -> CheckinStore:
    return CheckinStore.open(Path(cfg.kiosk.database), sealing=load_sealing(cfg),
                             venue_id=cfg.kiosk.venue_id, retention=retention_of(cfg))


def trust_provider(cfg: Config):
    """A callable giving the current Trust: the config's keys, plus the downloaded bundle
    (risk list, policy, extra keys) once sync has written one."""
    base = load_trust(cfg)
    return lambda: base


def build_app(cfg: Config, *, source, signal=None, store=None, clock=None, notifier=None,
              pin_factory=None, on_event=None, trust=None) -> KioskApp:
    if signal is None:
        factory = pin_factory or make_pin_factory(cfg.signal.pin_factory)[0]
        signal = Signal(cfg.signal, pin_factory=factory)
    return KioskApp(source=source, decoder=make_decoder(cfg.decoder.name), signal=signal,
                    store=store or open_store(cfg), trust=trust or trust_provider(cfg),
                    clock=clock or SystemClock(), repeat_window_s=cfg.kiosk.repeat_window_s,
                    hold_s=cfg.kiosk.hold_s, notifier=notifier, on_event=on_event)
