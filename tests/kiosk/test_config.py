"""Config: the example loads; each kind of mistake gives one line naming the key."""

import subprocess

import pytest

from kiosk import config
from kiosk.config import ConfigError
from testkit import BIN, ROOT
from workbench.world import kiosk_config_text


def write(tmp_path, authority, **over):
    p = tmp_path / "kiosk.toml"
    p.write_text(kiosk_config_text(authority, tmp_path / "k.db", **over))
    return p


EXAMPLE = ROOT / "config" / "kiosk.example.toml"


def test_example_config_documents_and_loads_every_key(tmp_path):
    text = EXAMPLE.read_text()
    with pytest.raises(ConfigError, match=r"^\[kiosk\] venue_id: still 'CHANGE-ME': set this venue"):
        config.load(EXAMPLE, check_files=False)  # refused until a technician sets it
    (tmp_path / "kiosk.toml").write_text(text.replace('"CHANGE-ME"', '"venue-7"'))
    cfg = config.load(tmp_path / "kiosk.toml", check_files=False)
    assert cfg.policy.deny_level == 3 and cfg.retention.normal_days == 28
    for name, cls in config.SECTIONS.items():
        for f in config.fields(cls):
            assert f"\n{f.name} = " in text, f"[{name}] {f.name} is not in the example"


def test_the_example_shows_the_codes_own_defaults():
    import tomllib

    raw = tomllib.loads(EXAMPLE.read_text())
    compared = 0
    for name, cls in config.SECTIONS.items():
        for f in config.fields(cls):
            if f.default is config.MISSING and f.default_factory is config.MISSING:
                continue  # required: no default to match
            default = f.default_factory() if f.default is config.MISSING else f.default
            assert raw[name][f.name] == default, (
                f"[{name}] {f.name}: example {raw[name][f.name]!r}, code {default!r}"
            )
            compared += 1
    assert compared >= 40


def test_a_minimal_config_loads_with_defaults(tmp_path, authority):
    cfg = config.load(write(tmp_path, authority))
    assert cfg.kiosk.venue_id == "venue-test"
    assert cfg.decoder.name == "zxing" and cfg.kiosk.repeat_window_s == 10.0


@pytest.mark.parametrize(
    "over,message",
    [
        ({"signal": ["gren_pin = 5"]}, "[signal] gren_pin: unknown key"),
        ({"signal": ["green_pin = 'five'"]}, "[signal] green_pin: expected an integer, got 'five'"),
        ({"signal": ["green_pin = 99"]}, "[signal] green_pin: must be at most 53, not 99"),
        ({"signal": ["buzzer = 1"]}, "[signal] buzzer: expected true or false, got 1"),
        ({"decoder": ['name = "zbar"']}, "[decoder] name: must be one of zxing, pyzbar, not 'zbar'"),
        ({"policy": ["deny_level = 4"]}, "[policy] deny_level: must be at most 3, not 4"),
        ({"retention": ["normal_days = 60"]}, "[retention] normal_days: must be at most 28, not 60"),
        ({"camara": ["x = 1"]}, "[camara]: unknown section"),
        ({"signal": ['deny_lamp = "0.2 fast"']}, "[signal] deny_lamp: '0.2 fast': durations in seconds"),
        ({"signal": ['admit_sound = "0.1 x0"']}, "[signal] admit_sound: 'x0': repeat 1 to 50 times"),
        (
            {"signal": ['invalid_lamp = "5 5 x9"']},
            "[signal] invalid_lamp: '5 5 x9': lasts 90.0 s, at most 30 s",
        ),
        (
            {"keys": ['sealing_periods = "/nonexistent/sealing-periods.json"']},
            "[keys] sealing_periods: /nonexistent/sealing-periods.json: file not found",
        ),
    ],
)
def test_mistakes_name_the_key(tmp_path, authority, over, message):
    p = write(tmp_path, authority)
    text = p.read_text()
    for section, lines in over.items():
        if f"[{section}]" in text:
            # replace an existing key or add to the section
            key = lines[0].split("=")[0].strip()
            kept = [line for line in text.splitlines() if not line.startswith(key + " =")]
            idx = kept.index(f"[{section}]")
            kept[idx + 1 : idx + 1] = lines
            text = "\n".join(kept) + "\n"
        else:
            text += f"[{section}]\n" + "\n".join(lines) + "\n"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    assert str(e.value).startswith(message)


def test_missing_required_key(tmp_path, authority):
    p = tmp_path / "c.toml"
    p.write_text(kiosk_config_text(authority, tmp_path / "k.db").replace('venue_id = "venue-test"\n', ""))
    with pytest.raises(ConfigError, match=r"^\[kiosk\] venue_id: missing \(required\)$"):
        config.load(p)


def test_bad_toml_and_missing_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[kiosk\nvenue_id = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(p)
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "absent.toml")


def test_a_schedule_file_that_is_not_one_names_the_key(tmp_path, authority):
    from kiosk.compose import installed_periods

    junk = tmp_path / "junk.json"
    junk.write_text('{"periods": [{"kid": "x"}]}')
    p = write(tmp_path, authority)
    p.write_text(p.read_text().replace(str(authority / "sealing-periods.json"), str(junk)))
    with pytest.raises(ConfigError, match=r"^\[keys\] sealing_periods: .*junk.json: not the committee's"):
        installed_periods(config.load(p))


def test_kiosk_run_stops_with_one_clear_line(tmp_path, authority):
    p = write(tmp_path, authority, signal=["red_pin = -1"])
    r = subprocess.run([BIN / "kiosk", "run", "--config", p], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "kiosk: config error: [signal] red_pin: must be at least 0, not -1"


def test_files_the_kiosk_writes_default_to_beside_its_database_and_images_to_the_config(tmp_path, authority):
    cfg_file = tmp_path / "etc" / "kiosk.toml"
    cfg_file.parent.mkdir()
    state = tmp_path / "var" / "lib" / "kiosk"
    cfg_file.write_text(
        kiosk_config_text(
            authority, state / "k.db", camera=['source = "images"', 'images = ["frames/*.png"]']
        )
    )
    cfg = config.load(cfg_file)
    assert cfg.keys.device_key == str(state / "device.key")  # written at run time: the
    assert cfg.kiosk.bundle_file == str(state / "bundle.json")  # state directory, not /etc
    assert cfg.keys.bundle_key == ""
    assert cfg.camera.images == [str(cfg_file.parent / "frames" / "*.png")]  # not the cwd
