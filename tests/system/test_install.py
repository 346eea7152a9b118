"""scripts/install-pi as a technician runs it: --help, and --dry-run, which prints every
step and changes nothing (so it runs here, where there is no Pi and no systemd)."""

import os
import subprocess

from testkit import ROOT

SCRIPT = ROOT / "scripts" / "install-pi"


def run(*args):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_help_names_every_option():
    p = run("--help")
    assert p.returncode == 0
    for opt in ("--dry-run", "--uninstall", "--purge-data", "--config", "--enrol"):
        assert opt in p.stdout
    assert run("--bogus").returncode == 2
    assert run("--purge-data").returncode == 2


def steps(out):
    return [line[2:] for line in out.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path):
    before = os.path.exists("/etc/kiosk"), os.path.exists("/usr/local/bin/kiosk")
    p = run("--dry-run")
    assert p.returncode == 0, p.stderr
    s = steps(p.stdout)
    assert any(x.startswith("useradd --system") for x in s)
    assert "ln -sfn /opt/kiosk/releases/current/bin/kiosk /usr/local/bin/kiosk" in s  # README's commands work
    assert "install -d -m 0755 /opt/kiosk/releases /opt/kiosk/releases/base /opt/kiosk/releases/base/bin" in s
    assert "ln -sfn base /opt/kiosk/releases/current" in s  # the services run the base install first
    assert 'exec /opt/kiosk/.venv/bin/kiosk "$@"' in p.stdout
    assert any(x.startswith("install -d -o kiosk -g kiosk -m 0700 /var/lib/kiosk") for x in s)
    assert any(x.startswith("runuser -u kiosk -- /opt/kiosk/.venv/bin/kiosk doctor") for x in s)
    assert not any(x.startswith("sudo") for x in s)  # root needs no sudo
    assert "systemctl enable --now kiosk.service kiosk-purge.timer" in s
    assert not any("kiosk-sync.service" in x and "enable" in x for x in s)  # no sync configured
    assert p.stdout.rstrip().endswith("(dry run: nothing was changed)")
    assert (os.path.exists("/etc/kiosk"), os.path.exists("/usr/local/bin/kiosk")) == before


def _config(tmp_path, kiosk_id):
    text = (ROOT / "config" / "kiosk.example.toml").read_text()
    text = text.replace('venue_id = "CHANGE-ME"', 'venue_id = "venue-9"')
    text = text.replace('server_url = ""', 'server_url = "http://127.0.0.1:8080/"')
    text = text.replace('kiosk_id = ""', f'kiosk_id = "{kiosk_id}"')
    text = text.replace('device_key = ""', f'device_key = "{tmp_path / "device.key"}"')
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(text)
    return cfg


def test_the_device_key_is_made_as_the_service_user_and_sync_waits_for_a_kiosk_id(tmp_path):
    p = run("--dry-run", "--config", _config(tmp_path, ""))
    s = steps(p.stdout)
    assert p.returncode == 0, p.stderr
    assert any(x.startswith("runuser -u kiosk -- /opt/kiosk/.venv/bin/kiosk keys init") for x in s)
    assert "sync is not enabled yet" in p.stdout
    assert not any("kiosk-sync.service" in x and "enable" in x for x in s)


def test_enrol_joins_the_fleet_in_one_step_and_hands_the_files_to_the_service_user(tmp_path):
    p = run("--enrol", "ABCDE-FGHJK-MNPQR-STVW0", "--dry-run", "--config", _config(tmp_path, ""))
    s = steps(p.stdout)
    assert p.returncode == 0, p.stderr
    enrol = s.index(
        f"/opt/kiosk/.venv/bin/kiosk enrol --config {tmp_path / 'kiosk.toml'} ABCDE-FGHJK-MNPQR-STVW0"
    )
    assert s[enrol + 1] == "chown -R kiosk:kiosk /var/lib/kiosk"
    assert not any(" keys init " in x for x in s)  # enrol makes the keys
    assert run("--enrol").returncode != 0  # the code is required


def test_with_a_kiosk_id_sync_is_enabled_and_may_reach_only_the_server_and_dns(tmp_path):
    p = run("--dry-run", "--config", _config(tmp_path, "k-0123456789abcdef"))
    assert p.returncode == 0, p.stderr
    assert "systemctl enable --now kiosk-sync.service kiosk-update.timer" in steps(p.stdout)
    allow = next(line for line in p.stdout.splitlines() if line.startswith("IPAddressAllow="))
    assert "127.0.0.1" in allow


def test_uninstall_keeps_the_data_unless_asked(tmp_path):
    p = run("--dry-run", "--uninstall")
    assert p.returncode == 0 and "kept /var/lib/kiosk" in p.stdout
    assert not any(x.startswith("rm -rf /var/lib/kiosk") for x in steps(p.stdout))
    p = run("--dry-run", "--uninstall", "--purge-data")
    assert any(x.startswith("rm -rf /var/lib/kiosk") for x in steps(p.stdout))
