"""Tools that compose the kiosk and the authority from above: the demo, the benchmarks, the
fault suite and the helpers the tests share. Outside the installed packages on purpose: the
device never imports the authority, and these need both."""

from __future__ import annotations

import os
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent


def environ_with_workbench(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose Python finds ``workbench`` (for ``python -m workbench.X``)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), *filter(None, [env.get("PYTHONPATH")])])
    return env
