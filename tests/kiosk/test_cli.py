"""The command line as a user runs it: real processes, real files, real images."""

import json
import os
import re
import shutil
import stat
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sync.central.keyring import server_keys_folder
from testkit import BIN, ROOT, committee_with_a_case
from testkit import run_bin as run
from workbench.world import kiosk_config_text

README = (ROOT / "README.md").read_text()


# -- README's two commands -------------------------------------------------------------------------
def readme_commands():
    blocks = re.findall(r"## Two commands\n(.*?)\n## ", README, re.S)[0]
    return re.findall(r"```\n(.*?)\n```", blocks, re.S)


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    assert readme_commands() == ["scripts/demo", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec scripts/test\s*$", ci, re.M)
    for script in ("demo", "test", "setup"):
        assert os.access(ROOT / "scripts" / script, os.X_OK)
    # Both commands do their own set-up first, then run the venv's entry points.
    assert "scripts/setup" in (ROOT / "scripts" / "demo").read_text()
    assert "kiosk demo" in (ROOT / "scripts" / "demo").read_text()
    assert "scripts/setup" in (ROOT / "scripts" / "test").read_text()


def test_every_command_the_readme_and_the_manual_name_exists():
    """Each `kiosk X` and `kiosk-central X Y` written in README or the manual is a real command
    (its parser takes --help): a renamed command cannot leave the pages behind."""
    from kiosk.cli import build_parser as kiosk_parser
    from sync.central.cli import build_parser as central_parser

    texts = [README, *(p.read_text() for p in (ROOT / "docs").rglob("*.md"))]
    named = {
        (prog, words)
        for t in texts
        for prog, words in re.findall(r"`(kiosk|kiosk-central) ([a-z][a-z -]*)", t)
    }
    named.discard(("kiosk", "id"))  # `kiosk id`: a line of kiosk doctor, not a command
    assert len(named) > 20
    for prog, words in sorted(named):
        parser = kiosk_parser() if prog == "kiosk" else central_parser()
        args = words.split()
        for n in range(len(args), 0, -1):  # `kiosk-central keys retire` or `kiosk-central status`
            try:
                parser.parse_args([*args[:n], "--help"])
            except SystemExit as e:
                if e.code == 0:
                    break
        else:
            raise AssertionError(f"{prog} {words}: no such command")


@pytest.mark.slow  # a whole run: in the full suite, not the fast lane
def test_the_demo_runs_and_prints_its_totals(tmp_path):
    p = run("kiosk", "demo", "--keep", tmp_path / "demo", timeout=300)
    out = p.stdout
    assert (
        "totals: frames 255, scans 9, admitted 2, admitted and told to get tested 2, refused 1, "
        "invalid 4, recorded 4, "
        "repeats 1, decoder errors 0"
    ) in out
    assert out.count("GREEN") >= 4 and out.count("RED") >= 1 and out.count("AMBER") == 4
    assert "one member's key alone opens nothing" in out
    assert "two members together open record 1: decision admit, level 0, venue demo-venue" in out
    assert re.search(r"synced \d+, pending 0", out)
    assert "refused on its next scan" in out
    assert out.rstrip().endswith("demo OK")
    assert (tmp_path / "demo" / "kiosk.db").exists()


# -- keys and passes ---------------------------------------------------------------------------------
def test_keys_init_makes_private_files_0600_and_refuses_to_overwrite(tmp_path):
    d = tmp_path / "auth"
    run("kiosk-central", "keys", "init", "--dir", d)
    names = sorted(p.name for p in d.iterdir())
    assert names == [
        "bundle.key",
        "bundle.pub",
        "issuer.key",
        "issuer.pub",
        "receipt.key",
        "receipt.pub",
        "root.key",
        "root.pub",
    ]  # no static sealing pair: records are sealed only to period keys that retire
    for p in d.iterdir():
        mode = stat.S_IMODE(p.stat().st_mode)
        assert (mode == 0o600) if p.suffix == ".key" else (mode & 0o077 == 0o044), (p, oct(mode))
    again = run("kiosk-central", "keys", "init", "--dir", d, check=False)
    assert again.returncode == 2 and "exists" in again.stderr


def test_issue_pass_text_is_exactly_one_line_the_kiosk_admits(tmp_path, authority):
    p = run(
        "kiosk-central",
        "issue-pass",
        "--keys",
        authority,
        "--risk",
        "1",
        "--text",
        "--png",
        tmp_path / "p.png",
        "--svg",
        tmp_path / "p.svg",
    )
    lines = p.stdout.split("\n")
    assert len(lines) == 2 and lines[1] == "" and lines[0].startswith("VC1:")
    assert re.fullmatch(r"VC1:[0-9A-Z $%*+\-./:]+", lines[0])  # QR alphanumeric mode
    scan = run("kiosk", "scan", "--keys", authority, "--json", tmp_path / "p.png")
    assert json.loads(scan.stdout) == {
        "path": str(tmp_path / "p.png"),
        "decision": "exposed",  # admitted, and told to get tested
        "reason": "risk_level",
        "risk_level": 1,
    }


def test_issue_pass_refuses_an_expiry_before_issue(authority):
    p = run(
        "kiosk-central",
        "issue-pass",
        "--keys",
        authority,
        "--risk",
        "0",
        "--issued",
        "2026-01-02T00:00",
        "--expires",
        "2026-01-01T00:00",
        check=False,
    )
    assert p.returncode == 2 and "expiry" in p.stderr


# -- kiosk scan ------------------------------------------------------------------------------------
def test_scan_json_one_line_per_image_never_the_pass_id(tmp_path, authority):
    import cv2
    import numpy as np

    from sync.central.issuing import issue_pass, save_pass
    from workbench.render import background

    folder = tmp_path / "imgs"
    folder.mkdir()
    ids = []
    for level in (0, 3):
        text, pid = issue_pass(authority, risk=level)
        ids.append(pid)
        save_pass(text, png=folder / f"level{level}.png")
    expired, pid = issue_pass(
        authority,
        risk=0,
        issued=__import__("datetime").datetime(2020, 1, 1, tzinfo=__import__("datetime").timezone.utc),
    )
    ids.append(pid)
    save_pass(expired, png=folder / "old.png")
    save_pass("not a pass at all", png=folder / "menu.png")
    cv2.imwrite(str(folder / "wall.png"), background(np.random.default_rng(1)))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")

    p = run("kiosk", "scan", "--keys", authority, "--json", folder)
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, p.stdout.splitlines())}
    assert rows == {
        "level0.png": {
            "path": str(folder / "level0.png"),
            "decision": "admit",
            "reason": "valid",
            "risk_level": 0,
        },
        "level3.png": {
            "path": str(folder / "level3.png"),
            "decision": "deny",
            "reason": "risk_level",
            "risk_level": 3,
        },
        "old.png": {
            "path": str(folder / "old.png"),
            "decision": "invalid",
            "reason": "expired",
            "risk_level": None,
        },
        "menu.png": {
            "path": str(folder / "menu.png"),
            "decision": "invalid",
            "reason": "not_a_pass",
            "risk_level": None,
        },
        "wall.png": {
            "path": str(folder / "wall.png"),
            "decision": "none",
            "reason": "no_code",
            "risk_level": None,
        },
        "broken.png": {
            "path": str(folder / "broken.png"),
            "decision": "none",
            "reason": "unreadable_image",
            "risk_level": None,
        },
    }
    for pid in ids:
        assert pid.hex() not in p.stdout + p.stderr
    human = run("kiosk", "scan", "--keys", authority, folder / "level3.png")
    assert human.stdout.strip() == f"{folder / 'level3.png'}: deny (risk_level, level 3)"


def test_scan_with_a_bad_config_names_the_key(tmp_path, authority):
    cfg = tmp_path / "k.toml"
    cfg.write_text(kiosk_config_text(authority, tmp_path / "db.sqlite", signal=['green_pin = "five"']))
    p = run("kiosk", "scan", "--config", cfg, tmp_path, check=False)
    assert p.returncode == 2
    assert p.stderr.strip() == "kiosk: config error: [signal] green_pin: expected an integer, got 'five'"


# -- kiosk run and purge ---------------------------------------------------------------------------
def test_run_on_an_image_folder_records_then_stops_cleanly_on_sigterm(tmp_path, authority):
    from sync.central.issuing import issue_pass, save_pass

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    text, pid = issue_pass(authority, risk=0)
    save_pass(text, png=imgs / "a.png")
    db = tmp_path / "k.db"
    cfg = tmp_path / "k.toml"
    cfg.write_text(
        kiosk_config_text(
            authority, db, camera=['source = "images"', f'images = ["{imgs}"]', "loop = true", "fps = 20.0"]
        )
    )
    proc = subprocess.Popen(
        [str(BIN / "kiosk"), "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import sqlite3
    import time

    deadline = time.monotonic() + 30
    n = 0
    while time.monotonic() < deadline and n == 0:
        time.sleep(0.2)
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT count(*) FROM checkins").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert n == 1
    assert "kiosk stopped:" in err and "1 recorded" in err
    for secret in ("admit", "GREEN", "valid", "level", pid.hex()):  # no outcome in the journal
        assert secret not in err + out, secret

    p = run("kiosk", "purge", "--config", cfg)
    assert p.stdout.strip() == "purged 0 records"


# -- sync from the command line ----------------------------------------------------------------------
def test_register_sync_set_risk_and_doctor_as_a_technician_would(tmp_path, authority):
    from sync.central.issuing import issue_pass, save_pass
    from workbench.localserver import LocalServer

    # Its own copy: the committee's commands below write into the keys folder (the manifest's
    # version), which other tests share.
    authority = Path(shutil.copytree(authority, tmp_path / "authority"))
    (authority / "manifest-state.json").unlink(missing_ok=True)  # a new committee's first manifest

    db = tmp_path / "kiosk.db"
    cfg = tmp_path / "kiosk.toml"
    base = kiosk_config_text(
        authority,
        db,
        keys=[f'root_key = "{authority / "root.pub"}"', 'device_key = "device.key"'],
        kiosk=['bundle_file = "bundle.json"'],
    )
    cfg.write_text(base)
    pem = run("kiosk", "keys", "init", "--config", cfg).stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and pem.count("\n") == 3
    assert stat.S_IMODE((tmp_path / "device.key").stat().st_mode) == 0o600
    assert (tmp_path / "device.pub").read_text() == pem
    again = run("kiosk", "keys", "init", "--config", cfg, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr

    offline = run("kiosk", "sync", "--config", cfg, check=False)
    assert offline.returncode == 2 and "[sync] server_url: not set" in offline.stderr

    data = tmp_path / "central"
    run("kiosk-central", "init", "--data", data)  # the store, made on purpose
    kid = run(
        "kiosk-central",
        "register-kiosk",
        "--data",
        data,
        "--venue",
        "Market hall",
        "--public-key",
        tmp_path / "device.pub",
        "--tag-key",
        tmp_path / "tag.pub",
        "--keys",
        authority,
    ).stdout.splitlines()[0]
    assert re.fullmatch(r"k-[0-9a-f]{16}", kid)

    text, pid = issue_pass(authority, risk=0)
    save_pass(text, png=tmp_path / "pass.png")
    with LocalServer(data, server_keys_folder(authority, tmp_path / "server-keys")) as server:
        cfg.write_text(base + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n')
        # The committee's machine: its members and case, then the manifest the root signs.
        soon = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat(timespec="seconds")
        alice, bob = committee_with_a_case(run, tmp_path, data, "OB-2026-17", to=soon)
        published = run("kiosk-central", "manifest", "publish", "--keys", authority, "--data", data)
        assert published.stdout.startswith("manifest version 1 signed by the root")
        # Installed: its first sync brings its bundle (today's search-tag keys included)
        # before it records anything, so it is traceable from its first check-in.
        installed = run("kiosk", "sync", "--config", cfg)
        assert re.match(
            r"uploaded 0 \(duplicates 0\), set aside 0, pending 0; bundle updated to version 1: "
            r"first bundle: manifest \d+, 1 issuer keys, 0 risk-list entries, "
            r"search-tag keys for [1-9]\d* days$",
            installed.stdout.strip(),
        ), installed.stdout
        # a check-in, as `kiosk run` would record it
        import time as _time

        from kiosk import config as config_mod
        from kiosk.compose import follow_bundle_keys, open_store, trust_provider
        from kiosk.core.decision import decide

        c = config_mod.load(cfg)
        store = open_store(c)
        provider = trust_provider(c, store=store)
        follow_bundle_keys(store, provider)  # as `kiosk run` wires it: the bundle's keys
        t = provider()
        store.record(
            decide(text, trusted=t.issuers, risk_list=t.risk_list, policy=t.policy, now=_time.time()),
            now=_time.time(),
            clock_synced=True,
        )
        store.close()

        first = run("kiosk", "sync", "--config", cfg)
        assert (
            first.stdout.strip()
            == "uploaded 1 (duplicates 0), set aside 0, pending 0; bundle unchanged (version 1)"
        )
        assert (
            run("kiosk", "scan", "--config", cfg, "--json", tmp_path / "pass.png").stdout.count('"admit"')
            == 1
        )

        raised = run(
            "kiosk-central",
            "set-risk",
            "--data",
            data,
            "--pass-id",
            pid.hex(),
            "--level",
            "3",
            "--case",
            "OB-2026-17",
            "--member-key",
            alice,
            "--member-key",  # a refusal takes two independent members
            bob,
            "--keys",
            authority,
        )
        assert raised.stdout.strip() == "risk list version 2: level 3 set, expires in 14 days"
        second = run("kiosk", "sync", "--config", cfg)
        assert (
            "bundle updated to version 2: risk list +1 -0 entries, 0 changed level (1 in all)"
            in second.stdout
        )
        scan = json.loads(run("kiosk", "scan", "--config", cfg, "--json", tmp_path / "pass.png").stdout)
        assert (scan["decision"], scan["reason"], scan["risk_level"]) == ("deny", "risk_list", 3)
        assert "bundle unchanged (version 2)" in run("kiosk", "sync", "--config", cfg).stdout

        status = run("kiosk-central", "status", "--data", data).stdout
        assert f"{kid}  Market hall  active  records 1  missing seq: none  last seen 20" in status
        # what the kiosk reported of itself, signed, with its last bundle poll
        for part in ("pending 0", "bundle 2 (", "clock ", " MB free", "no fault"):
            assert part in status, "|".join([part, *status.split("  ")])
        assert status.splitlines()[-1].startswith("1 kiosks: ")
        fleet = json.loads(run("kiosk-central", "status", "--data", data, "--json").stdout)
        (one,) = fleet["kiosks"]
        assert (
            one["kiosk_id"] == kid and one["health"]["pending"] == 0 and one["health"]["bundle_version"] == 2
        )
        assert one["health"]["epoch"] >= 0 and one["last_upload"] is not None
        assert not re.search(r"\d{9,}\.\d", status)  # no epoch floats for people

        doctor = run("kiosk", "doctor", "--config", cfg, "--no-camera", check=False)
        # "status  name         detail": the name column is 12 wide
        lines = {line[6:18].strip(): line for line in doctor.stdout.splitlines()}
        assert doctor.returncode == 0, doctor.stdout
        assert (
            lines["database"].startswith("ok") and "integrity ok, journal wal, 1 records" in lines["database"]
        )
        assert lines["pending"].startswith("ok") and "0 records to upload" in lines["pending"]
        assert lines["last sync"].startswith("ok") and lines["risk list"].startswith("ok")
        assert "bundle version 2" in lines["risk list"]
        # The config asks for mock pins: so says doctor, on a Pi or not.
        assert lines["signal"].startswith("warn") and "mock pins" in lines["signal"]
        for out in (first.stdout + first.stderr, doctor.stdout, status):
            assert pid.hex() not in out

    assert pid.hex() not in (data / "server.log").read_text()  # the server's log neither
    down = run("kiosk", "sync", "--config", cfg, check=False)  # the server is gone
    assert down.returncode == 1 and "ConnectionError" in down.stdout and "http://127.0.0.1:" in down.stdout

    # The committee, for an outbreak case: the reading is logged before anything is opened.
    opened = run(
        "kiosk-central",
        "open-records",
        "--data",
        data,
        "--keys",
        authority,
        "--case",
        "OB-2026-17",
        "--pass-id",
        pid.hex(),
        "--member-key",
        alice,
        "--member-key",
        bob,
    )
    rows = [json.loads(line) for line in opened.stdout.splitlines()]
    assert [(r["pass_id"], r["decision"], r["risk_level"], r["kiosk_id"]) for r in rows] == [
        (pid.hex(), "admit", 0, kid)
    ]
    assert "reading 1 logged for case OB-2026-17: 1 records shown" in opened.stderr
    no_case = run(
        "kiosk-central",
        "open-records",
        "--data",
        data,
        "--keys",
        authority,
        "--member-key",
        alice,
        check=False,
    )
    assert no_case.returncode == 2 and "--case" in no_case.stderr
    unknown = run(
        "kiosk-central",
        "open-records",
        "--data",
        data,
        "--keys",
        authority,
        "--member-key",
        alice,
        "--member-key",
        bob,
        "--case",
        "lunch",
        check=False,
    )
    assert unknown.returncode == 3 and "case 'lunch': no such outbreak case" in unknown.stderr
    audit = run("kiosk-central", "reads", "--data", data).stdout.splitlines()
    assert len(audit) == 1 and "case OB-2026-17  kiosk all  1 records" in audit[0]

    revoked = run("kiosk-central", "register-kiosk", "--data", data, "--revoke", kid)
    assert revoked.stdout.strip() == f"revoked {kid}"
    assert "revoked" in run("kiosk-central", "status", "--data", data).stdout


# -- the units a Pi runs -------------------------------------------------------------------------------
def test_systemd_units_run_commands_that_exist_with_the_config_they_name():
    import configparser

    units = {}
    for path in (ROOT / "systemd").iterdir():
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        cp.read(path)
        units[path.name] = cp
    svc = units["kiosk.service"]["Service"]
    assert svc["Type"] == "notify" and int(svc["WatchdogSec"]) > 0 and svc["Restart"] == "on-failure"
    assert "gpio" in svc["SupplementaryGroups"] and svc["User"] == "kiosk"
    assert svc["PrivateNetwork"] == "yes"  # the scanner never touches the network
    assert units["kiosk-purge.timer"]["Timer"]["Persistent"] == "true"
    for name, cp in units.items():
        if not name.endswith(".service"):
            continue
        exec_start = cp["Service"]["ExecStart"].split()
        if name.startswith("kiosk-central"):  # the authority's server side
            assert exec_start[0] == "/opt/kiosk/.venv/bin/kiosk-central"
            assert run("kiosk-central", *exec_start[1:2], "--help").returncode == 0
            if "purge" in name:
                assert units[name.replace(".service", ".timer")]["Timer"]["Persistent"] == "true"
            continue
        # the services run the current release; the updater, the base install's own
        base = name == "kiosk-update.service"
        assert exec_start[0] == (
            "/opt/kiosk/.venv/bin/kiosk" if base else "/opt/kiosk/releases/current/bin/kiosk"
        )
        assert exec_start[2:4] == ["--config", "/etc/kiosk/kiosk.toml"]
        args = [a for a in exec_start[1:] if a not in ("--config", "/etc/kiosk/kiosk.toml")]
        assert run("kiosk", *args, "--help").returncode == 0
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "install-pi")]).returncode == 0


@pytest.mark.slow  # a whole run: in the full suite, not the fast lane
def test_kiosk_run_and_the_sync_service_share_the_database_side_by_side(tmp_path, authority):
    """Two processes on one SQLite file, as on a Pi: the scan loop keeps recording while the
    uploader drains; nothing is lost, nobody sees 'database is locked'."""
    import sqlite3
    import time

    import cv2
    import numpy as np

    from sync.central.issuing import issue_pass
    from workbench.localserver import LocalServer
    from workbench.render import camera_frame

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        cv2.imwrite(str(imgs / f"{i}.png"), camera_frame(issue_pass(authority, risk=i % 3)[0], rng))
    db = tmp_path / "kiosk.db"
    cfg = tmp_path / "kiosk.toml"
    data = tmp_path / "central"
    base = kiosk_config_text(
        authority,
        db,
        kiosk=["repeat_window_s = 0.0", "hold_s = 0.0"],
        camera=['source = "images"', f'images = ["{imgs}"]', "loop = true", "fps = 30.0"],
        keys=[f'root_key = "{authority / "root.pub"}"'],
    )
    cfg.write_text(base)
    run("kiosk", "keys", "init", "--config", cfg)
    run("kiosk-central", "init", "--data", tmp_path / "central")
    kid = run(
        "kiosk-central",
        "register-kiosk",
        "--data",
        data,
        "--venue",
        "v",
        "--public-key",
        tmp_path / "device.pub",
    ).stdout.strip()
    run("kiosk-central", "manifest", "publish", "--keys", authority, "--data", data)
    with LocalServer(data, server_keys_folder(authority, tmp_path / "server-keys")) as server:
        cfg.write_text(
            base + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n'
            "interval_s = 0.2\nupload_every_s = 0.2\nbatch_size = 7\n"
        )
        procs = [
            subprocess.Popen(
                [str(BIN / "kiosk"), cmd, "--config", str(cfg), *extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for cmd, extra in (("run", []), ("sync", ["--loop"]))
        ]
        time.sleep(6)
        for p in procs:
            p.terminate()
        outputs = [p.communicate(timeout=20) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        made = sqlite3.connect(db).execute("SELECT count(*) FROM checkins").fetchone()[0]
        assert made >= 20
        final = run("kiosk", "sync", "--config", cfg).stdout
        assert "pending 0" in final
        on_server = len(server_ids_of(data, kid))
    assert on_server == made
    for _out, err in outputs:
        assert "locked" not in err and "Traceback" not in err
    assert "sync: uploaded" in outputs[1][1]


def server_ids_of(data, kiosk_id):
    from sync.central.storage.sqlite_backend import SqliteStorage

    s = SqliteStorage.in_folder(data)
    try:
        return s.record_ids(kiosk_id)
    finally:
        s.close()


@pytest.mark.slow  # a whole run: in the full suite, not the fast lane
def test_the_demo_without_keep_prints_no_folder_it_then_deletes(tmp_path):
    p = run("kiosk", "demo", "--no-server", timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert p.stdout.rstrip().endswith("demo OK")
    assert str(tmp_path) not in p.stdout and "<demo folder>/" in p.stdout
    assert list(tmp_path.iterdir()) == []  # and it is gone
