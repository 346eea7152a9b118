"""Dedicated 2D scanners: a serial scanner on a real pseudo-terminal (the kernel's pty, read
through pyserial, in a real `kiosk run` process), and a keyboard-wedge scanner's key events
turned into text. A real evdev stream needs /dev/uinput (a kernel module this machine does
not have): that test runs where it exists and says why it skips elsewhere."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from kiosk.adapters.scanners import (
    DOWN,
    EV_KEY,
    KEY_ENTER,
    KEY_LEFTSHIFT,
    KEYMAP,
    MAX_LINE,
    UP,
    KeyboardWedge,
    SerialScanner,
)
from kiosk.errors import CameraError
from testkit import BIN
from workbench.world import kiosk_config_text

pytest.importorskip("serial", reason="pyserial is a dependency: scripts/setup installs it")

# What a US-layout keyboard-wedge scanner types for each character: (shift?, key code).
TYPED = {}
for code, (plain, shifted) in KEYMAP.items():
    if code < 71 or code in (55, 98):  # the main block first, as scanners type
        TYPED.setdefault(plain, (False, code))
        TYPED.setdefault(shifted, (True, code))


def key_events(text: str) -> list[tuple[int, int, int]]:
    """The (type, code, value) events a scanner sends for ``text`` and Enter."""
    out = []
    for ch in text:
        shift, code = TYPED[ch]
        if shift:
            out.append((EV_KEY, KEY_LEFTSHIFT, DOWN))
        out += [(EV_KEY, code, DOWN), (EV_KEY, code, UP)]
        if shift:
            out.append((EV_KEY, KEY_LEFTSHIFT, UP))
        out.append((0, 0, 0))  # SYN_REPORT between keys
    return out + [(EV_KEY, KEY_ENTER, DOWN), (EV_KEY, KEY_ENTER, UP)]


def test_a_keyboard_wedge_pass_comes_out_as_typed(make_pass):
    text = make_pass(2)
    wedge, lines = KeyboardWedge(), []
    for ev in key_events(text) + key_events("https://example.org/?a=1&b=2"):
        line = wedge.feed(*ev)
        if line is not None:
            lines.append(line)
    assert lines == [text, "https://example.org/?a=1&b=2"]


def test_a_key_no_pass_contains_makes_the_scan_unreadable_not_shorter():
    wedge = KeyboardWedge()
    for ev in [
        (EV_KEY, 30, DOWN),
        (EV_KEY, 30, UP),
        (EV_KEY, 59, DOWN),
        (EV_KEY, 59, UP),  # a, F1
        (EV_KEY, KEY_ENTER, DOWN),
    ]:
        line = wedge.feed(*ev)
    assert line == "a\ufffd" and wedge.unknown_keys == 1


def test_a_wedge_sending_keys_without_an_enter_holds_at_most_a_line():
    """Unknown keys or characters, two million of them and no Enter: the buffer stays at one
    line's limit; the Enter that finally comes gives that (amber) line."""
    wedge = KeyboardWedge()
    for i in range(2_000_000):
        wedge.feed(EV_KEY, 59 if i % 2 else 30, DOWN)
    assert len(wedge._chars) == MAX_LINE
    assert len(wedge.feed(EV_KEY, KEY_ENTER, DOWN) or "") == MAX_LINE and wedge._chars == []


@pytest.fixture
def pty():
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def read_until(scanner, n, timeout=5.0):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += scanner.read()
    return got


def test_serial_lines_in_any_chunking_and_line_ending(pty, make_pass):
    master, name = pty
    s = SerialScanner(name, baud=9600, poll_s=0.05)
    text = make_pass(1)
    os.write(master, text[:10].encode())
    assert s.read() == []  # half a scan: nothing yet
    os.write(master, text[10:].encode() + b"\r\n" + b"SECOND\r" + b"THIRD\n")
    assert read_until(s, 3) == [text, "SECOND", "THIRD"]
    os.write(master, b"\xff" * (MAX_LINE + 10))  # junk without an end: amber
    junk = read_until(s, 1)
    assert len(junk) == 1 and junk[0].startswith("\ufffd")
    s.close()


def test_a_missing_serial_port_is_a_camera_error_naming_it(tmp_path):
    with pytest.raises(CameraError, match=r"cannot open scanner .*ttyNOPE.*dialout group"):
        SerialScanner(str(tmp_path / "ttyNOPE"))


def test_kiosk_run_on_a_serial_scanner_records_and_signals_each_scan(tmp_path, authority, make_pass, pty):
    master, name = pty
    now = int(time.time())
    db = tmp_path / "kiosk.db"
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        kiosk_config_text(authority, db, camera=['source = "serial"', f'scanner_device = "{name}"'])
    )
    proc = subprocess.Popen(
        [BIN / "kiosk", "run", "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(2.0)  # started, lamp check done
        assert proc.poll() is None, proc.stderr.read()
        for text in (
            make_pass(0, issued=now - 60, expires=now + 3600),
            make_pass(3, issued=now - 60, expires=now + 3600),
            "NOT A PASS",
        ):
            os.write(master, text.encode() + b"\r\n")
            time.sleep(0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                records = conn.execute("SELECT count(*) FROM checkins").fetchone()[0]
                invalid = conn.execute("SELECT coalesce(sum(count), 0) FROM invalid_scans").fetchone()[0]
            if (records, invalid) == (2, 1):
                break
            time.sleep(0.2)
        assert (records, invalid) == (2, 1), proc.kill() or proc.communicate()[1][-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "camera serial" in err and "Traceback" not in err


def test_an_evdev_scanner_read_through_uinput(make_pass):
    evdev = pytest.importorskip(
        "evdev", reason="evdev not installed (apt install python3-evdev on a Pi; pip needs a C compiler)"
    )
    if not os.access("/dev/uinput", os.W_OK):
        pytest.skip(
            "no writable /dev/uinput on this machine (the uinput kernel module is not "
            "there), so no real evdev stream can be made; the key-to-text path is "
            "tested above on the same events"
        )
    from kiosk.adapters.scanners import EvdevScanner

    keys = sorted({code for _, code, _ in key_events(make_pass(1))} | {KEY_LEFTSHIFT, KEY_ENTER})
    with evdev.UInput({evdev.ecodes.EV_KEY: keys}, name="test-scanner") as ui:
        time.sleep(0.5)
        scanner = EvdevScanner(ui.device.path)
        text = make_pass(1)
        for t, code, value in key_events(text):
            if t == EV_KEY:
                ui.write(t, code, value)
            ui.syn()
        assert read_until(scanner, 1) == [text]
        scanner.close()


def test_doctor_checks_a_serial_scanner_and_a_screens_font(tmp_path, authority, pty):
    master, name = pty
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        kiosk_config_text(
            authority,
            tmp_path / "kiosk.db",
            camera=['source = "serial"', f'scanner_device = "{name}"'],
            screen=["enabled = true", f'font = "{tmp_path / "none.ttf"}"'],
        )
    )
    r = subprocess.run([BIN / "kiosk", "doctor", "--config", cfg], capture_output=True, text=True)
    out = r.stdout
    assert f"serial scanner {name} opens" in out
    assert "FAIL" in out and "no Khmer font at" in out and "none.ttf" in out
    assert r.returncode == 1 and "Traceback" not in r.stderr
