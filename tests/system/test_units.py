"""The systemd units, checked by systemd itself: `systemd-analyze verify` says nothing and
`systemd-analyze security --offline=true` scores each unit within its goal. scripts/setup
--test installs systemd-analyze where it is missing, so CI runs these."""

import re
import shutil
import subprocess

import pytest

from testkit import BIN, ROOT

UNITS = ROOT / "systemd"
GOALS = {
    "kiosk.service": 3.0,
    "kiosk-sync.service": 2.0,
    "kiosk-purge.service": 2.0,
    "kiosk-update.service": 3.0,  # root: installs releases, restarts the services
    "kiosk-central.service": 2.0,
    "kiosk-central-purge.service": 2.0,
    "kiosk-central@8001.service": 2.0,
}
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed here (scripts/setup --test installs it)"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The units as scripts/install-pi installs them, but running this checkout's kiosk."""
    d = tmp_path_factory.mktemp("units")
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/kiosk/.venv/bin/", str(BIN) + "/")
        text = text.replace("/opt/kiosk/releases/current/bin/", str(BIN) + "/")
        (d / unit.name).write_text(text)
        if unit.name.endswith("@.service"):  # a template: checked as one instance of it
            (d / unit.name.replace("@.", "@8001.")).write_text(text)
    return d


@needs_analyze
@pytest.mark.parametrize("unit,goal", GOALS.items())
def test_each_unit_meets_its_hardening_goal(installed, unit, goal):
    p = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(installed / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout[-500:] + p.stderr
    assert float(m.group(1)) <= goal, p.stdout


@needs_analyze
def test_systemd_analyze_verify_is_clean(installed):
    p = subprocess.run(
        [
            ANALYZE,
            "verify",
            "--man=no",
            *[
                str(installed / u)
                for u in (
                    "kiosk.service",
                    "kiosk-sync.service",
                    "kiosk-purge.service",
                    "kiosk-purge.timer",
                    "kiosk-update.service",
                    "kiosk-update.timer",
                    "kiosk-central.service",
                    "kiosk-central-purge.service",
                    "kiosk-central-purge.timer",
                    "kiosk-central@8001.service",
                )
            ],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed,
    )
    assert p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "", p.stderr


def test_units_keep_what_the_kiosk_needs_and_name_the_config_exit():
    kiosk = (UNITS / "kiosk.service").read_text()
    for line in (
        "WorkingDirectory=/var/lib/kiosk",
        "Environment=LG_WD=/run/kiosk",
        "RuntimeDirectory=kiosk",
        "RestartPreventExitStatus=2",
        "DevicePolicy=closed",
        "DeviceAllow=char-gpiochip rw",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-media rw",
        "DeviceAllow=char-dma_heap rw",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ):
        assert line in kiosk, line
    for name in ("kiosk-sync.service", "kiosk-purge.service"):
        text = (UNITS / name).read_text()
        assert "DeviceAllow" not in text and "RestrictSUIDSGID=yes" in text
        assert "IPAddressDeny=any" in text
    from kiosk.core.faults import EXIT_CONFIG

    assert EXIT_CONFIG == 2
