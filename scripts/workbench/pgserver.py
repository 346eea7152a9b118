"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` binaries, `initdb`
into a temporary folder, `pg_ctl start` on a free port on 127.0.0.1, trust authentication
for loopback only, fsync off (test data). Started once per session; each test gets a fresh
database. Run as the `postgres` user when the tests run as root (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def server_binaries() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.bin = server_binaries()
        if self.bin is None:
            raise FileNotFoundError("no PostgreSQL server binaries (Debian's postgresql package)")
        self.dir = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.dir, 0o755)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120, cwd=self.dir)

    def start(self) -> PgServer:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def fresh_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def replica(self) -> PgServer:
        """A streaming replica of this server, made as a DBA would: `pg_basebackup -R` (a
        standby.signal and the primary's address written into it), then started on a port of
        its own, read-only (hot standby). Stop it with its own stop()."""
        standby = PgServer.__new__(PgServer)
        standby.bin, standby.as_user = self.bin, self.as_user
        standby.dir = Path(tempfile.mkdtemp(prefix="kiosk-pg-replica-"))
        if self.as_user:
            pw = pwd.getpwnam("postgres")
            os.chown(standby.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(standby.dir, 0o755)
        standby.data, standby.port = standby.dir / "data", _free_port()
        standby._run(
            str(self.bin / "pg_basebackup"),
            "-D",
            str(standby.data),
            "-R",
            "-X",
            "stream",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "--no-sync",
            "-c",
            "fast",
        )
        opts = (
            f"-p {standby.port} -k {standby.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on"
        )
        standby._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(standby.data),
            "-o",
            opts,
            "-l",
            str(standby.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return standby
