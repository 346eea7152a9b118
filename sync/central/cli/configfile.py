"""The authority's configuration file: the store, the keys folders, the server's listen
addresses and limits, so that the operator's and the committee's commands fit on one line
(`kiosk-central status`). TOML, like the kiosk's (config/kiosk-central.example.toml); found by
``--config FILE``, the environment variable ``KIOSK_CENTRAL_CONFIG``, or else
/etc/kiosk-central/config.toml when it exists. Every option on the
command line overrides it; an unknown or misspelt key is refused, naming it. Relative paths are
relative to the file's folder.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.core.faults import UsageError

ENV = "KIOSK_CENTRAL_CONFIG"
SINGLE_MEMBER = {  # the commands one member runs: the file may name that member's own key
    "case open", "case approve", "case close", "member found", "member approve", "member revoke",
    "exposures publish",
}  # fmt: skip


@dataclass(frozen=True)
class Key:
    """One key of the file: the option it stands for (``dest``), for which commands (None: every
    command that has that option), and how its value is read."""

    dest: str
    kind: type | tuple[type, ...] = str
    path: bool = False
    commands: Callable[[str], bool] | None = None
    convert: Callable[[str], Any] | None = None  # the option's own check (a port, a number >= 1)


def _not_serve(command: str) -> bool:
    return command != "serve"


def _serve(command: str) -> bool:
    return command == "serve"


def _one_member(command: str) -> bool:
    return command in SINGLE_MEMBER


def schema() -> dict[str, dict[str, Key]]:
    from sync.central.cli.common import hours, port, positive, seconds

    return {
        "store": {
            "data": Key("data", path=True),
            "database": Key("database"),
            "read_database": Key("read_database"),
        },
        "authority": {"keys": Key("keys", path=True, commands=_not_serve)},
        "committee": {"member_key": Key("member_key", path=True, commands=_one_member)},
        "server": {
            "keys": Key("keys", path=True, commands=_serve),
            "host": Key("host"),
            "port": Key("port", int, convert=port),
            "metrics_host": Key("metrics_host"),
            "metrics_port": Key("metrics_port", int, convert=port),
            "workers": Key("workers", int, convert=positive),
            "ingest_slots": Key("ingest_slots", int, convert=positive),
            "header_timeout": Key("header_timeout", (int, float), convert=seconds),
            "tls_cert": Key("tls_cert", path=True),
            "tls_key": Key("tls_key", path=True),
            "access_log": Key("access_log", bool),
        },
        "retention": {
            "normal_days": Key("normal_days", int),
            "significant_days": Key("significant_days", int),
        },
        "status": {
            "silent_hours": Key("silent_hours", (int, float), convert=hours),
            "stale_bundle_hours": Key("stale_bundle_hours", (int, float), convert=hours),
        },
    }


SYSTEM_FILE = Path("/etc/kiosk-central/config.toml")  # the server's, where one is installed


def config_path(argv: list[str]) -> Path | None:
    """The file named by ``--config FILE`` (anywhere in the command line), else by the
    environment, else the server's own (:data:`SYSTEM_FILE`) when there is one; None when
    there is none."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    named = known.config or os.environ.get(ENV) or None
    if named:
        return Path(named)
    return SYSTEM_FILE if SYSTEM_FILE.is_file() else None


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The file's values, checked against :func:`schema` (refused in one line, naming the
    key), paths made absolute from the file's folder."""
    where = f"--config {path}" if path else ENV
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file (the authority's configuration file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{where}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML ({e})") from None
    known = schema()
    out: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in known:
            raise UsageError(f"{path}: [{section}]: no such section (known: {', '.join(known)})")
        if not isinstance(values, dict):
            raise UsageError(f"{path}: {section}: a [section], not a value")
        for name, value in values.items():
            key = known[section].get(name)
            if key is None:
                names = ", ".join(known[section])
                raise UsageError(f"{path}: [{section}] {name}: not a key of [{section}] (known: {names})")
            if not isinstance(value, key.kind) or (isinstance(value, bool) and key.kind is not bool):
                kinds = key.kind if isinstance(key.kind, tuple) else (key.kind,)
                raise UsageError(
                    f"{path}: [{section}] {name}: {value!r} is not {' or '.join(k.__name__ for k in kinds)}"
                )
            if key.convert is not None:
                try:
                    value = key.convert(str(value))
                except argparse.ArgumentTypeError as e:
                    raise UsageError(f"{path}: [{section}] {name}: {e}") from None
            if key.path:
                value = str((path.parent / Path(value).expanduser()).resolve())
            out.setdefault(section, {})[name] = value
    store = out.get("store", {})
    if "data" in store and "database" in store:
        raise UsageError(f"{path}: [store]: data or database, not both (SQLite in a folder, or PostgreSQL)")
    return out


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command's own parser, with its name (``"case open"``)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, (*path, name))


def apply(parser: argparse.ArgumentParser, config: dict[str, dict[str, Any]]) -> None:
    """The file's values become each command's defaults (what the command line does not say),
    and an option the file gives is no longer required on the command line."""
    known = schema()
    for command, leaf in leaves(parser):
        dests = {a.dest: a for a in leaf._actions}
        defaults = {}
        for section, values in config.items():
            for name, value in values.items():
                key = known[section][name]
                action = dests.get(key.dest)
                if action is None or (key.commands is not None and not key.commands(command)):
                    continue
                if isinstance(action, argparse._AppendAction):
                    continue  # two members act: each gives their own key
                defaults[key.dest] = value
                action.required = False
        if not defaults:
            continue
        if {"data", "database"} & set(defaults):
            for group in leaf._mutually_exclusive_groups:
                if {a.dest for a in group._group_actions} == {"data", "database"}:
                    group.required = False
        leaf.set_defaults(**defaults)


def settle_store(args: argparse.Namespace, argv: list[str]) -> None:
    """The command line's --data or --database wins over the file's store (they exclude each
    other, so the file's other one goes)."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    if "--database" in given and "--data" not in given and hasattr(args, "data"):
        args.data = None
    if "--data" in given and "--database" not in given and hasattr(args, "database"):
        args.database = None
