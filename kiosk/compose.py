"""The composition root: from a Config to running parts, wired in one place (`kiosk run`,
`kiosk sync`, doctor). Each loader turns file problems into a ConfigError that names the
config key, so a technician reads one line and knows what to fix."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.app import KioskApp, Trust
from kiosk.clock import SystemClock
from kiosk.config import Config, ConfigError, enrol_key_path
from kiosk.core.bundle import Bundle
from kiosk.core.decision import Policy
from kiosk.core.keys import (
    KeyFileError,
    load_ed25519_public,
    load_x25519_private,
    trusted_issuers,
)
from kiosk.core.sealkeys import PeriodKey, Sealer, Tagger
from kiosk.store.checkins import CheckinStore, Retention
from kiosk.trust import HeldTrust

log = logging.getLogger(__name__)


def policy_of(cfg: Config) -> Policy:
    return Policy(deny_level=cfg.policy.deny_level, clock_skew_s=cfg.policy.clock_skew_s)


def load_trust(cfg: Config) -> Trust:
    try:
        issuers = trusted_issuers(cfg.keys.issuer_keys)
    except KeyFileError as e:
        raise ConfigError(f"[keys] issuer_keys: {e}") from None
    return Trust(issuers=issuers, policy=policy_of(cfg))


def installed_periods(cfg: Config) -> tuple[PeriodKey, ...]:
    """The sealing schedule installed with the kiosk ([keys] sealing_periods: the committee's
    sealing-periods.json, public halves only); () when none is configured."""
    import json

    if not cfg.keys.sealing_periods:
        return ()
    path = Path(cfg.keys.sealing_periods)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["periods"]
        return tuple(
            PeriodKey.from_wire({k: v for k, v in e.items() if k != "destroyed_at"}) for e in entries
        )
    except OSError as e:
        raise ConfigError(f"[keys] sealing_periods: {path}: cannot read ({e.strerror})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"[keys] sealing_periods: {path}: not the committee's sealing-periods.json ({e})"
        ) from None


def retention_of(cfg: Config) -> Retention:
    r = cfg.retention
    return Retention(
        normal_days=r.normal_days,
        significant_days=r.significant_days,
        significant_level=r.significant_level,
        synced_grace_s=r.synced_grace_s,
    )


def check_state_paths(cfg: Config) -> None:
    """The database and the files the kiosk writes beside it go where the config says, into a
    folder that exists (install-pi makes /var/lib/kiosk): a mistyped path is refused, never
    created, and a folder where the database file belongs is refused, never moved aside."""
    for key, value in (
        ("[kiosk] database", cfg.kiosk.database),
        ("[kiosk] bundle_file", cfg.kiosk.bundle_file),
    ):
        if not value:
            continue
        path = Path(value)
        if not path.parent.is_dir():
            raise ConfigError(
                f"{key}: {path}: the folder {path.parent} does not exist (scripts/install-pi makes "
                "/var/lib/kiosk; check the path)"
            )
        if path.exists() and not path.is_file():
            raise ConfigError(f"{key}: {path} is not a file (a folder is there): check the path")


def open_store(cfg: Config, *, periods=None) -> CheckinStore:
    """The kiosk's store. Records are sealed to the period key of their capture time and
    class from ``periods()`` (the verified bundle's), else from the schedule installed with
    the kiosk; never to a static key (every key here is destroyed when its retention ends).
    With no period key at all, nothing is recorded: the door shows amber (see staff)."""
    check_state_paths(cfg)
    installed = installed_periods(cfg)
    sealer = Sealer(fallback=None, periods=periods or (lambda: installed))
    sealer.installed = installed
    return CheckinStore.open(
        Path(cfg.kiosk.database),
        sealing=sealer,
        tagger=load_tagger(cfg),
        venue_id=cfg.kiosk.venue_id,
        retention=retention_of(cfg),
    )


def load_tagger(cfg: Config) -> Tagger | None:
    """Search tags need the kiosk's tag key and its kiosk id (tag keys are sealed to both)."""
    path = Path(cfg.keys.tag_key)
    if not (cfg.sync.kiosk_id and path.exists()):
        return None
    enrolled = enrol_key_path(cfg)  # the code's key: the tag keys sealed with its token
    try:
        return Tagger(
            private_key=load_x25519_private(path),
            kiosk_id=cfg.sync.kiosk_id,
            extra_keys=(load_x25519_private(enrolled),) if enrolled.exists() else (),
        )
    except KeyFileError as e:
        raise ConfigError(f"[keys] tag_key: {e}") from None


def follow_bundle_keys(store: CheckinStore, provider: TrustProvider) -> None:
    """Seal with the period keys of whatever bundle the provider holds (it follows the held
    trust in the database as `kiosk sync` updates it)."""
    if isinstance(store.sealing, Sealer):
        installed = store.sealing.installed
        store.sealing.periods = lambda: (
            provider.bundle.sealing_periods
            if provider.bundle and provider.bundle.sealing_periods
            else installed
        )
    if store.tagger is not None:
        store.tagger.sealed_keys = lambda: provider.bundle.tag_keys if provider.bundle else ()


class TrustProvider:
    """The current Trust for the door: the config's issuer keys and policy, merged with the
    bundle the kiosk holds (kiosk.trust.HeldTrust: the database's verified chain; the root's
    manifest for more issuer keys and the policy, the members' risk statements).

    Asked once per scan (not per frame): one small read of the held chain's generation; a
    changed chain is verified again before use. A database that cannot be read keeps the
    Trust already held (and says so); with nothing held, the config's keys only."""

    def __init__(self, base: Trust, held: HeldTrust | None = None):
        self.base, self.held = base, held
        self.current: Trust = base
        self.bundle: Bundle | None = None
        self._generation: str | None = None

    def __call__(self) -> Trust:
        if self.held is None or self.held.root is None:
            return self.current
        try:
            generation = self.held.generation()
            if generation == self._generation:
                return self.current
            bundle = self.held.held()
        except Exception as e:  # a failing database must not stop the scan loop
            log.error("cannot read the held bundle (%s): keeping what is in use", type(e).__name__)
            return self.current
        self._generation = generation
        if bundle is not None:
            self._use(bundle)
        return self.current

    def _use(self, bundle: Bundle) -> None:
        self.bundle = bundle
        ref = self.held.clock_reference() if self.held is not None else None
        self.current = Trust(
            issuers={**self.base.issuers, **bundle.issuers},
            risk_list=bundle.risk_list,
            policy=bundle.policy,
            server_now=ref.server_now if ref is not None else (lambda: None),
        )
        log.info(
            "bundle version %d (manifest %d) in use: risk list of %d entries, deny level %d",
            bundle.version,
            bundle.manifest_version,
            len(bundle.risk_list.levels),
            bundle.policy.deny_level,
        )


def load_root_key(cfg: Config) -> Ed25519PublicKey | None:
    if not cfg.keys.root_key:
        return None
    try:
        return load_ed25519_public(cfg.keys.root_key)
    except KeyFileError as e:
        raise ConfigError(f"[keys] root_key: {e}") from None


def held_trust(cfg: Config, store: CheckinStore | None) -> HeldTrust:
    """The kiosk's held trust over its store (None: the config's keys only)."""
    return HeldTrust(store, root=load_root_key(cfg), kiosk_id=cfg.sync.kiosk_id)


def trust_provider(cfg: Config, *, store: CheckinStore | None = None) -> TrustProvider:
    return TrustProvider(load_trust(cfg), held_trust(cfg, store))


def open_store_readonly(cfg: Config) -> CheckinStore | None:
    """The kiosk's database for looking only (`kiosk scan`, doctor), or None when it does not
    exist yet: nothing is created, moved or written."""
    from kiosk.store.sqlitedb import open_readonly

    path = Path(cfg.kiosk.database)
    if not path.is_file():
        return None
    return CheckinStore.open_readonly(open_readonly(path))


def build_app(
    cfg: Config,
    *,
    source,
    signal=None,
    store=None,
    clock=None,
    notifier=None,
    pin_factory=None,
    on_event=None,
    trust=None,
    reopen=None,
) -> KioskApp:
    # Imported here: `kiosk sync` and `kiosk purge` use this module without decoders or GPIO.
    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import SCANNER_SOURCES
    from kiosk.adapters.scanners import ScannedText
    from kiosk.adapters.signal import Signal, make_pin_factory, make_screen

    if signal is None:
        factory = pin_factory or make_pin_factory(cfg.signal.pin_factory)[0]
        signal = Signal(cfg.signal, pin_factory=factory, screen=make_screen(cfg.screen))
    store = store or open_store(cfg)
    if trust is None:
        trust = trust_provider(cfg, store=store)
        trust()  # load the bundle now: its period keys
        follow_bundle_keys(store, trust)
    scanner = cfg.camera.source in SCANNER_SOURCES
    # A scanner decodes itself; and each of its scans is a deliberate one, so every scan
    # gets a signal (no "still in front of the camera" hold).
    decoder = ScannedText() if scanner else make_decoder(cfg.decoder.name)
    return KioskApp(
        source=source,
        decoder=decoder,
        signal=signal,
        store=store,
        trust=trust,
        clock=clock or SystemClock(),
        repeat_window_s=cfg.kiosk.repeat_window_s,
        hold_s=0.0 if scanner else cfg.kiosk.hold_s,
        notifier=notifier,
        on_event=on_event,
        reopen=reopen,
        store_fail_exit_s=cfg.kiosk.store_fail_exit_s,
        camera_fail_exit_s=cfg.camera.fail_exit_s,
    )


def assemble_kiosk(cfg: Config, cleanup: ExitStack) -> KioskApp:
    """The whole kiosk of `kiosk run`, wired from its config: store, pins, signal, screen,
    torch, frame source and the app; each part's closing is pushed onto ``cleanup``."""
    from kiosk.adapters.frames import Paced, open_source
    from kiosk.adapters.signal import Signal, make_pin_factory, make_screen, make_torch
    from kiosk.sdnotify import Notifier

    store = open_store(cfg)  # a damaged file is moved aside here
    cleanup.callback(store.close)
    factory = make_pin_factory(cfg.signal.pin_factory)[0]
    signal = Signal(cfg.signal, pin_factory=factory, screen=make_screen(cfg.screen))
    cleanup.callback(signal.close)
    torch = None
    if cfg.camera.torch_pin >= 0 and cfg.camera.source == "picamera2" and cfg.camera.torch != "off":
        torch = make_torch(cfg.camera.torch_pin, pin_factory=factory)
        cleanup.callback(torch.close)

    def open_frames():
        source = open_source(cfg.camera, torch_light=torch)
        return Paced(source, cfg.camera.fps) if cfg.camera.source == "images" else source

    app = build_app(
        cfg, source=open_frames(), signal=signal, store=store, notifier=Notifier(), reopen=open_frames
    )
    cleanup.callback(lambda: app.source.close())
    return app
