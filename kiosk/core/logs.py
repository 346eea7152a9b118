"""Logging set-up for both commands: syslog priorities under journald, timestamps elsewhere.

Under systemd, stderr is the journal's stream (``$JOURNAL_STREAM`` names its device and
inode); each line then starts with ``<N>`` (3 error, 4 warning, 6 info, 7 debug), so
``journalctl -p warning`` shows what matters. Anywhere else lines carry a timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{record.name}: {record.getMessage()}"


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """True when $JOURNAL_STREAM names the very file stderr is (not an inherited variable)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if stderr_is_journal(stream):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z"
            )
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
