"""`kiosk-central status` and `report` for 200 and 10,000 kiosks (`scripts/bench --only-fleet`):
a seeded fleet (workbench.fleetsim) in a real store, each command run as an operator runs it
(its own process: start-up included), beside the raw limit (the same rows read in one SQL
query each). Goal: status within 1 s at 10,000 kiosks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 1.0


def _cli(*args) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "sync.central.cli", *map(str, args)], capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]}: {p.stderr.strip()}")
    return took


def bench_fleet(t, work: Path, *, sizes=(200, 10_000)) -> None:
    """On SQLite (the pilot's store)."""
    from sync.central.storage.opening import open_storage
    from workbench.fleetsim import simulate_fleet

    now = time.time()
    for n in sizes:
        folder = work / f"fleet-{n}"
        where = ["--data", folder]
        subprocess.run(
            [sys.executable, "-m", "sync.central.cli", "init", *where],
            capture_output=True,
            check=True,
        )
        storage = open_storage(data=folder)
        t0 = time.perf_counter()
        try:
            simulate_fleet(storage, kiosks=n, now=now, seed=f"bench-{n}")
            made = time.perf_counter() - t0
            t0 = time.perf_counter()
            for table in ("kiosks", "kiosk_health", "sequence_summary", "sequence_gaps"):
                storage._q(f"SELECT * FROM {table}")
            raw = time.perf_counter() - t0
        finally:
            storage.close()
        status = min(_cli("status", *where) for _ in range(3))
        as_json = _cli("status", *where, "--json")
        report = _cli("report", *where, "--html", work / f"fleet-{n}.html")
        t.add(f"SQLite: {n:,} kiosks simulated (health, batches, gaps, 28 days of state)", f"{made:,.1f} s")
        t.add(
            f"  kiosk-central status, {n:,} kiosks (a process: start-up included)",
            f"{status:.2f} s",
            f"goal <= {GOAL_S:.0f} s at 10,000; raw: the 4 tables read in {raw * 1000:.0f} ms",
        )
        t.add(f"  kiosk-central status --json, {n:,} kiosks", f"{as_json:.2f} s", "")
        t.add(
            f"  kiosk-central report --html, {n:,} kiosks",
            f"{report:.2f} s",
            f"{(work / f'fleet-{n}.html').stat().st_size / 1024:,.0f} KiB page",
        )
