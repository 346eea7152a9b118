"""Kiosk configuration: TOML (stdlib tomllib) into frozen dataclasses, validated at start.

Every problem is one line naming the section and key: an unknown key, a wrong type, a value
out of range, a missing required key or key file. ``config/kiosk.example.toml`` documents
every key.
"""

import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kiosk.core.faults import EXIT_CONFIG, Fault
from kiosk.core.retention import NORMAL_DAYS, SIGNIFICANT_DAYS, SIGNIFICANT_LEVEL

REQUIRED = MISSING


class ConfigError(Fault):
    label = "config error"
    exit_code = EXIT_CONFIG


VENUE_PLACEHOLDER = "CHANGE-ME"  # what the example config says until a technician sets it


def opt(default=REQUIRED, *, choices=None, min=None, max=None, path=False, pattern=False):
    meta = {"choices": choices, "min": min, "max": max, "path": path, "pattern": pattern}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class KioskSection:
    venue_id: str = opt()
    database: str = opt(path=True)
    repeat_window_s: float = opt(10.0, min=0, max=3600)  # same pass again: signal, no new record
    hold_s: float = opt(1.5, min=0, max=60)  # still in view: no new signal
    bundle_file: str = opt("", path=True)  # written by `kiosk sync`; "" = beside the database
    log_level: str = opt("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    store_fail_exit_s: float = opt(300.0, min=5, max=86_400)  # failing commits: exit after this
    disk_warn_mb: int = opt(200, min=0, max=100_000_000)  # doctor: free space warnings
    disk_fail_mb: int = opt(50, min=0, max=100_000_000)


@dataclass(frozen=True)
class KeysSection:
    issuer_keys: list = opt()  # list of issuer public key files (PEM)
    # The committee's sealing schedule as installed (its sealing-periods.json: public halves
    # only): what records are sealed to until the first verified bundle brings newer periods.
    sealing_periods: str = opt("", path=True)
    sealing_key: str = opt("", path=True)  # no longer used: never a static key (doctor warns)
    root_key: str = opt("", path=True)  # the authority's offline root key, pinned: trusts bundles
    bundle_key: str = opt("", path=True)  # no longer used (the root's manifest names the server's keys)
    device_key: str = opt("", path=True)  # this kiosk's Ed25519 key; "" = beside the database
    tag_key: str = opt("", path=True)  # its X25519 key for search-tag keys; "" = beside the database


@dataclass(frozen=True)
class PolicySection:
    deny_level: int = opt(3, min=1, max=3)
    clock_skew_s: int = opt(300, min=0, max=86_400)


@dataclass(frozen=True)
class CameraSection:
    source: str = opt("picamera2", choices=("picamera2", "opencv", "images", "evdev", "serial"))
    device: str = opt("0")  # opencv: camera index, video file or stream URL
    images: list = opt([])  # images: files, folders or globs
    loop: bool = opt(False)  # images: start again at the end
    width: int = opt(640, min=64, max=4096)
    height: int = opt(480, min=48, max=4096)
    fps: float = opt(10.0, min=0.1, max=120)
    fail_exit_s: float = opt(120.0, min=5, max=86_400)  # camera gone: retry, then exit after this
    # picamera2 (Camera Module 3 has autofocus; others ignore these two)
    autofocus: str = opt("continuous", choices=("continuous", "manual"))
    lens_position: float = opt(2.0, min=0.0, max=15.0)  # manual: dioptres (1/m): 2.0 = 50 cm
    exposure: str = opt("screens", choices=("screens", "normal"))  # screens: short, -1 EV
    torch_pin: int = opt(-1, min=-1, max=53)  # BCM pin of a white/IR LED; -1: none
    torch: str = opt("dark", choices=("dark", "always", "off"))  # dark: on while frames are dark
    # evdev (a USB keyboard-wedge scanner) and serial scanners
    scanner_device: str = opt("")  # /dev/input/by-id/...-event-kbd, or /dev/ttyACM0
    scanner_baud: int = opt(9600, min=1200, max=921_600)
    scanner_grab: bool = opt(True)  # evdev: keystrokes go to the kiosk only, never a console


@dataclass(frozen=True)
class DecoderSection:
    name: str = opt("zxing", choices=("zxing", "pyzbar"))


@dataclass(frozen=True)
class SignalSection:
    pin_factory: str = opt("auto", choices=("auto", "mock", "lgpio", "rpigpio", "pigpio", "native"))
    red_pin: int = opt(17, min=0, max=53)
    amber_pin: int = opt(27, min=0, max=53)
    green_pin: int = opt(22, min=0, max=53)
    buzzer: bool = opt(True)
    buzzer_pin: int = opt(23, min=0, max=53)
    # Each outcome its own rhythm, on the lamp and on the buzzer (kiosk/patterns.py), so a
    # visitor who cannot tell red from green can tell enter from refused from see staff.
    admit_lamp: str = opt("2.0", pattern=True)  # green, steady
    admit_sound: str = opt("0.1", pattern=True)  # one short beep
    deny_lamp: str = opt("0.15 0.15 x6", pattern=True)  # red, fast flashing
    deny_sound: str = opt("0.5 0.2 x3", pattern=True)  # three long beeps
    invalid_lamp: str = opt("0.5 0.5 x2", pattern=True)  # amber, slow blinking
    invalid_sound: str = opt("0.08 0.12 x2", pattern=True)  # two short pips
    exposed_lamp: str = opt("0.8 0.2 0.2 0.2 x2", pattern=True)  # green, long-short twice
    exposed_sound: str = opt("0.1 0.1 0.1 0.1 0.1 0.3 0.6", pattern=True)  # three pips, a long tone

    def scaled(self, factor: float) -> "SignalSection":
        """The same rhythms, ``factor`` times as long (the demo and tests play them fast)."""
        from kiosk.patterns import scale

        changes: dict[str, Any] = {
            f.name: scale(getattr(self, f.name), factor) for f in fields(self) if f.metadata.get("pattern")
        }
        return replace(self, **changes)


@dataclass(frozen=True)
class ScreenSection:
    enabled: bool = opt(False)
    driver: str = opt("kmsdrm")  # SDL video driver: kmsdrm (HDMI/DSI on a Pi), x11, wayland, dummy
    width: int = opt(0, min=0, max=8192)  # 0 (with height 0): the display's own size, full screen
    height: int = opt(0, min=0, max=8192)
    show_s: float = opt(3.0, min=0.5, max=30)
    font: str = opt("", path=True)  # a Khmer TrueType font; "": fonts-khmeros or Noto Khmer
    # What an exposed visitor (a level above 0, below the deny level) reads, per level; the
    # wording is the health authority's to review.
    exposed_1_km: str = opt("សូមអញ្ជើញចូល — អ្នកអាចបានប៉ះពាល់ជំងឺ៖ សូមទៅធ្វើតេស្ត")
    exposed_1_en: str = opt("Enter — you may have been exposed: get tested")
    exposed_2_km: str = opt("សូមអញ្ជើញចូល — អ្នកទំនងជាបានប៉ះពាល់ជំងឺ៖ សូមធ្វើតេស្តនៅថ្ងៃនេះ")
    exposed_2_en: str = opt("Enter — you were probably exposed: get tested today")

    def exposed_texts(self) -> dict[int, tuple[str, str]]:
        """level -> (Khmer, English) of the exposed screen."""
        return {1: (self.exposed_1_km, self.exposed_1_en), 2: (self.exposed_2_km, self.exposed_2_en)}


@dataclass(frozen=True)
class RetentionSection:
    normal_days: int = opt(NORMAL_DAYS, min=1, max=NORMAL_DAYS)
    significant_days: int = opt(SIGNIFICANT_DAYS, min=1, max=SIGNIFICANT_DAYS)
    significant_level: int = opt(SIGNIFICANT_LEVEL, min=1, max=3)
    synced_grace_s: int = opt(3600, min=0, max=7 * 86_400)


@dataclass(frozen=True)
class SyncSection:
    server_url: str = opt("")
    kiosk_id: str = opt("")
    batch_size: int = opt(500, min=1, max=5000)
    timeout_s: float = opt(10.0, min=0.1, max=300)
    interval_s: float = opt(60.0, min=0.1, max=86_400)
    # uploads on a fixed schedule, whether anybody came or not (an upload's time says nothing)
    upload_every_s: float = opt(300.0, min=0.1, max=86_400)
    backoff_base_s: float = opt(1.0, min=0.01, max=3600)
    backoff_max_s: float = opt(300.0, min=0.01, max=86_400)
    ca_bundle: str = opt("", path=True)  # a private CA for the server's TLS certificate
    verify_tls: bool = opt(True)
    # Days of search-tag keys the kiosk holds ahead (its offline margin); none of a past day.
    key_margin_days: int = opt(7, min=1, max=56)


@dataclass(frozen=True)
class UpdateSection:
    # Releases installed side by side (RELEASES/VERSION), the running one linked as `current`;
    # "" = releases/ beside the database.
    releases: str = opt("", path=True)
    # Run after switching to a release and after going back (e.g. "systemctl restart
    # kiosk.service kiosk-sync.service" on a Pi; scripts/install-pi sets it); "" = none.
    restart_command: str = opt("")
    # The user a release's health check runs as (its services' own, "kiosk" on a Pi: the
    # updater itself runs as root there); "" = the updater's own user.
    run_as: str = opt("")
    health_timeout_s: float = opt(120.0, min=5, max=3600)  # healthy within this, or back it goes
    max_download_mb: int = opt(300, min=1, max=100_000)  # a release larger than this is refused
    quiet_s: float = opt(30.0, min=0, max=3600)  # switch only after this long without a check-in
    quiet_wait_s: float = opt(600.0, min=0, max=86_400)  # wait at most this long for quiet, per round


@dataclass(frozen=True)
class Config:
    kiosk: KioskSection
    keys: KeysSection
    policy: PolicySection
    camera: CameraSection
    decoder: DecoderSection
    signal: SignalSection
    screen: ScreenSection
    retention: RetentionSection
    sync: SyncSection
    update: UpdateSection = UpdateSection()
    source: Path | None = None  # the file it came from


SECTIONS = {f.name: f.type for f in fields(Config) if f.name != "source"}
TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list of strings",
}


def _typed(where: str, value: Any, typ: Any) -> Any:
    ok = {
        str: isinstance(value, str),
        int: type(value) is int,
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        list: isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[typ]
    if not ok:
        raise ConfigError(f"{where}: expected {TYPE_NAMES[typ]}, got {value!r}")
    return float(value) if typ is float else value


def _section(name: str, cls: Any, raw: Any, base: Path) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table")
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"[{name}] {key}: unknown key (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for key, f in known.items():
        where = f"[{name}] {key}"
        if key not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{where}: missing (required)")
            if f.metadata["path"] and f.default:  # a default file lives beside the config too
                values[key] = str(base / str(f.default))
            continue
        value = _typed(where, raw[key], f.type)
        meta = f.metadata
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{where}: must be one of {', '.join(meta['choices'])}, not {value!r}")
        if meta["min"] is not None and value < meta["min"]:
            raise ConfigError(f"{where}: must be at least {meta['min']}, not {value}")
        if meta["max"] is not None and value > meta["max"]:
            raise ConfigError(f"{where}: must be at most {meta['max']}, not {value}")
        if meta["path"] and value:
            value = str((base / value).expanduser())
        if meta["pattern"]:
            from kiosk.patterns import PatternError
            from kiosk.patterns import parse as parse_pattern

            try:
                parse_pattern(value)
            except PatternError as e:
                raise ConfigError(f"{where}: {e}") from None
        values[key] = value
    if name == "camera" and "images" in values:
        values["images"] = [str((base / p).expanduser()) for p in values["images"]]
    if name == "kiosk" and values.get("venue_id", "").strip() in ("", VENUE_PLACEHOLDER):
        raise ConfigError(
            f"[kiosk] venue_id: still {values.get('venue_id')!r}: set this "
            "venue's id (the authority gives it)"
        )
    if name == "keys" and "issuer_keys" in values:
        values["issuer_keys"] = [str((base / p).expanduser()) for p in values["issuer_keys"]]
        if not values["issuer_keys"]:
            raise ConfigError("[keys] issuer_keys: must name at least one key file")
    return cls(**values)


def parse(data: dict, *, base: Path = Path("."), source: Path | None = None) -> Config:
    for name in data:
        if name not in SECTIONS:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(SECTIONS)})")
    sections = {name: _section(name, cls, data.get(name, {}), base) for name, cls in SECTIONS.items()}
    # Files the kiosk writes live beside its database (the state directory), by default.
    state = Path(sections["kiosk"].database).parent
    if not sections["kiosk"].bundle_file:
        sections["kiosk"] = replace(sections["kiosk"], bundle_file=str(state / "bundle.json"))
    if not sections["keys"].device_key:
        sections["keys"] = replace(sections["keys"], device_key=str(state / "device.key"))
    if not sections["keys"].tag_key:
        sections["keys"] = replace(sections["keys"], tag_key=str(state / "tag.key"))
    return Config(**sections, source=source)


def _check_file(where: str, path: Path) -> None:
    import os
    import pwd

    try:
        ok = path.is_file()
    except PermissionError:
        ok = None
    if ok and os.access(path, os.R_OK):
        return
    if ok is False:
        raise ConfigError(f"{where}: {path}: file not found")
    user = pwd.getpwuid(os.geteuid()).pw_name
    raise ConfigError(
        f"{where}: {path}: not readable by {user} (permission denied; run as the "
        "service user, or fix the file's owner and mode)"
    )


def load(path: str | Path, *, check_files: bool = True) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    cfg = parse(data, base=path.resolve().parent, source=path)
    if check_files:
        for where, p in [
            *(("[keys] issuer_keys", p) for p in cfg.keys.issuer_keys),
            ("[keys] sealing_periods", cfg.keys.sealing_periods),
            ("[keys] root_key", cfg.keys.root_key),
        ]:
            if p:
                _check_file(where, Path(p))
    return cfg


ENROL_KEY = "enrol-tag.key"  # beside the tag key: `kiosk enrol` keeps the code's key there


def enrol_key_path(cfg: Config) -> Path:
    """The enrolment code's X25519 key: it opens the search-tag keys sealed with the token
    (the kiosk's first days), and `kiosk purge` deletes it once none of them is to come."""
    return Path(cfg.keys.tag_key).with_name(ENROL_KEY)


def releases_dir(cfg: Config) -> Path:
    """Where releases are installed side by side ([update] releases; "" = beside the database)."""
    return Path(cfg.update.releases) if cfg.update.releases else Path(cfg.kiosk.database).parent / "releases"
