"""The faults a command ends on, each with its exit status (README: "Exit status").

Kept free of heavy imports so that every command, on either side, can catch them. systemd
acts on the status: 2 (config or usage) is not restarted, the others are.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # doctor found a FAIL; a sync round failed; scan could not read an image
EXIT_CONFIG = 2  # config or usage: fix the file, restarting will not help
EXIT_GPIO = 3  # the lamps cannot be driven on a Raspberry Pi
EXIT_REFUSED = 3  # kiosk-central: refused by the committee's rules or the log
EXIT_CAMERA = 4  # no frames: camera missing or gone, video file missing, no readable images
EXIT_DATABASE = 5  # the database cannot be opened or written (disk full, lock, damage, owner)
EXIT_INTERNAL = 70  # a bug (EX_SOFTWARE): one line in the journal, details at DEBUG
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`... | head`), as for SIGPIPE
EXIT_INTERRUPTED = 130  # Ctrl-C


class Fault(Exception):
    """A fault that ends a command with one line and its own exit status."""

    label = "error"
    exit_code = EXIT_INTERNAL


class UsageError(Fault, ValueError):
    """A user's mistake: an option, a path or a value that cannot be used. One line naming it
    and what is expected; exit 2. (A ``ValueError`` too, so code that checks values may catch
    it; a bare ``ValueError`` that reaches a command line is a bug, exit 70.)"""

    label = "error"
    exit_code = EXIT_CONFIG


class Refusal(Fault):
    """Refused by the rules: the committee's (no approved case, not an active member, one
    member where two must act), the log's (tampered), or a key's (a share that does not open).
    One line naming the rule; exit 3."""

    label = "refused"
    exit_code = EXIT_REFUSED
