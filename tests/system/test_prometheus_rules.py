"""The example alert rules (config/prometheus/): valid for Debian's promtool, their unit tests
pass, and every fleet metric they use is one the server really exports."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from testkit import ROOT

RULES = ROOT / "config" / "prometheus"
promtool = pytest.mark.skipif(
    not shutil.which("promtool"), reason="promtool not installed (Debian's prometheus; scripts/setup --test)"
)


@promtool
def test_the_rules_check_and_their_unit_tests_pass():
    check = subprocess.run(
        ["promtool", "check", "rules", "kiosk-central.rules.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert check.returncode == 0 and "SUCCESS: 9 rules found" in check.stdout, check.stdout + check.stderr
    unit = subprocess.run(
        ["promtool", "test", "rules", "kiosk-central.rules.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr


def test_every_fleet_metric_the_rules_use_is_exported(tmp_path):
    from prometheus_client import generate_latest

    from sync.central.server.metrics import Metrics
    from sync.central.storage.sqlite_backend import SqliteStorage

    storage = SqliteStorage.in_folder(tmp_path / "c")
    try:
        storage.register_kiosk(venue="Market", public_key=b"k" * 32, now=0)
        metrics = Metrics(storage, clock=lambda: 1_800_000_000.0)
        metrics.refresh_fleet(storage, snapshot=True)
        exported = generate_latest(metrics.registry).decode()
        assert len(storage.fleet_history(since=0)) == 1  # the hourly state `report` charts
    finally:
        storage.close()
    used = set(re.findall(r"\b(kiosk_central_fleet_\w+)", (RULES / "kiosk-central.rules.yml").read_text()))
    assert used and all(f"\n{name}" in exported for name in used), (used, exported)
    assert 'kiosk_central_fleet_attention{reason="never seen"} 1.0' in exported
    assert 'kiosk_central_fleet_kiosks{state="attention"} 1.0' in exported
