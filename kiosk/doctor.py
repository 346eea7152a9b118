"""`kiosk doctor`: what a technician checks at a kiosk, one line each.

ok / warn / FAIL, and a detail that never holds a pass id or key material. Doctor only
looks: it opens the database read-only (handing any side file SQLite makes back to the
database's owner), never moves or creates the database, and a check that breaks is a FAIL
line naming the cause, never a traceback. Run as root, it also checks that the service user
can read what the service needs.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import Config, ConfigError
from kiosk.syncstate import SyncKey

RISK_LIST_STALE_S = 2 * 86_400  # a risk list older than this is worth a look
SYNC_STALE_S = 86_400
SERVICE_USER = "kiosk"  # the user the systemd units run as (scripts/install-pi)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn", "FAIL"
    detail: str


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


# -- who can read what ---------------------------------------------------------------------------
def _service_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None


def _can_read_as(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may read ``path`` (mode bits along the path; no ACLs)."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}

    def allowed(p: Path, bits: tuple[int, int, int]) -> bool:
        st = p.stat()
        if st.st_uid == user.pw_uid:
            return bool(st.st_mode & bits[0])
        if st.st_gid in groups:
            return bool(st.st_mode & bits[1])
        return bool(st.st_mode & bits[2])

    path = path.resolve()
    try:
        return all(allowed(d, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)) for d in path.parents) and allowed(
            path, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
        )
    except OSError:
        return False


def check_key_files(cfg: Config) -> Check:
    files = [("[keys] issuer_keys", p) for p in cfg.keys.issuer_keys]
    if cfg.keys.sealing_periods:
        files.append(("[keys] sealing_periods", cfg.keys.sealing_periods))
    if cfg.keys.root_key:
        files.append(("[keys] root_key", cfg.keys.root_key))
    if cfg.sync.server_url:
        files.append(("[keys] device_key", cfg.keys.device_key))
    me = pwd.getpwuid(os.geteuid()).pw_name
    service = _service_user() if os.geteuid() == 0 else None
    for where, p in files:
        path = Path(p)
        if not path.exists():
            if where == "[keys] device_key":
                return Check(
                    "key files",
                    "FAIL",
                    f"{where}: {p} missing: run `sudo -u {SERVICE_USER} kiosk keys init --config ...`",
                )
            return Check("key files", "FAIL", f"{where}: {p} missing")
        if not os.access(path, os.R_OK):
            return Check(
                "key files",
                "FAIL",
                f"{where}: {p} not readable by {me} (run doctor as "
                f"the service user: sudo -u {SERVICE_USER} kiosk doctor ...)",
            )
        if service and not _can_read_as(path, service):
            return Check(
                "key files",
                "FAIL",
                f"{where}: {p} not readable by the service user {SERVICE_USER}: chown {SERVICE_USER} {p}",
            )
    whom = f"{me} and {SERVICE_USER}" if service else me
    return Check("key files", "ok", f"{len(files)} key files readable by {whom}")


def check_keys(cfg: Config) -> list[Check]:
    from kiosk.compose import load_root_key, load_trust

    out = [check_key_files(cfg)]
    try:
        trust = load_trust(cfg)
        out.append(Check("keys", "ok", f"{len(trust.issuers)} issuer key(s) trusted"))
        if load_root_key(cfg):
            out.append(Check("root key", "ok", "pinned: bundles and receipts are trusted through it"))
        else:
            obsolete = "; bundle_key is no longer used" if cfg.keys.bundle_key else ""
            out.append(
                Check(
                    "root key",
                    "FAIL" if cfg.sync.server_url else "warn",
                    "not set: downloaded bundles (the risk list) and upload receipts cannot be trusted; "
                    f'set [keys] root_key = "keys/root.pub"{obsolete}',
                )
            )
    except ConfigError as e:
        out.append(Check("keys", "FAIL", str(e)))
    if cfg.sync.server_url.startswith("http://"):
        out.append(
            Check(
                "transport",
                "warn",
                f"{cfg.sync.server_url} is plain HTTP: anyone on the way sees the uploads' metadata; "
                "receipts and bundles are still checked by signature (use https)",
            )
        )
    if cfg.sync.server_url and not cfg.sync.kiosk_id:
        out.append(
            Check(
                "kiosk id",
                "FAIL",
                "[sync] server_url is set but kiosk_id is not: "
                "register the kiosk (kiosk-central register-kiosk)",
            )
        )
    elif cfg.sync.server_url:
        out.append(Check("kiosk id", "ok", cfg.sync.kiosk_id))
    return out


# -- the database ---------------------------------------------------------------------------------
def check_store(cfg: Config, now: float) -> list[Check]:
    from kiosk.compose import check_state_paths
    from kiosk.store.checkins import CheckinStore
    from kiosk.store.sqlitedb import file_damage, keep_owner, open_readonly

    path = Path(cfg.kiosk.database)
    try:
        check_state_paths(cfg)
    except ConfigError as e:
        return [Check("database", "FAIL", str(e))]
    if not path.exists():
        return [Check("database", "warn", f"{path}: not created yet (kiosk run creates it)")]
    out = [_owner_check(path)]
    with keep_owner(path):
        damage = file_damage(path, readonly=True)
        if damage:
            return out + [
                Check(
                    "database",
                    "FAIL",
                    f"{path}: damaged ({damage}); kiosk run will move it aside and start a new epoch",
                )
            ]
        db = open_readonly(path)
        try:
            store = CheckinStore.open_readonly(db)
            out += _store_checks(cfg, store, path, now)
        finally:
            db.conn.close()
    return out


def _owner_check(path: Path) -> Check:
    st = path.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    service = _service_user()
    if service and st.st_uid != service.pw_uid:
        return Check(
            "db owner",
            "FAIL",
            f"{path} belongs to {owner}, not the service user {SERVICE_USER}: chown {SERVICE_USER}: {path}*",
        )
    me = os.geteuid()
    if me not in (0, st.st_uid):
        return Check(
            "db owner",
            "warn",
            f"{path} belongs to {owner}; doctor runs as {pwd.getpwuid(me).pw_name} and only reads it",
        )
    return Check("db owner", "ok", f"{path} belongs to {owner}")


def _store_checks(cfg: Config, store, path: Path, now: float) -> list[Check]:
    out = []
    mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
    stats = store.stats()
    out.append(
        Check(
            "database",
            "ok" if mode == "wal" else "FAIL",
            f"{path}: integrity ok, journal {mode}, {stats['records']} records, "
            f"{stats['invalid_scans']} invalid scans counted",
        )
    )
    moved = store.moved_aside()
    out.append(
        Check(
            "epoch",
            "warn" if moved else "ok",
            f"sequence epoch {store.epoch}"
            + (
                f"; the previous database was damaged ({moved.reason}) and moved aside "
                f"to {moved.moved_to} at {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(moved.at))}"
                " (kept: it may hold unsynced records)"
                if moved
                else ""
            ),
        )
    )
    oldest = stats["oldest_pending_age_s"]
    late = bool(oldest and oldest >= SYNC_STALE_S and cfg.sync.server_url)
    out.append(
        Check(
            "pending",
            "warn" if late else "ok",
            f"{stats['pending']} records to upload" + (f", oldest {_age(oldest)}" if oldest else ""),
        )
    )
    if stats["set_aside"]:
        reasons = "; ".join(f"{n} x {r}" for r, n in store.set_aside_reasons().items())
        out.append(
            Check(
                "set aside",
                "warn",
                f"{stats['set_aside']} records refused by the server "
                f"({reasons[:200]}); after fixing the cause: kiosk sync --retry-set-aside",
            )
        )
    if cfg.sync.server_url:
        from kiosk.store.checkins import BAD_RECEIPTS

        bad = int(store.get_state(BAD_RECEIPTS, "0") or 0)
        if bad >= BAD_RECEIPTS_FAIL:
            out.append(
                Check(
                    "receipts",
                    "FAIL",
                    f"{bad} upload answers in a row had no receipt the manifest's receipt key signed: "
                    "records stay queued (a proxy, a wrong server_url, or an impostor answering)",
                )
            )
        last = store.get_state(SyncKey.LAST_SYNC_AT)
        err = store.get_state(SyncKey.LAST_SYNC_ERROR) or ""
        if last is None:
            out.append(Check("last sync", "warn", "never" + (f" ({err})" if err else "")))
        else:
            age = now - float(last)
            out.append(
                Check(
                    "last sync",
                    "ok" if age < SYNC_STALE_S and not err else "warn",
                    f"{_age(age)} ago" + (f"; last error: {err}" if err else ""),
                )
            )
    else:
        out.append(Check("last sync", "ok", "offline kiosk ([sync] server_url not set)"))
    bundle_check, bundle = check_bundle(cfg, store, now)
    out.append(bundle_check)
    out.append(check_sealing(bundle, store, now, cfg=cfg))
    out.append(check_tag_keys(bundle, store, now, cfg=cfg))
    out.append(
        Check(
            "secure del",
            "ok" if store.db.execute("PRAGMA secure_delete").fetchone()[0] else "FAIL",
            "deleted records are overwritten (secure_delete on), the WAL is truncated after each purge",
        )
    )
    return out


BAD_RECEIPTS_FAIL = 3  # upload answers in a row without a verifiable receipt


def check_sealing(bundle, store, now: float, *, cfg: Config) -> Check:
    """How far ahead the per-period sealing keys cover this kiosk (crypto-shredding): those
    of the verified bundle, else the schedule installed with the kiosk. Without any, nothing
    is recorded (amber at the door): a FAIL; ending within the offline margin: a warning."""
    from kiosk.compose import installed_periods
    from kiosk.core.sealkeys import covered_until

    try:
        installed = installed_periods(cfg)
    except ConfigError as e:
        return Check("key periods", "FAIL", str(e))
    periods = bundle.sealing_periods if bundle and bundle.sealing_periods else installed
    source = "the bundle's" if bundle and bundle.sealing_periods else "the installed schedule's"
    fallback = store.stats()["seal_fallback"]
    marked = f"; {fallback} records sealed to a fallback key" if fallback else ""
    obsolete = "; [keys] sealing_key is no longer used (never a static key)" if cfg.keys.sealing_key else ""
    if not periods:
        return Check(
            "key periods",
            "FAIL",
            "no sealing period keys: nothing can be recorded (the door shows amber); install the "
            'committee\'s sealing-periods.json ([keys] sealing_periods = "keys/sealing-periods.json") '
            "or run `kiosk sync`" + obsolete,
        )
    until = covered_until(periods, now)
    if until is None:
        return Check(
            "key periods",
            "FAIL",
            "no sealing key covers now: records are sealed to the "
            "newest key held and marked; sync to fetch new keys" + marked + obsolete,
        )
    day = time.strftime("%Y-%m-%d", time.gmtime(until))
    margin = cfg.sync.key_margin_days * 86_400
    return Check(
        "key periods",
        "ok" if until - now >= margin and not obsolete else "warn",
        f"{source} sealing keys cover until {day} ({_age(until - now)} ahead"
        + (f", within the {cfg.sync.key_margin_days}-day margin: sync" if until - now < margin else "")
        + f"){marked}{obsolete}",
    )


def check_tag_keys(bundle, store, now: float, *, cfg: Config) -> Check:
    """Whether today's check-ins carry a search tag (the committee's trace finds a pass's
    visits by it): the kiosk's tag keys from its bundle, now and for its offline margin."""
    registered = bool(cfg.sync.server_url and cfg.sync.kiosk_id)
    keys = sorted(bundle.tag_keys, key=lambda k: k.valid_from) if bundle else []
    end = now
    for k in keys:
        if k.valid_from <= end < k.valid_to:
            end = k.valid_to
    untagged = store.stats().get("untagged", 0)
    held = f"; {untagged} records held without a tag" if untagged else ""
    if end == now:
        return Check(
            "tag keys",
            "FAIL" if registered else "warn",
            "no search-tag key for today: check-ins carry no tag and a trace cannot find them; "
            "the authority seals them (`kiosk-central register-kiosk --keys DIR` or `keys rotate --data`), "
            "then `kiosk sync`" + ("" if registered else " (an offline kiosk: none is expected)") + held,
        )
    margin = cfg.sync.key_margin_days * 86_400
    day = time.strftime("%Y-%m-%d", time.gmtime(end))
    return Check(
        "tag keys",
        "ok" if end - now >= margin - 86_400 else "warn",
        f"search-tag keys until {day} ({_age(end - now)} ahead"
        + (f", within the {cfg.sync.key_margin_days}-day margin: sync" if end - now < margin - 86_400 else "")
        + f"); none of a past day kept{held}",
    )


def check_bundle(cfg: Config, store, now: float):
    """What the door trusts, asked exactly as the door asks it (kiosk.trust.HeldTrust: the
    database's verified chain, each link against the root of its version); (check, bundle in
    use or None). The bundle file is an export: one that differs and does not verify is a
    FAIL (someone changed the kiosk's files), though nothing uses it."""
    from kiosk.compose import held_trust
    from kiosk.core.bundle import BundleError
    from kiosk.core.roots import fingerprint

    try:
        trust = held_trust(cfg, store)
    except ConfigError as e:
        return Check("risk list", "FAIL", str(e)), None
    if trust.root is None:
        return Check("risk list", "warn", "no root pinned ([keys] root_key): passes' own levels only"), None
    bundle = trust.held()
    floors = trust.floors()
    history = trust.history()
    path = Path(cfg.kiosk.bundle_file)
    copy = trust.copy()
    if path.exists() and copy is not None and path.read_bytes() != copy.encode("ascii"):
        try:
            trust.verify(path.read_bytes())
        except BundleError as e:
            held = f"version {bundle.version}" if bundle else "nothing"
            return Check(
                "risk list",
                "FAIL",
                f"{path} was changed and does not verify ({e}); it is not used: the door holds the "
                f"database's verified copy ({held}); `kiosk sync` rewrites the file",
            ), bundle
    if bundle is None:
        if copy:
            return Check(
                "risk list",
                "FAIL",
                "the held bundle does not verify against the pinned root "
                f"{fingerprint(trust.root)}: passes' own levels only; `kiosk sync` fetches a good one",
            ), None
        return Check("risk list", "warn", "no bundle downloaded yet: passes' own levels only"), None
    age = now - bundle.issued_at
    successors = len(history.roots) - 1
    return Check(
        "risk list",
        "ok" if age < RISK_LIST_STALE_S else "warn",
        f"bundle version {bundle.version} (manifest {bundle.manifest_version}) verified against the "
        f"root {fingerprint(history.roots[0][0])}"
        + (
            f" and {successors} successor(s) it named (now {fingerprint(history.latest)})"
            if successors
            else ""
        )
        + f", {len(bundle.risk_list.levels)} entries, {_age(age)} old; never below versions "
        f"{floors.bundle} / {floors.manifest} (kept in the database)",
    ), bundle


def check_disk(cfg: Config) -> Check:
    folder = Path(cfg.kiosk.database).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_mb = shutil.disk_usage(folder).free / 2**20
    k = cfg.kiosk
    status = "FAIL" if free_mb < k.disk_fail_mb else "warn" if free_mb < k.disk_warn_mb else "ok"
    return Check(
        "disk",
        status,
        f"{free_mb:,.0f} MB free in {folder} (warn under "
        f"{k.disk_warn_mb} MB, FAIL under {k.disk_fail_mb} MB)",
    )


def check_update(cfg: Config) -> Check | None:
    """The last software update round (kiosk update): a release refused or gone back from is
    a warning with its reason (the kiosk keeps running the one before; the authority sees
    it too). None when no update was ever tried here."""
    from kiosk.config import releases_dir
    from kiosk.health import read_status

    status = read_status(releases_dir(cfg)).get("status")
    if not status:
        return None
    bad = status.startswith(("rolled back", "refused"))
    current = releases_dir(cfg) / "current"
    running = f"; running {os.readlink(current)}" if current.is_symlink() else ""
    return Check("update", "warn" if bad else "ok", f"last round: {status}{running}")


def check_clock(cfg: Config | None = None, now: float | None = None) -> Check:
    """NTP, and the distance from the server's time as the last signed bundle gave it: a clock
    far off (spoofed NTP, a dead battery) is a FAIL, since the door then decides on the
    stricter of the two times and records on the server's."""
    from kiosk.clock import SystemClock
    from kiosk.core.timing import CLOCK_TOLERANCE_S

    synced = SystemClock().synced()
    server = _server_time(cfg) if cfg is not None else None
    now = time.time() if now is None else now
    if server is not None and abs(server - now) > CLOCK_TOLERANCE_S:
        return Check(
            "clock",
            "FAIL",
            f"{server - now:+.0f} s off the server's time (its last signed bundle): the door decides on "
            "the stricter of the two times and records on the server's; fix the clock (`timedatectl`, NTP)",
        )
    detail = "NTP-synchronised" if synced else "not synchronised: records are flagged; check `timedatectl`"
    if server is not None:
        detail += f"; {server - now:+.0f} s from the server's time"
    return Check("clock", "ok" if synced else "warn", detail)


def _server_time(cfg: Config) -> float | None:
    """The server's time now, as the last bundle this kiosk took signed it (None: not known)."""
    from kiosk.compose import held_trust, open_store_readonly

    try:
        store = open_store_readonly(cfg)
    except Exception:
        return None
    if store is None:
        return None
    try:
        return held_trust(cfg, store).server_now()
    except Exception:
        return None
    finally:
        store.close()


def check_numpy() -> Check:
    """apt's compiled modules (picamera2's simplejpeg) import only with the numpy they were
    built for: a numpy 2 in the venv in front of the system's numpy 1 breaks the camera."""
    from kiosk.adapters.numpyabi import numpy_clash, numpy_places

    clash = numpy_clash()
    if clash:
        return Check("numpy", "FAIL", clash)
    own, system = numpy_places()
    used = own or system
    if used is None:
        return Check("numpy", "ok", "not installed (a scanner-only kiosk needs none)")
    source = "this venv" if used is own else f"the system ({used.where})"
    return Check("numpy", "ok", f"numpy {used.version} from {source}; apt's modules can import")


def check_camera(cfg: Config) -> Check:
    from kiosk.adapters.frames import SCANNER_SOURCES, open_source

    try:
        source = open_source(cfg.camera)
    except Exception as e:
        busy = any(w in str(e).lower() for w in ("busy", "in use", "acquire"))
        return Check(
            "camera", "FAIL", f"{cfg.camera.source}: {e}" + (" (is `kiosk run` holding it?)" if busy else "")
        )
    if cfg.camera.source in SCANNER_SOURCES:
        source.close()
        return Check(
            "camera",
            "ok",
            f"{cfg.camera.source} scanner {cfg.camera.scanner_device} "
            "opens; scan a printed pass with `kiosk run` to try it",
        )
    try:
        frame = source.read()
    finally:
        source.close()
    if frame is None:
        return Check("camera", "FAIL", f"{cfg.camera.source}: no frame")
    return Check(
        "camera",
        "ok",
        f"{cfg.camera.source}: {frame.shape[1]}x{frame.shape[0]} frame, mean level {float(frame.mean()):.0f}",
    )


def check_screen(cfg: Config) -> Check:
    """A configured screen: its Khmer font is there (opening the display itself would take
    it from a running kiosk)."""
    from kiosk.adapters.screen import ScreenError, khmer_font_path

    try:
        font = khmer_font_path(cfg.screen.font)
    except ScreenError as e:
        return Check("screen", "FAIL", str(e))
    return Check("screen", "ok", f"SDL driver {cfg.screen.driver}, Khmer font {font}")


def check_signal(cfg: Config, *, test: bool, pin_factory=None) -> Check:
    from kiosk.adapters.signal import MODEL_OVERRIDE, Signal, hardware_model, make_pin_factory
    from kiosk.errors import GpioError

    try:
        factory, is_mock = (
            (pin_factory, False) if pin_factory is not None else make_pin_factory(cfg.signal.pin_factory)
        )
    except GpioError as e:
        return Check("signal", "FAIL", str(e))
    if not test:
        model = hardware_model()
        if cfg.signal.pin_factory == "mock" and pin_factory is None:
            where = 'mock pins: [signal] pin_factory = "mock"'
        else:
            where = model or "no GPIO here"
        if os.environ.get(MODEL_OVERRIDE) is not None:
            where += f"; the hardware probe is overridden by ${MODEL_OVERRIDE} (tests only)"
        return Check(
            "signal",
            "warn" if is_mock or os.environ.get(MODEL_OVERRIDE) is not None else "ok",
            f"{type(factory).__name__} ({where}); --signal-test cycles the lamps",
        )
    try:
        signal = Signal(cfg.signal, pin_factory=factory)
    except GpioError as e:
        return Check("signal", "FAIL", f"{e} (is `kiosk run` holding the pins?)")
    try:
        signal.self_test(step_s=0.4)
    finally:
        signal.close()
    c = cfg.signal
    if is_mock:
        return Check("signal", "warn", "no GPIO here: the test ran on mock pins")
    return Check(
        "signal",
        "ok",
        f"test: green, red, amber{', buzzer' if c.buzzer else ''}, all "
        f"together (pins {c.green_pin}, {c.red_pin}, {c.amber_pin}"
        f"{f', {c.buzzer_pin}' if c.buzzer else ''}): did each light?",
    )


SERVER_TIMEOUT_S = 5.0


def _stored_clock_offset(cfg: Config) -> float:
    """The clock offset `kiosk sync` learnt from the server (read-only; 0 when none)."""
    from kiosk.store.sqlitedb import open_readonly

    path = Path(cfg.kiosk.database)
    if not path.is_file():
        return 0.0
    db = open_readonly(path)
    try:
        row = db.execute("SELECT value FROM state WHERE key = 'server_clock_offset'").fetchone()
        return float(row[0]) if row else 0.0
    except Exception:
        return 0.0
    finally:
        db.conn.close()


def check_server(cfg: Config, now: float) -> Check:
    """Whether the server answers this kiosk, and what it last heard from it: one signed GET
    (the same authentication an upload uses), nothing uploaded, nothing changed here."""
    import requests

    from kiosk.core import protocol
    from kiosk.core.keys import KeyFileError, load_ed25519_private

    s = cfg.sync
    if not s.server_url:
        return Check("server", "ok", "offline kiosk ([sync] server_url not set): nothing to ask")
    if not s.kiosk_id:
        return Check("server", "warn", "not asked: no [sync] kiosk_id yet")
    try:
        key = load_ed25519_private(cfg.keys.device_key)
    except KeyFileError as e:
        return Check("server", "FAIL", f"not asked: [keys] device_key: {e}")
    url = s.server_url.rstrip("/") + protocol.KIOSK_PATH
    headers = protocol.sign_request(
        key,
        kiosk_id=s.kiosk_id,
        method="GET",
        path=protocol.KIOSK_PATH,
        timestamp=int(now + _stored_clock_offset(cfg)),
        body=b"",
    )
    try:
        resp = requests.get(
            url, headers=headers, timeout=SERVER_TIMEOUT_S, verify=s.ca_bundle or s.verify_tls
        )
    except requests.exceptions.SSLError as e:
        return Check(
            "server", "FAIL", f"{s.server_url}: TLS: {type(e).__name__} (check ca_bundle / the certificate)"
        )
    except requests.exceptions.Timeout:
        return Check("server", "FAIL", f"{s.server_url}: no answer within {SERVER_TIMEOUT_S:.0f} s")
    except requests.exceptions.ConnectionError:
        return Check(
            "server",
            "FAIL",
            f"{s.server_url}: no answer (connection refused or unreachable): is the server up, "
            "[sync] server_url right, the network there?",
        )
    except requests.RequestException as e:
        return Check("server", "FAIL", f"{s.server_url}: {type(e).__name__} ([sync] server_url: a URL?)")
    try:
        body = resp.json()
    except ValueError:
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    if resp.status_code in (401, 403) and code:
        what = {
            "unknown_kiosk": f"it knows no kiosk {s.kiosk_id}: check [sync] kiosk_id (or register the kiosk)",
            "revoked": "this kiosk's registration was revoked: register it again",
            "bad_signature": "this kiosk's device key is not the one registered: check [keys] device_key",
            protocol.STALE: "this kiosk's clock is far from the server's: check the clock (NTP); "
            "`kiosk sync` corrects its requests",
        }.get(code, code)
        return Check("server", "FAIL", f"{s.server_url} answers but refuses this kiosk: {what}")
    if resp.status_code != 200 or not isinstance(body, dict) or body.get("kiosk_id") != s.kiosk_id:
        return Check(
            "server",
            "FAIL",
            f"{s.server_url} answers HTTP {resp.status_code}, not as this system's server: check "
            "[sync] server_url (a proxy page, another service, or a server older than this kiosk)",
        )
    parts = [f"{s.server_url} answers"]
    skew = float(body.get("server_time", now)) - now
    if abs(skew) >= 60:
        parts.append(f"its clock is {skew:+.0f} s from this kiosk's")
    seen = body.get("seen_at")
    parts.append(
        f"last heard from this kiosk {_age(now - float(seen))} ago" if seen else "never heard from it before"
    )
    if body.get("last_upload_at"):  # the server keeps its day only
        from datetime import UTC, datetime

        parts.append(f"last upload on {datetime.fromtimestamp(float(body['last_upload_at']), UTC):%Y-%m-%d}")
    if body.get("epoch") is not None:
        parts.append(
            f"holds {int(body['received']):,} of its records (up to number {int(body['highest_seq']):,}"
            + (f", {int(body['missing']):,} missing" if body.get("missing") else "")
            + ")"
        )
    return Check("server", "ok", "; ".join(parts))


def _guarded(name: str, fn: Callable[[], Any]) -> Iterator[Check]:
    try:
        result = fn()
    except Exception as e:  # a check that breaks is a FAIL, never a traceback
        yield Check(name, "FAIL", f"{type(e).__name__}: {e}")
        return
    yield from (result if isinstance(result, list) else [result])


def run_checks(
    cfg: Config, *, camera: bool = True, signal_test: bool = False, now: float | None = None
) -> Iterator[Check]:
    now = time.time() if now is None else now
    yield from _guarded("keys", lambda: check_keys(cfg))
    yield from _guarded("database", lambda: check_store(cfg, now))
    yield from _guarded("disk", lambda: check_disk(cfg))
    yield from _guarded("clock", lambda: check_clock(cfg, now))
    yield from _guarded("server", lambda: check_server(cfg, now))
    yield from _guarded("update", lambda: [c for c in [check_update(cfg)] if c is not None])
    yield from _guarded("numpy", check_numpy)
    if camera:
        yield from _guarded("camera", lambda: check_camera(cfg))
    if cfg.screen.enabled:
        yield from _guarded("screen", lambda: check_screen(cfg))
    yield from _guarded("signal", lambda: check_signal(cfg, test=signal_test))
