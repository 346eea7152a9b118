"""Figures for the fleet's updates: the size of a release (the project and every wheel a Pi
needs), of a typical update (the project's wheel alone, when the lock did not change), and
the door's downtime during a switch (the new release's `kiosk run` from its start until it
scans: the gap a systemd restart leaves at a quiet door)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from workbench import ROOT


def bench_releases(t: Any, work: Path, keys: Path) -> None:
    import cv2
    import numpy as np

    from kiosk.updater import install_release  # the kiosk's own install path
    from sync.central.issuing import issue_pass
    from workbench.release import BuildError, build, snapshot
    from workbench.render import camera_frame
    from workbench.world import kiosk_config_text, seeded_authority

    src = snapshot(ROOT, work / "release-src")
    project = build(src, work / "release-project", project_only=True)
    size = sum((work / "release-project" / n).stat().st_size for n in project.files)
    t.add(
        "a typical update: the project's wheel (lock unchanged)",
        f"{size / 1024:.0f} KiB",
        "small enough for any link",
    )
    try:
        full = build(src, work / "release-full")
        total = sum((work / "release-full" / n).stat().st_size for n in full.files)
        t.add(
            f"a whole release for the Pi ({len(full.files)} wheels)",
            f"{total / 1e6:.1f} MB",
            "<= 300 MB ([update] max_download_mb)",
        )
    except BuildError as e:
        t.add("a whole release for the Pi", "not measured", str(e)[:60])

    from kiosk.core.releasefiles import read_release

    release = read_release((work / "release-project" / "release.json").read_bytes())
    folder = work / "releases"
    folder.mkdir()
    started = time.perf_counter()
    installed = install_release(folder, release, {n: work / "release-project" / n for n in release.files})
    t.add(
        "installing it side by side (pip --target, no network)",
        f"{time.perf_counter() - started:.1f} s",
        "while the door runs",
    )
    keys = seeded_authority(work / "release-authority")  # with its sealing periods, as installed
    frames = work / "bench-frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "pass.png"), camera_frame(issue_pass(keys, risk=0)[0], np.random.default_rng(3)))
    cfg = work / "bench-kiosk.toml"
    cfg.write_text(
        kiosk_config_text(
            keys,
            work / "bench-kiosk" / "k.db",
            camera=['source = "images"', f'images = ["{frames}"]', "loop = true", "fps = 10.0"],
        )  # fmt: skip
    )
    gaps = []
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.Popen(
            [str(installed / "bin" / "kiosk"), "run", "--config", str(cfg)],
            stderr=subprocess.PIPE, text=True, cwd=str(work),
        )  # fmt: skip
        assert p.stderr is not None
        said = []
        for line in p.stderr:
            said.append(line)
            if "kiosk running" in line:
                gaps.append(time.perf_counter() - t0)
                break
        p.terminate()
        p.wait(timeout=30)
        if not gaps:
            t.add("the door's gap at a switch", "not measured", "".join(said)[-80:].strip())
            return
    if gaps:
        t.add(
            "the door's gap at a switch: new `kiosk run` start to scanning",
            f"{min(gaps):.2f} s",
            "a quiet moment only (no check-in for quiet_s)",
        )
