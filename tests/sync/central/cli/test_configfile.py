"""The authority's configuration file: found by --config (before or after the command) or
KIOSK_CENTRAL_CONFIG, the command line overriding it, every key of the example known to the
code and every unknown one refused by name; run as a user runs the commands."""

from __future__ import annotations

import os
import re
import tomllib

import pytest

from sync.central.cli import build_parser
from sync.central.cli.configfile import apply, load, schema
from testkit import ROOT, run_bin


@pytest.fixture
def pilot(tmp_path):
    run_bin("kiosk-central", "keys", "init", "--dir", tmp_path / "authority")
    run_bin("kiosk-central", "init", "--data", tmp_path / "central")
    (tmp_path / "central.toml").write_text('[store]\ndata = "central"\n\n[authority]\nkeys = "authority"\n')
    return tmp_path


def test_found_by_option_before_or_after_the_command_or_by_the_environment(pilot):
    conf = pilot / "central.toml"
    for args, env in (
        (["--config", conf, "status"], None),
        (["status", "--config", conf], None),
        (["status"], {"KIOSK_CENTRAL_CONFIG": str(conf)}),
    ):
        r = run_bin("kiosk-central", *args, cwd="/", env={**os.environ, **(env or {})})
        assert r.stdout.strip() == "0 kiosks: 0 ok, 0 need attention, 0 revoked", args
    r = run_bin("kiosk-central", "manifest", "publish", "--config", conf, cwd="/")
    assert "manifest version 1 signed by the root" in r.stdout  # --keys and --data from the file


def test_the_command_line_overrides_the_file(pilot):
    other = pilot / "elsewhere"
    r = run_bin("kiosk-central", "status", "--config", pilot / "central.toml", "--data", other, check=False)
    assert r.returncode == 2 and f"--data {other}: no store here" in r.stderr


@pytest.mark.parametrize(
    "text, named",
    [
        ("[server]\nprot = 8080\n", "[server] prot: not a key of [server]"),
        ("[sever]\nport = 8080\n", "[sever]: no such section"),
        ('[server]\nport = "eighty"\n', "[server] port: 'eighty' is not int"),
        ("[server]\nport = 70000\n", "[server] port: '70000' is not a port"),
        ('[store]\ndata = "a"\ndatabase = "postgresql:///k"\n', "[store]: data or database, not both"),
        ("[store\n", "not valid TOML"),
    ],
)
def test_a_wrong_key_or_value_is_refused_by_name(tmp_path, text, named):
    conf = tmp_path / "c.toml"
    conf.write_text(text)
    r = run_bin("kiosk-central", "status", "--config", conf, check=False)
    assert r.returncode == 2 and named in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_file_is_named(tmp_path):
    r = run_bin("kiosk-central", "status", "--config", tmp_path / "nope.toml", check=False)
    assert r.returncode == 2 and "nope.toml: no such file" in r.stderr


def test_the_server_keys_and_the_authority_keys_are_told_apart(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[authority]\nkeys = "authority"\n\n[server]\nkeys = "server-keys"\nport = 9999\n')
    parser = build_parser()
    apply(parser, load(conf))
    serve = parser.parse_args(["serve", "--data", "x"])
    publish = parser.parse_args(["manifest", "publish", "--data", "x"])
    assert (serve.keys, serve.port) == (str(tmp_path / "server-keys"), 9999)
    assert publish.keys == str(tmp_path / "authority")
    assert parser.parse_args(["serve", "--data", "x", "--port", "1234"]).port == 1234


def test_the_example_names_every_key_the_code_knows():
    example = tomllib.loads((ROOT / "config" / "kiosk-central.example.toml").read_text())
    commented = re.findall(r"^# (\w+) = ", (ROOT / "config" / "kiosk-central.example.toml").read_text(), re.M)
    named = {(s, k) for s, keys in example.items() for k in keys}
    known = {(s, k) for s, keys in schema().items() for k in keys}
    in_comments = {(s, k) for s, k in known if k in commented}
    assert named | in_comments == known
    assert load(ROOT / "config" / "kiosk-central.example.toml")["server"]["port"] == 8080  # it loads as is
