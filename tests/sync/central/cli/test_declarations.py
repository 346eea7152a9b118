"""Every `kiosk-central` command declares what it does with the committee's log, so a check
against rollback never hangs on a command's name (renaming one changes nothing), and the
commands that act on the log are the ones that check it."""

from __future__ import annotations

import argparse

from sync.central.cli import build_parser
from sync.central.cli.common import Witness


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser.get_default("func")
        return
    for name, sub in subs[0].choices.items():
        yield from commands(sub, (*path, name))


def test_every_command_declares_what_it_does_with_the_log():
    found = dict(commands(build_parser()))
    assert len(found) >= 30
    undeclared = [
        name for name, func in found.items() if not isinstance(getattr(func, "witness", None), Witness)
    ]
    assert undeclared == []


def test_the_commands_that_act_on_the_log_check_it_against_its_witnesses():
    found = dict(commands(build_parser()))
    acting = [
        "member add", "member found", "member approve", "member revoke", "case open", "case approve",
        "case close", "case list", "set-risk", "trace", "open-records", "manifest publish", "keys retire",
        "keys share", "reads", "exposures publish",
    ]  # fmt: skip
    assert {name: found[name].witness for name in acting} == dict.fromkeys(acting, Witness.CHECKS)
    for name in ("init", "audit show", "audit head", "audit verify"):  # they make it, or check it their way
        assert found[name].witness is Witness.RECORDS, name
