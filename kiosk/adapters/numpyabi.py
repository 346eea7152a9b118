"""Whether this venv's numpy shadows the system's: apt's compiled modules on a Pi (picamera2's
simplejpeg, python3-numpy's friends) are built against Raspberry Pi OS's numpy (bookworm:
1.24); a numpy 2 in the venv in front of it makes them fail to import ("numpy.dtype size
changed", "_ARRAY_API not found"). Read from the files on disk: importing numpy is not needed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

_DIST = re.compile(r"^numpy-([0-9][^-]*?)\.(?:dist-info|egg-info)$")


@dataclass(frozen=True)
class NumpyPlace:
    version: str
    where: Path

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def numpy_places(
    path: list[str] | None = None, *, prefix: str | None = None
) -> tuple[NumpyPlace | None, NumpyPlace | None]:
    """(the numpy this venv installs, the system's numpy) along ``path`` (sys.path): the
    first is inside ``prefix`` (sys.prefix), the second outside it; either may be None."""
    prefix_path = Path(prefix or sys.prefix).resolve()
    own = system = None
    for entry in path if path is not None else sys.path:
        folder = Path(entry or ".")
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            m = _DIST.match(child.name)
            if not m:
                continue
            place = NumpyPlace(m.group(1), folder)
            inside = folder.resolve().is_relative_to(prefix_path)
            if inside and own is None:
                own = place
            elif not inside and system is None:
                system = place
    return own, system


def numpy_clash(path: list[str] | None = None, *, prefix: str | None = None) -> str | None:
    """One line naming the clash, or None when apt's compiled modules can import."""
    own, system = numpy_places(path, prefix=prefix)
    if own is None or system is None or own.major == system.major:
        return None
    return (
        f"numpy {own.version} in this venv ({own.where}) shadows the system's numpy "
        f"{system.version} ({system.where}), which apt's compiled modules (picamera2's simplejpeg) "
        "are built against: they cannot import. Remove it and reinstall the device set with "
        "scripts/setup --role device, which keeps the system's numpy on a Raspberry Pi"
    )
