"""A central server in its own process on a free loopback port: for the demo, the tests and
the benchmark. It is the real `kiosk-central serve`, started as a user would start it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports (`serve --workers N` listens for
    metrics on the first free of PORT..PORT+N-1)."""
    for _ in range(200):
        base = free_port()
        held = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports on 127.0.0.1")


class LocalServer:
    def __init__(
        self,
        data_dir: Path,
        keys_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        ca_bundle: Path | None = None,
        database: str | None = None,
        workers: int = 1,
        ingest_slots: int | None = None,
        extra: tuple[str, ...] = (),
    ):
        self.data_dir, self.keys_dir = Path(data_dir), Path(keys_dir)
        self.port = port or free_port()
        self.tls, self.ca_bundle, self.database, self.workers = tls, ca_bundle, database, workers
        self.ingest_slots = ingest_slots
        self.extra = tuple(extra)  # more `serve` options
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.metrics_port = free_ports(workers)  # /metrics listens apart from kiosks, on loopback
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log_file = Path(log_file) if log_file else self.data_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *, timeout_s: float = 30.0) -> LocalServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.database is not None or not (self.data_dir / "central.db").exists():
            # As a deployment does first: `serve` refuses a store `init` did not make
            # (init on a store that exists already leaves it as it is).
            where = ["--database", self.database] if self.database else ["--data", str(self.data_dir)]
            subprocess.run(
                [sys.executable, "-m", "sync.central.cli", "init", *where],
                capture_output=True,
                timeout=60,
            )
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sync.central.cli",
                "serve",
                *(["--database", self.database] if self.database else ["--data", str(self.data_dir)]),
                "--keys",
                str(self.keys_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *(["--ingest-slots", str(self.ingest_slots)] if self.ingest_slots else []),
                "--metrics-port",
                str(self.metrics_port),
                *(["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"central server exited {self.proc.returncode}: {self.log_file.read_text()[-2000:]}"
                )
            try:
                if (
                    requests.get(
                        self.url + "/healthz",
                        timeout=1,
                        verify=str(self.ca_bundle) if self.ca_bundle else True,
                    ).status_code
                    == 200
                ):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"central server did not start on {self.url}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """As a crash or a power cut would: SIGKILL, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
