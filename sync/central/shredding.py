"""Destroying a key file so that no copy of it stays on the disk's file: overwritten with
random bytes, synced, unlinked, and its folder synced (crypto-shredding's last step)."""

from __future__ import annotations

import os
from pathlib import Path


def shred(path: Path) -> None:
    """Overwrite a key file with random bytes, fsync, unlink, fsync its folder."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(os.urandom(max(size, 1)))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
