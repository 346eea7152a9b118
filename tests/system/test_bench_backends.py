"""`scripts/bench --only-backends`, tiny: every figure printed beside its raw limit (ingest
beside INSERT and COPY, and SQLite's beside its executemany; the loaded poll beside the idle
one; the trace beside the index floor), at each size asked, and the trace finds the visits."""

import re
import subprocess

import pytest

from testkit import ROOT
from workbench.pgserver import server_binaries


def test_the_backend_figures_stand_beside_their_raw_limits():
    if server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries (apt install postgresql)")
    r = subprocess.run(
        [ROOT / "scripts" / "bench", "--only-backends", "--backend-sizes", "3000,6000",
         "--backend-kiosks", "4", "--backend-rounds", "1", "--national-venues", "300",
         "--national-rows", "9000"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert re.search(r"ingest on SQLite.* [\d.]+x its raw executemany \([\d,]+/s", out), out
    for size in ("3,000", "6,000"):
        assert re.search(rf"at {size} rows .*x raw INSERT \([\d,]+/s.*x COPY \([\d,]+/s", out), out
        assert re.search(rf"CPU a record .*at {size} rows +\d+ us +raw INSERT \d+ us", out), out
        assert re.search(rf"poll p99 .*at {size} rows +\d+ ms +idle p99 \d+ ms", out), out
        assert re.search(rf"trace .*at {size} rows .* 5 visits found.*index floor", out), out
    assert re.search(r"trace .*at 300 venues .* 5 visits found.*4,5\d\d tags looked up", out), out
