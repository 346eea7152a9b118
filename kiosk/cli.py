"""`kiosk`: the device's command line. Thin: parsing and printing over the library."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal as signals
import sqlite3
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kiosk import config as config_mod
from kiosk.config import ConfigError
from kiosk.core.console import fail, run_main, version
from kiosk.core.faults import EXIT_CHECK_FAILED, EXIT_CONFIG, EXIT_DATABASE
from kiosk.core.logs import setup_logging

log = logging.getLogger("kiosk")


def _load_config(path: str):
    cfg = config_mod.load(path)
    setup_logging(cfg.kiosk.log_level)
    return cfg


# -- kiosk run ------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from kiosk.compose import assemble_kiosk

    cfg = _load_config(args.config)
    if cfg.policy.deny_level != 3:
        log.warning(
            "deny_level is %d: the public rules refuse only the highest level (3)", cfg.policy.deny_level
        )
    stop = threading.Event()
    for sig in (signals.SIGTERM, signals.SIGINT):
        signals.signal(sig, lambda *_: stop.set())

    with ExitStack() as cleanup:
        app = assemble_kiosk(cfg, cleanup)  # a damaged database is moved aside here
        app.signal.lamp_check()  # all three together: never a decision
        log.info(
            "kiosk running: venue %s, decoder %s, camera %s, database epoch %d",
            cfg.kiosk.venue_id,
            app.decoder.name,
            cfg.camera.source,
            app.store.epoch,
        )
        totals = app.run(stop)
    log.info(
        "kiosk stopped: %d frames, %d scans, %d recorded, %d not recorded (database)",
        totals.frames,
        totals.scans,
        totals.recorded,
        totals.store_failures,
    )
    return 0


# -- kiosk scan -----------------------------------------------------------------------------------
def cmd_scan(args) -> int:
    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import expand_images, load_grey
    from kiosk.app import Trust
    from kiosk.core.decision import decide
    from kiosk.core.keys import KeyFileError, trusted_issuers

    if args.config:
        from kiosk.compose import open_store_readonly, trust_provider

        cfg = _load_config(args.config)
        store = open_store_readonly(cfg)  # what the door holds, as the door holds it
        try:
            provider = trust_provider(cfg, store=store)
            trust = provider()
        finally:
            if store is not None:
                store.close()
        if provider.bundle is None and cfg.keys.root_key:
            print(
                "kiosk scan: no verified bundle held here yet: passes' own levels and the config's keys only",
                file=sys.stderr,
            )
        decoder_name = args.decoder or cfg.decoder.name
    else:
        setup_logging("WARNING")
        keys = sorted(Path(args.keys).glob("issuer*.pub"))
        if not keys:
            raise ConfigError(f"--keys {args.keys}: no issuer*.pub key file there")
        try:
            trust = Trust(issuers=trusted_issuers(keys))
        except KeyFileError as e:
            raise ConfigError(f"--keys: {e}") from None
        decoder_name = args.decoder or "zxing"
    decoder = make_decoder(decoder_name)
    paths = expand_images(args.paths)
    if not paths:
        missing = [p for p in args.paths if not Path(p).exists()]
        why = f"no such file or folder: {' '.join(missing)}" if missing else "no images in them"
        return fail("kiosk", "error", f"{' '.join(args.paths)}: {why}", EXIT_CONFIG)
    unreadable = 0
    for path in paths:
        row: dict[str, Any] = {"path": str(path), "decision": "none", "reason": "no_code", "risk_level": None}
        img = load_grey(path)
        if img is None:
            row["reason"] = "unreadable_image"
            unreadable += 1
        else:
            texts = decoder.decode(img)
            if texts:
                d = decide(
                    texts[0],
                    trusted=trust.issuers,
                    risk_list=trust.risk_list,
                    policy=trust.policy,
                    now=time.time(),
                )
                row.update(decision=d.outcome.value, reason=d.reason.value, risk_level=d.risk_level)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            level = "" if row["risk_level"] is None else f", level {row['risk_level']}"
            print(f"{row['path']}: {row['decision']} ({row['reason']}{level})", flush=True)
    if unreadable:
        print(f"kiosk scan: {unreadable} of {len(paths)} images could not be read", file=sys.stderr)
    return EXIT_CHECK_FAILED if unreadable == len(paths) else 0


# -- kiosk purge ----------------------------------------------------------------------------------
def cmd_purge(args) -> int:
    _without_numpy()
    from kiosk.compose import held_trust, open_store
    from kiosk.core.timing import door_time
    from kiosk.enrol import drop_spent_enrol_key
    from kiosk.store.sqlitedb import purge_moved_aside

    cfg = _load_config(args.config)
    store = open_store(cfg)
    try:
        trust = held_trust(cfg, store)
        # a wrong clock keeps nothing past its class: the server's signed time when far off
        now = door_time(time.time(), trust.server_now() if trust.root else None).record
        n = store.purge(now=now)
        pruned = trust.prune(now=now)
        if pruned:  # the file is an export of the held chain: no past key left in it either
            _export_bundle(store, Path(cfg.kiosk.bundle_file))
        held = trust.held() if trust.root else None  # none yet: the code's key waits for the first
    finally:
        store.close()
    aside = purge_moved_aside(cfg.kiosk.database, now=now, after_days=cfg.retention.significant_days)
    if held is not None and drop_spent_enrol_key(cfg, list(held.tag_keys), now=now):
        print("deleted the enrolment code's tag key: no search-tag key sealed to it is still to come")
    log.info("purge: %d records past their retention (or synced) deleted", n)
    print(f"purged {n} records")
    if aside:
        print(f"deleted {len(aside)} damaged database(s) moved aside, past the longest retention")
    if pruned:
        print("dropped the search-tag keys of days already over from the stored bundle")
    return 0


def _export_bundle(store, path: Path) -> None:
    from kiosk.trust import HeldTrust

    copy = HeldTrust(store, root=None, kiosk_id=None).copy()
    if copy and path.parent.is_dir():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(copy.encode("ascii"))
        os.replace(tmp, path)


# -- kiosk keys init -------------------------------------------------------------------------------
def cmd_keys_init(args) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.keys import public_pem, write_private, write_public

    cfg = _load_config(args.config)
    key_path = Path(cfg.keys.device_key)
    pub_path = key_path.with_suffix(".pub")
    tag_path = Path(cfg.keys.tag_key)
    if key_path.exists():
        if not tag_path.exists():  # a kiosk from before search tags: add its tag key
            tag = X25519PrivateKey.generate()
            write_private(tag_path, tag)
            write_public(tag_path.with_suffix(".pub"), tag.public_key())
            print(
                f"# tag key written to {tag_path}; register {tag_path.with_suffix('.pub')} "
                "with the authority",
                file=sys.stderr,
            )
            return 0
        raise ConfigError(
            f"[keys] device_key: {key_path}: already exists; not overwriting it "
            "(a new key needs a new registration)"
        )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    write_private(key_path, key)
    write_public(pub_path, key.public_key())
    if not tag_path.exists():
        tag = X25519PrivateKey.generate()
        write_private(tag_path, tag)
        write_public(tag_path.with_suffix(".pub"), tag.public_key())
    print(
        f"# device key written to {key_path} (mode 0600); its public key, also in {pub_path},",
        file=sys.stderr,
    )
    print(
        f"# goes to the authority with {tag_path.with_suffix('.pub')} (its search-tag key): "
        "kiosk-central register-kiosk --venue NAME --public-key FILE --tag-key FILE",
        file=sys.stderr,
    )
    sys.stdout.write(public_pem(key.public_key()).decode())
    return 0


# -- kiosk enrol ----------------------------------------------------------------------------------
def cmd_enrol(args) -> int:
    if not args.camera:
        _without_numpy()
    from kiosk.enrol import code_from_camera, enrol
    from kiosk.uploader import uploader_from_config

    cfg = _load_config(args.config)
    if (args.code is None) == (not args.camera):
        raise ConfigError("kiosk enrol: give the token's CODE, or --camera to read its QR code (one of them)")
    code = args.code if args.code is not None else code_from_camera(cfg, timeout_s=args.camera_timeout)
    done = enrol(cfg, Path(args.config), code)
    print(f"enrolled: kiosk {done.kiosk_id}, venue {done.venue}; its id is written to {args.config}")
    uploader = uploader_from_config(_load_config(args.config))
    try:
        result = uploader.round()
    finally:
        uploader.store.close()
    if result.ok:
        print(f"first sync: {result.summary()}")
        return 0
    print(
        f"kiosk: first sync failed: {result.error}; the kiosk is enrolled, and `kiosk sync` "
        "(the sync service) fetches its bundle when the server can give one",
        file=sys.stderr,
    )
    return EXIT_CHECK_FAILED


# -- kiosk update ---------------------------------------------------------------------------------
def cmd_update(args) -> int:
    from kiosk.updater import update

    cfg = _load_config(args.config)
    outcome = update(cfg, check_only=args.check)
    print(outcome.line())
    return 0 if outcome.ok else EXIT_CHECK_FAILED


# -- kiosk sync -----------------------------------------------------------------------------------
def _without_numpy() -> None:
    """For the processes that never touch a frame (`kiosk sync`, `kiosk purge`): sqlite-utils
    imports numpy when it is installed, only to map numpy types, which the kiosk never
    stores; blocking it keeps `kiosk sync` at ~46 MB instead of ~57 MB on a small Pi. A
    process that already has numpy (the tests, calling main()) keeps it."""
    if "numpy" not in sys.modules:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # `import numpy` now raises ImportError


def cmd_sync(args) -> int:
    _without_numpy()
    from kiosk.uploader import Backoff, uploader_from_config

    cfg = _load_config(args.config)
    if args.retry_set_aside:
        from kiosk.compose import open_store

        store = open_store(cfg)
        try:
            n = store.retry_set_aside()
        finally:
            store.close()
        print(f"{n} set-aside records queued for upload again")
        if not cfg.sync.server_url:
            return 0
    uploader = uploader_from_config(cfg)
    try:
        if not args.loop:
            result = uploader.round()
            print(result.summary())
            if not result.ok:
                print(f"kiosk: sync failed: {result.error}; records stay queued", file=sys.stderr)
            return 0 if result.ok else 1
        stop = threading.Event()
        for sig in (signals.SIGTERM, signals.SIGINT):
            signals.signal(sig, lambda *_: stop.set())
        log.info("sync service: %s every %.0f s", cfg.sync.server_url, cfg.sync.interval_s)
        uploader.loop(
            stop,
            interval_s=cfg.sync.interval_s,
            backoff=Backoff(cfg.sync.backoff_base_s, cfg.sync.backoff_max_s),
            upload_every_s=cfg.sync.upload_every_s,
        )
        log.info("sync service stopped")
        return 0
    finally:
        uploader.store.close()


# -- kiosk doctor ---------------------------------------------------------------------------------
def cmd_doctor(args) -> int:
    from kiosk.doctor import run_checks

    cfg = _load_config(args.config)
    worst = 0
    for check in run_checks(cfg, camera=not args.no_camera, signal_test=args.signal_test):
        print(f"{check.status:4s}  {check.name:12s} {check.detail}", flush=True)
        worst = max(worst, {"ok": 0, "warn": 0, "FAIL": EXIT_CHECK_FAILED}[check.status])
    return worst


# -- kiosk demo -----------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    """The demo composes the kiosk with a local authority, so it lives with the tools of the
    source tree (scripts/workbench), outside the device package; this runs it there."""
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    if not (scripts / "workbench" / "demo.py").is_file():
        return fail(
            "kiosk",
            "demo",
            "the demo comes with the source tree: run scripts/demo in a checkout of it",
            EXIT_CONFIG,
        )
    paths = [str(scripts), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    argv = [
        sys.executable,
        "-m",
        "workbench.demo",
        *(["--keep", args.keep] if args.keep else []),
        *(["--no-server"] if args.no_server else []),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk",
        description="Venue check-in kiosk",
        epilog="exit status: 0 ok, 1 a check, round or enrolment failed, 2 config or "
        "usage, 3 GPIO, 4 camera, 5 database, 70 internal error, "
        "141 stdout closed",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the main loop: scan, decide, record, signal (until SIGTERM)")
    run.add_argument("--config", required=True)
    run.set_defaults(func=cmd_run)

    scan = sub.add_parser("scan", help="decode and decide still images; records nothing")
    src = scan.add_mutually_exclusive_group(required=True)
    src.add_argument("--config")
    src.add_argument("--keys", help="a folder with the issuer public key(s), as keys init wrote")
    scan.add_argument("--json", action="store_true", help="one JSON object per image per line")
    scan.add_argument("--decoder", choices=("zxing", "pyzbar"))
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.set_defaults(func=cmd_scan)

    keys = sub.add_parser("keys", help="this kiosk's device key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    kinit = keys_sub.add_parser("init", help="make the device key; prints the public key to register")
    kinit.add_argument("--config", required=True)
    kinit.set_defaults(func=cmd_keys_init)

    enrol = sub.add_parser(
        "enrol",
        help="join the fleet with an enrolment token's code: makes the keys, registers, writes "
        "[sync] kiosk_id, fetches the first bundle",
    )
    enrol.add_argument("--config", required=True)
    enrol.add_argument(
        "code", metavar="CODE", nargs="?", help="the token's short code (XXXXX-XXXXX-XXXXX-XXXXX)"
    )
    enrol.add_argument(
        "--camera", action="store_true", help="read the token's QR code with the kiosk's own camera instead"
    )
    enrol.add_argument(
        "--camera-timeout", type=float, default=120.0, metavar="S", help="how long to look for it (120)"
    )
    enrol.set_defaults(func=cmd_enrol)

    upd = sub.add_parser(
        "update",
        help="one update round: a newer release the committee signed, installed side by side, "
        "switched at a quiet moment, health-checked, rolled back on its own (the update timer)",
    )
    upd.add_argument("--config", required=True)
    upd.add_argument(
        "--check", action="store_true", help="only say whether a release is there for this kiosk"
    )
    upd.set_defaults(func=cmd_update)

    sync = sub.add_parser("sync", help="upload pending check-ins, fetch the bundle")
    sync.add_argument("--config", required=True)
    sync.add_argument("--loop", action="store_true", help="keep going (the sync service)")
    sync.add_argument(
        "--retry-set-aside",
        action="store_true",
        help="queue the records the server refused for upload again, first",
    )
    sync.set_defaults(func=cmd_sync)

    doctor = sub.add_parser("doctor", help="check camera, signal, database, keys, clock and sync")
    doctor.add_argument("--config", required=True)
    doctor.add_argument("--no-camera", action="store_true", help="skip opening the camera")
    doctor.add_argument(
        "--signal-test",
        action="store_true",
        help="cycle each lamp and the buzzer (stop `kiosk run` first on a Pi)",
    )
    doctor.add_argument("--no-signal", action="store_true", help=argparse.SUPPRESS)  # the old default
    doctor.set_defaults(func=cmd_doctor)

    purge = sub.add_parser("purge", help="delete records past their retention (the purge timer)")
    purge.add_argument("--config", required=True)
    purge.set_defaults(func=cmd_purge)

    demo = sub.add_parser("demo", help="the whole kiosk on made-up passes: no camera, GPIO or set-up")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's keys, database and frames here")
    demo.add_argument("--no-server", action="store_true", help="skip the central-server part")
    demo.set_defaults(func=cmd_demo)
    return p


def _translate(e: BaseException) -> tuple[str, str, int] | None:
    """The device's storage errors, in words a technician acts on."""
    if isinstance(e, sqlite3.Error):
        return "database error", f"{e} (see `kiosk doctor`)", EXIT_DATABASE
    if isinstance(e, PermissionError):
        return (
            "permission denied",
            f"{e.filename or e}: run as the service user (sudo -u kiosk ...) or check the file's owner",
            EXIT_DATABASE,
        )
    return None


def main(argv=None) -> int:
    from kiosk.core.console import SafeText

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeText(out), SafeText(err)  # nobody's text steers the terminal
    try:
        args = build_parser().parse_args(argv)
        return run_main("kiosk", args.func, args, translate=_translate)
    finally:
        sys.stdout, sys.stderr = out, err


if __name__ == "__main__":
    sys.exit(main())
