"""What every group of `kiosk-central` commands shares: the store opened once a command (and
closed), the witness check each command declares, the options and value types, the two
members' keys, and the store's faults in one line."""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.core.faults import UsageError
from kiosk.core.retention import NORMAL_DAYS, SIGNIFICANT_DAYS

Handler = Callable[[argparse.Namespace], int]


class Witness(enum.Enum):
    """What a command does with the committee's log, declared with the command (:func:`command`)."""

    NONE = "none"  # it does not touch the log
    CHECKS = "checks"  # refused if the log is shorter than this machine or a kiosk saw; remembers its head
    RECORDS = "records"  # checks the log its own way (audit) or makes it (init); remembers its head


def command(*, witness: Witness) -> Callable[[Handler], Handler]:
    """A command's declaration: what it does with the log (every command says; a command
    without one is refused as a bug before it runs)."""

    def declare(func: Handler) -> Handler:
        func.witness = witness  # type: ignore[attr-defined]
        return func

    return declare


def store_name(args: argparse.Namespace) -> str:
    """The store as this machine's witness file names it (a URL without its password)."""
    import re

    if getattr(args, "database", None):
        return "postgresql:" + re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", args.database)
    return "sqlite:" + str(Path(args.data).resolve())


class Session:
    """One command's store, opened once: the storage, and the committee's log verified once
    (``state``), handed to whatever the command calls."""

    def __init__(self, storage: Any, *, store: str, witness: Witness) -> None:
        self.storage, self.store, self.witness = storage, store, witness
        self.verified: Any = None  # the log's State, once read

    @property
    def state(self) -> Any:
        return self.verify()

    def verify(self) -> Any:
        """The log, verified once (and, for a command that checks it, against every witness)."""
        if self.verified is None:
            from sync.central.committee.verify import witnessed_log

            store = self.store if self.witness is Witness.CHECKS else None
            self.verified = witnessed_log(self.storage, store=store).state
        return self.verified

    def remember(self) -> None:
        """This machine witnesses the head it verified (the log may only grow from it)."""
        from sync.central.committee.witness import remember

        if self.verified is not None and self.verified.count:
            remember(self.store, self.verified.count, self.verified.head)


def store_of(args: argparse.Namespace, *, readonly: bool = False, create: bool = False) -> Any:
    """The store the command's --data or --database names (sync.central.storage.opening)."""
    from sync.central.storage.interface import ServerRetention
    from sync.central.storage.opening import open_storage

    return open_storage(
        data=getattr(args, "data", None),
        database=getattr(args, "database", None),
        retention=ServerRetention(
            normal_days=getattr(args, "normal_days", NORMAL_DAYS),
            significant_days=getattr(args, "significant_days", SIGNIFICANT_DAYS),
        ),
        read_database=getattr(args, "read_database", None),
        readonly=readonly,
        create=create,
    )


@contextmanager
def session(args: argparse.Namespace, *, readonly: bool = False, create: bool = False) -> Iterator[Session]:
    """The store the command names, opened once and closed: read-only for the commands that
    only look; ``create`` for `init` alone. A command that checks the log has it verified
    against this machine's and the kiosks' witnesses before it does anything, and this
    machine remembers the head after it succeeded."""
    storage = store_of(args, readonly=readonly, create=create)
    witness = getattr(args.func, "witness", Witness.NONE)
    s = Session(storage, store=store_name(args), witness=witness)
    try:
        if witness is Witness.CHECKS:
            s.verify()  # against every witness, before anything is done
        yield s
        if witness is not Witness.NONE:
            s.remember()
    finally:
        storage.close()


# -- options and their values -------------------------------------------------------------------
def where(p: argparse.ArgumentParser, *, required: bool = True, data_help: str | None = None) -> None:
    """--data DIR (SQLite in that folder: a pilot) or --database URL (PostgreSQL)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--data", metavar="DIR", help=data_help or "the server's SQLite database lives here")
    g.add_argument(
        "--database", metavar="URL", help="PostgreSQL, e.g. postgresql://user@host/db (instead of --data)"
    )


def read_replica(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--read-database",
        metavar="URL",
        help="a PostgreSQL streaming replica of --database: reads of records and aggregates go there "
        "(the audit log, and what this command writes, stay on --database)",
    )


def retention_args(p: argparse.ArgumentParser) -> None:
    def days(limit: int) -> Callable[[str], int]:
        def parse(text: str) -> int:
            n = int(text)
            if not 1 <= n <= limit:
                raise argparse.ArgumentTypeError(f"must be 1..{limit} (the public rules)")
            return n

        return parse

    p.add_argument(
        "--normal-days",
        type=days(NORMAL_DAYS),
        default=NORMAL_DAYS,
        metavar="N",
        help="days a normal record is readable (its key's life) and upload receipts are kept "
        "(default and most 28)",
    )
    p.add_argument(
        "--significant-days",
        type=days(SIGNIFICANT_DAYS),
        default=SIGNIFICANT_DAYS,
        metavar="N",
        help="days every record's row is kept after capture, whatever its class (the server is "
        "not told which are significant; default and most 90)",
    )


def port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return n


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return n


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, above 0 and at most 3600")
    return value


def hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of hours, like 6 or 0.5")
    return value


def entry_days(text: str) -> float:
    """How long a risk entry lasts: above 0 and at most the longest retention (90 days)."""
    import math

    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, not {text!r}") from None
    if not math.isfinite(n) or not 0 < n <= SIGNIFICANT_DAYS:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {SIGNIFICANT_DAYS} days, not {text}")
    return n


def when(text: str | None) -> float | None:
    """--from/--to as a Unix time (ISO 8601 in; refused in words otherwise)."""
    from sync.central.issuing import parse_time

    return parse_time(text).timestamp() if text else None


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def pass_id_arg(text: str) -> bytes | None:
    """--pass-id as issue-pass printed it; None (after saying why) if it is not one."""
    from kiosk.core.passes import PASS_ID_BYTES

    try:
        pass_id = bytes.fromhex(text)
    except ValueError:
        pass_id = b""
    if len(pass_id) != PASS_ID_BYTES:
        print(
            f"kiosk-central: --pass-id: expected {2 * PASS_ID_BYTES} hex digits (the id issue-pass printed)",
            file=sys.stderr,
        )
        return None
    return pass_id


# -- the members acting ---------------------------------------------------------------------------
TWO_MEMBERS = (
    "needs two committee members acting together: give --member-key twice, one key file of "
    "each (the committee's keys are split between members; one alone opens nothing)"
)


def member_key(path: str) -> Any:
    from kiosk.core.keys import load_ed25519_private

    return load_ed25519_private(path)


def two_member_keys(paths: list[str] | None) -> tuple[Any, Any]:
    if not paths or len(paths) != 2:
        raise UsageError(f"this command {TWO_MEMBERS}")
    first, second = member_key(paths[0]), member_key(paths[1])
    if first.public_key() == second.public_key():
        raise UsageError(f"both --member-key files hold the same member's key: this command {TWO_MEMBERS}")
    return first, second


def check_keys_folder(args: argparse.Namespace) -> None:
    """--keys names the authority's keys folder (what `keys init` made: root.pub is always in
    it), never a typo that a command would fill or read nothing from. `serve --keys` is the
    server's own folder, checked by serve."""
    keys = getattr(args, "keys", None)
    if not keys or args.command == "serve":
        return
    from kiosk.core.keys import BUNDLE_KEY, ISSUER_PUB, ROOT_PUB

    folder = Path(keys)
    if not folder.is_dir():
        raise UsageError(
            f"--keys {keys}: no such folder (the authority's keys folder, made by "
            f"`kiosk-central keys init --dir {keys}`)"
        )
    if not (folder / ROOT_PUB).is_file():
        raise UsageError(
            f"--keys {keys}: not the authority's keys folder (no {ROOT_PUB} in it; "
            "`kiosk-central keys init --dir DIR` makes one)"
        )
    if not (folder / ISSUER_PUB).is_file() and (folder / BUNDLE_KEY).is_file():
        raise UsageError(
            f"--keys {keys}: the server's keys folder (made by `keys server`), not the authority's: "
            "give the authority's keys folder (the one `kiosk-central keys init` made)"
        )


# -- the store's faults, in one line ----------------------------------------------------------------
def store_fault(e: BaseException, args: argparse.Namespace) -> tuple[str, str, int] | None:
    """A fault of the store itself, in one line naming it and what to do (never a traceback,
    never "internal error"): damaged (2), not this user's to read or write, busy (5)."""
    import sqlite3

    data = getattr(args, "data", None)
    where_ = f"--data {data}: central.db" if data else "the store"
    if isinstance(e, sqlite3.Error):
        text = str(e)
        if "not a database" in text or "malformed" in text or "disk image" in text:
            return (
                "error",
                f"{where_} is damaged ({text}): restore it from the last backup (nothing here re-creates "
                "it over the damaged file)",
                2,
            )
        if "readonly" in text or "unable to open" in text or "permission" in text.lower():
            import getpass

            return (
                "permission denied",
                f"{where_}: {text} as user {getpass.getuser()}: run this as the store's owner (the "
                "server's user: sudo -u kiosk-central ...), or give this user read access to central.db "
                "and its -wal and -shm files (status, report, reads, case list and audit only read)",
                5,
            )
        if "locked" in text or "busy" in text:
            return "busy", f"{where_}: {text}: another command holds it: try again in a moment", 5
        return "database error", f"{where_}: {text}", 5
    try:
        import psycopg
    except ImportError:
        return None
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        first = str(e).strip().splitlines()[0]
        return (
            "permission denied",
            f"the database role may not do this ({first}): run it with a login in the right role "
            "(README: database roles)",
            5,
        )
    if isinstance(e, psycopg.errors.ReadOnlySqlTransaction):
        return "error", f"this command tried to write through a read-only session ({e}): a bug", 70
    if isinstance(e, psycopg.Error):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return "database error", f"the PostgreSQL database: {first}", 5
    return None
