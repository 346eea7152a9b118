"""What both command lines share: the installed version and one runner that turns every way a
command can end into one line and a documented exit status, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from kiosk.core.faults import (
    EXIT_BROKEN_PIPE,
    EXIT_CONFIG,
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    Fault,
)

#: Maps an exception a command's own libraries raise to (label, text, exit status), or None.
Translate = Callable[[BaseException], "tuple[str, str, int] | None"]


# What a terminal or a spreadsheet must never receive from text someone else wrote (a venue
# name, a case reason, a kiosk's health summary): control characters (ESC sequences move the
# cursor, rewrite lines, set the title; BEL rings), C1 controls, and the bidirectional
# overrides that make text display other than it reads.
_UNSAFE = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0D, 0x20), 0x7F, *range(0x80, 0xA0)]}
_UNSAFE.update({c: None for c in [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """``text`` without control characters or direction overrides (newlines and tabs kept)."""
    return text.translate(_UNSAFE)


def csv_cell(value: object) -> object:
    """A value for a CSV a person opens in a spreadsheet: text that would start a formula
    (=, +, -, @, tab, CR) is prefixed with ' (OWASP's advice), and control characters go."""
    if not isinstance(value, str):
        return value
    text = printable(value) if value[:1] not in ("\t", "\r") else value
    return "'" + text if text.startswith(FORMULA_START) else text


class SafeText:
    """A text stream that passes on only printable text (stdout and stderr of the command
    lines: whatever a kiosk, a venue or a member wrote cannot steer the reader's terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("venue-kiosk")
    except PackageNotFoundError:
        return "unknown"


def fail(prog: str, label: str, error: object, code: int) -> int:
    print(f"{prog}: {label}: {error}", file=sys.stderr, flush=True)
    return code


def run_main(prog: str, func: Callable[[Any], int], args: Any, *, translate: Translate | None = None) -> int:
    """Run one command. A :class:`Fault` ends on its own status; ``translate`` names the
    errors of the command's storage; a bug is one line here and its traceback at DEBUG."""
    try:
        return func(args)
    except Fault as e:
        return fail(prog, e.label, e, e.exit_code)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the reader left (`| head`): quietly
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:
        known = translate(e) if translate is not None else None
        if known is not None:
            return fail(prog, *known)
        if isinstance(e, ModuleNotFoundError):
            return fail(
                prog,
                "missing library",
                f"{e.name} is not installed here: this command needs "
                'its role\'s set (scripts/setup --role device|central; README, "Installs")',
                EXIT_CONFIG,
            )
        if isinstance(e, PermissionError):
            return fail(
                prog,
                "permission denied",
                f"{e.filename or e}: run as the service user or check the file's owner",
                EXIT_DATABASE,
            )
        if isinstance(e, OSError):
            where = f"{e.filename}: " if e.filename else ""
            return fail(prog, "file error", f"{where}{e.strerror or e}", EXIT_DATABASE)
        logging.getLogger(prog).debug("internal error", exc_info=True)
        return fail(
            prog, "internal error", f"{type(e).__name__}: {e} (a bug: please report it)", EXIT_INTERNAL
        )
