"""sd_notify against a real AF_UNIX datagram socket, as systemd would hold it."""

import socket
import threading

import numpy as np

from kiosk.adapters.frames import ArraySource
from kiosk.app import KioskApp, Trust
from kiosk.clock import SystemClock
from kiosk.sdnotify import Notifier
from testkit import bound_socket, received


def test_ready_watchdog_stopping(tmp_path, monkeypatch):
    sock, path = bound_socket(tmp_path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    n = Notifier(path)
    assert n.watchdog_interval_s == 1.0
    assert n.ready("scanning") and n.watchdog() and n.stopping()
    assert received(sock) == ["READY=1\nSTATUS=scanning", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_socket_address(monkeypatch):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0kiosk-test-notify")
    assert Notifier("@kiosk-test-notify").notify("READY=1")
    assert s.recv(100) == b"READY=1"


def test_without_systemd_it_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = Notifier()
    assert not n.ready() and n.watchdog_interval_s is None


def test_the_loop_pings_the_watchdog_while_it_gets_frames(tmp_path, monkeypatch, trusted):
    sock, path = bound_socket(tmp_path)
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # ping every 10 ms
    frames = [np.zeros((48, 64), np.uint8)] * 40

    class SlowSource(ArraySource):
        def read(self):
            import time

            time.sleep(0.005)
            return super().read()

    class NoSignal:
        def show(self, outcome, *, level=0):
            raise AssertionError("no pass in these frames")

    app = KioskApp(
        source=SlowSource(frames),
        decoder=type("D", (), {"decode": lambda s, f: []})(),
        signal=NoSignal(),
        store=None,
        trust=lambda: Trust(issuers=trusted),
        clock=SystemClock(),
        notifier=Notifier(path),
    )
    msgs = []
    reader = threading.Thread(target=lambda: msgs.extend(received(sock, quiet_s=1.0)))
    reader.start()  # systemd reads as they come; so does this test
    app.run()
    reader.join()
    assert msgs[0] == "READY=1\nSTATUS=scanning" and msgs[-1] == "STOPPING=1"
    assert msgs.count("WATCHDOG=1") >= 5


def test_a_full_queue_never_blocks_the_loop(tmp_path):
    sock, path = bound_socket(tmp_path)  # nobody reads: the kernel queue fills up
    n = Notifier(path)
    results = [n.watchdog() for _ in range(500)]
    assert results[0] and not results[-1]  # later pings are dropped, the call returned
