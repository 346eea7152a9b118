"""`kiosk-central`: the authority's command line. It only parses and prints: each group of
commands lives in its own module (keys, the store and members, cases and reading, passes,
the fleet, the server), every rule in the authority's library beneath.

Every way a command ends is one line and a documented status (README, "Exit status"): a
user's mistake (:class:`kiosk.core.faults.UsageError`, or a key file that cannot be used) is 2,
a refusal by the committee's rules or the log (:class:`kiosk.core.faults.Refusal`) is 3, the
store's own faults are named (:func:`sync.central.cli.common.store_fault`), and anything else
is a bug: one line, exit 70, its traceback at DEBUG.
"""

from __future__ import annotations

import argparse
import sys

from sync.central.cli import (
    cases_cli,
    configfile,
    enrolment_cli,
    fleet_cli,
    keys_cli,
    members_cli,
    passes_cli,
    release_cli,
    server_cli,
)
from sync.central.cli.common import check_keys_folder, store_fault

GROUPS = (keys_cli, members_cli, cases_cli, passes_cli, server_cli, fleet_cli, enrolment_cli, release_cli)


CONFIG_HELP = (
    "the authority's configuration file (TOML: the store, the keys folders, the server's "
    f"addresses; default: ${configfile.ENV}, else {configfile.SYSTEM_FILE} if there is one); "
    "every option here overrides it"
)


def build_parser() -> argparse.ArgumentParser:
    from kiosk.core.console import version

    p = argparse.ArgumentParser(prog="kiosk-central", description="The health committee's side")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    for _, leaf in configfile.leaves(p):
        leaf.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    from kiosk.core.console import SafeText

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeText(out), SafeText(err)  # nobody's text steers the terminal
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: list[str] | None) -> int:
    from kiosk.core.console import fail, run_main
    from kiosk.core.faults import EXIT_CONFIG, EXIT_INTERNAL, UsageError
    from kiosk.core.keys import KeyFileError

    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    try:  # the configuration file: each command's defaults, before the command line is read
        path = configfile.config_path(argv)
        if path is not None:
            configfile.apply(parser, configfile.load(path))
    except UsageError as e:
        return fail("kiosk-central", e.label, e, e.exit_code)
    args = parser.parse_args(argv)
    configfile.settle_store(args, argv)

    def run(a: argparse.Namespace) -> int:
        if not hasattr(a.func, "witness"):  # every command declares what it does with the log
            return fail(
                "kiosk-central", "internal error", f"{a.func.__name__} declares no witness", EXIT_INTERNAL
            )
        try:
            check_keys_folder(a)
            return a.func(a)
        except KeyFileError as e:
            return fail("kiosk-central", "error", e, EXIT_CONFIG)
        except FileNotFoundError as e:  # one line, never a raw "[Errno 2] ..."
            return fail(
                "kiosk-central", "error", f"{e.filename}: {e.strerror}" if e.strerror else e, EXIT_CONFIG
            )

    return run_main("kiosk-central", run, args, translate=lambda e: store_fault(e, args))


if __name__ == "__main__":
    sys.exit(main())
