"""A new user's mistakes, each made for real against `kiosk` and `kiosk-central` (their own
processes, real files, a real server on a free loopback port): every one answers with one
line naming the cause and what to do, the documented exit status (never 0 for a mistake,
never 70), no traceback, no raw ``[Errno``, and nothing made or logged where it should not
be.

"A user who may only read the store" is root without CAP_DAC_OVERRIDE (setpriv): the kernel
then checks file permissions as for any user. This machine cannot run the venv as another
user (its Python lives under /root), so that is the closest real part.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testkit import BIN
from workbench.localserver import LocalServer, free_port
from workbench.world import members

pytestmark = pytest.mark.slow

ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class World:
    """A committee's machine and a pilot server, as the manual makes them, plus the wrong
    things a user could point at."""

    w: Path
    kiosk_id: str = ""
    server_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def audit_length(self, store: str = "central") -> int:
        con = sqlite3.connect(self.w / store / "central.db")
        try:
            return con.execute("SELECT count(*) FROM audit").fetchone()[0]
        finally:
            con.close()


def cli(w: Path, *args: Any, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [str(BIN / str(args[0])), *map(str, args[1:])],
        cwd=w,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from kiosk.core.keys import write_private, write_public

    w = tmp_path_factory.mktemp("mistakes")
    env = {"KIOSK_CENTRAL_WITNESS": str(w / "witnessed.json")}
    os.environ.update(env)
    cli(w, "kiosk-central", "keys", "init", "--dir", "authority")
    for name, key in zip(("alice", "bob"), members(), strict=True):
        (w / name).mkdir()
        write_private(w / name / "member.key", key)
        write_public(w / name / "member.pub", key.public_key())
    cli(w, "kiosk-central", "keys", "init-member", "--dir", "carol")
    cli(w, "kiosk-central", "init", "--data", "fresh")  # a store nobody founded yet
    cli(w, "kiosk-central", "init", "--data", "central")
    for name in ("Alice", "Bob"):
        cli(w, "kiosk-central", "member", "found", "--data", "central", "--name", name, "--member-key",
            f"{name.lower()}/member.key")  # fmt: skip
    cli(w, "kiosk-central", "keys", "share", "--keys", "authority", "--data", "central", "--member-key",
        "alice/member.key")  # fmt: skip
    cli(w, "kiosk-central", "keys", "rotate", "--keys", "authority", "--data", "central", "--ahead", "3")
    cli(w, "kiosk-central", "manifest", "publish", "--keys", "authority", "--data", "central")
    cli(w, "kiosk-central", "case", "open", "--data", "central", "--member-key", "alice/member.key", "--id",
        "C-1", "--reason", "a cluster at the market")  # fmt: skip
    cli(w, "kiosk-central", "case", "approve", "--data", "central", "--member-key", "bob/member.key",
        "--id", "C-1")  # fmt: skip
    cli(w, "kiosk-central", "keys", "server", "--keys", "authority", "--out", "server-keys")
    # A kiosk on this machine, registered, and its config.
    (w / "kiosk").mkdir()
    cfg = w / "kiosk.toml"
    cfg.write_text(
        '[kiosk]\nvenue_id = "Market"\ndatabase = "kiosk/checkins.db"\n'
        '[keys]\nissuer_keys = ["authority/issuer.pub"]\nroot_key = "authority/root.pub"\n'
        'sealing_periods = "authority/sealing-periods.json"\ndevice_key = "kiosk/device.key"\n'
        'tag_key = "kiosk/tag.key"\n[signal]\npin_factory = "mock"\n'
        '[camera]\nsource = "images"\nimages = ["frames"]\n'
    )
    (w / "frames").mkdir()
    cli(w, "kiosk", "keys", "init", "--config", cfg)
    kid = cli(w, "kiosk-central", "register-kiosk", "--data", "central", "--venue", "Market", "--public-key",
              "kiosk/device.pub", "--tag-key", "kiosk/tag.pub", "--keys", "authority")  # fmt: skip
    kid = kid.stdout.split()[0]
    cli(w, "kiosk-central", "issue-pass", "--keys", "authority", "--risk", "0", "--png", "frames/pass.png")
    # Another authority (a wrong root.pub to pin), a damaged store, a store's folder that is a file.
    cli(w, "kiosk-central", "keys", "init", "--dir", "other")
    shutil.copytree(w / "central", w / "damaged")
    (w / "damaged" / "central.db").write_bytes(b"not a database at all" * 100)
    for side in ("central.db-wal", "central.db-shm"):
        (w / "damaged" / side).unlink(missing_ok=True)
    (w / "a-file").write_text("x")
    server = LocalServer(w / "central", w / "server-keys").start()
    world = World(w, kiosk_id=kid, server_url=server.url)
    base = cfg.read_text()
    (w / "synced.toml").write_text(base + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n')
    (w / "down.toml").write_text(
        base + f'[sync]\nserver_url = "http://127.0.0.1:{free_port()}"\nkiosk_id = "{kid}"\n'
    )
    (w / "wrong-root.toml").write_text(
        base.replace("authority/root.pub", "other/root.pub")
        + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n'
    )
    (w / "unknown-id.toml").write_text(
        base + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "k-0000000000000000"\n'
    )
    (w / "no-folder.toml").write_text(base.replace("kiosk/checkins.db", "/nonexistent/kiosk/checkins.db"))
    (w / "db-folder.toml").write_text(base.replace("kiosk/checkins.db", "a-folder"))
    (w / "a-folder").mkdir()
    (w / "bad.toml").write_text("[kiosk\nvenue_id = 1\n")
    (w / "no-key.toml").write_text(
        base.replace("kiosk/device.key", "kiosk/other-device.key")
        + f'[sync]\nserver_url = "{server.url}"\nkiosk_id = "{kid}"\n'
    )
    (w / "no-issuer.toml").write_text(base.replace("authority/issuer.pub", "authority/issuer2.pub"))
    (w / "unknown-key.toml").write_text(base.replace("[signal]", "[signal]\ngreen_pn = 17"))
    cli(w, "kiosk", "sync", "--config", "synced.toml")
    world.extra["server"] = server
    yield world
    server.stop()


@dataclass(frozen=True)
class Mistake:
    what: str
    argv: tuple[str, ...]
    status: int | tuple[int, ...]
    says: str  # a regular expression the error line must match
    made: tuple[str, ...] = ()  # paths that must not exist afterwards
    logged: bool = False  # whether the audit log may grow
    stream: str = "stderr"


M = Mistake
KC = "kiosk-central"
TWO = ("--member-key", "alice/member.key", "--member-key", "bob/member.key")
# fmt: off
MISTAKES = [
    # -- paths that do not exist, or are the wrong kind ------------------------------------------
    M("init into a folder whose parent is missing", (KC, "init", "--data", "no/such/central"), 2,
      "does not exist", made=("no",)),
    M("init where a file is", (KC, "init", "--data", "a-file"), 2, "not a folder"),
    M("init on a store already made", (KC, "init", "--data", "central"), 2, "initialised already"),
    M("status at a mistyped --data", (KC, "status", "--data", "centrl"), 2, "no store here",
      made=("centrl",)),
    M("status at a file", (KC, "status", "--data", "a-file"), 2, "not a folder"),
    M("status on a damaged store", (KC, "status", "--data", "damaged"), 2, "damaged.*backup"),
    M("serve on a damaged store", (KC, "serve", "--data", "damaged", "--keys", "server-keys", "--port",
      "0", "--metrics-port", "0"), 2, "damaged"),
    M("purge at a mistyped --data", (KC, "purge", "--data", "centrl"), 2, "no store here",
      made=("centrl",)),
    M("report into a missing folder", (KC, "report", "--data", "central", "--html", "out/fleet.html"), 2,
      "does not exist", made=("out",)),
    M("report --html naming a folder", (KC, "report", "--data", "central", "--html", "out/"), 2,
      "a folder", made=("out",)),
    M("keys rotate --keys mistyped", (KC, "keys", "rotate", "--keys", "authorty"), 2, "no such folder",
      made=("authorty",)),
    M("keys server --out where a file is", (KC, "keys", "server", "--keys", "authority", "--out",
      "a-file"), 2, "not a folder"),
    M("keys server --out a folder of other things", (KC, "keys", "server", "--keys", "authority", "--out",
      "authority"), 2, "holds other files"),
    M("keys server --out below a missing folder", (KC, "keys", "server", "--keys", "authority", "--out",
      "no/keys"), 2, "does not exist", made=("no",)),
    M("keys server from the server's own folder", (KC, "keys", "server", "--keys", "carol", "--out",
      "sk2"), 2, "not the authority's keys folder", made=("sk2",)),
    M("exposures publish --site naming a file", (KC, "exposures", "publish", "--data", "central", "--keys",
      "authority", "--member-key", "alice/member.key", "--site", "a-file",), 2, "not a folder"),
    M("issue-pass --png into a missing folder", (KC, "issue-pass", "--keys", "authority", "--risk", "0",
      "--png", "no/pass.png"), 2, "does not exist", made=("no",)),
    M("issue-passes --out below a missing folder", (KC, "issue-passes", "--keys", "authority", "--count",
      "2", "--out", "no/batch"), 2, "does not exist", made=("no",)),
    # -- key files: missing, of the wrong kind, someone else's ----------------------------------
    M("member found with a missing key file", (KC, "member", "found", "--data", "fresh", "--name", "Ann",
      "--member-key", "ann/member.key"), 2, "cannot read key file"),
    M("member found with the public half", (KC, "member", "found", "--data", "fresh", "--name", "Ann",
      "--member-key", "alice/member.pub"), 2, "not a PEM"),
    M("init --public-key given a private key", (KC, "init", "--data", "new1", "--name", "Ann",
      "--public-key", "alice/member.key"), 2, "not a PEM", made=("new1/central.db",)),
    M("member found twice by the same person", (KC, "member", "found", "--data", "central", "--name",
      "Alice", "--member-key", "alice/member.key"), 3, "member already"),
    M("a third founder", (KC, "member", "found", "--data", "central", "--name", "Carol", "--member-key",
      "carol/member.key"), 3, "founded already"),
    M("serve beside the authority's keys", (KC, "serve", "--data", "central", "--keys", "authority",
      "--port", "0", "--metrics-port", "0"), 2, "private key"),
    M("serve with a keys folder missing", (KC, "serve", "--data", "central", "--keys", "sk-none", "--port",
      "0", "--metrics-port", "0"), 2, "no such folder.*keys server"),
    M("serve with a member's key folder", (KC, "serve", "--data", "central", "--keys", "carol", "--port",
      "0", "--metrics-port", "0"), 2, "private key"),
    M("register-kiosk with a missing key", (KC, "register-kiosk", "--data", "central", "--venue", "X",
      "--public-key", "nope.pub"), 2, "cannot read key file"),
    M("register-kiosk with a private key", (KC, "register-kiosk", "--data", "central", "--venue", "X",
      "--public-key", "kiosk/device.key"), 2, "not a PEM"),
    M("register-kiosk twice", (KC, "register-kiosk", "--data", "central", "--venue", "X", "--public-key",
      "kiosk/device.pub"), 2, "already registered"),
    M("register-kiosk --revoke an unknown id", (KC, "register-kiosk", "--data", "central", "--revoke",
      "k-nope"), 2, "no active kiosk"),
    M("trace with a stranger's key", (KC, "trace", "--data", "central", "--keys", "authority", "--case",
      "C-1", "--pass-id", "ab" * 16, "--member-key", "alice/member.key", "--member-key",
      "carol/member.key",), 3, "not a registered"),
    M("pass show --keys of another authority", (KC, "pass", "show", "--image", "frames/pass.png", "--keys",
      "other"), 1, "does not verify"),
    # -- the wrong order of steps ------------------------------------------------------------------
    M("member add before the committee is founded", (KC, "member", "add", "--data", "fresh", "--name",
      "Bob", "--public-key", "bob/member.pub", "--member-key", "alice/member.key",), 3,
      "not founded|not a registered"),
    M("case open before the committee is founded", (KC, "case", "open", "--data", "fresh", "--member-key",
      "alice/member.key", "--id", "C-9", "--reason", "a cluster at the market",), 3,
      "not founded|not a registered"),
    M("keys share before the committee is founded", (KC, "keys", "share", "--keys", "carol-auth", "--data",
      "fresh", "--member-key", "alice/member.key"), 2, "no such folder"),
    M("exposures publish on a store with no manifest", (KC, "exposures", "publish", "--data", "fresh",
      "--keys", "authority", "--member-key", "alice/member.key",), (2, 3),
      "manifest|not a registered|founded"),
    M("a case approved by its opener", (KC, "case", "approve", "--data", "central", "--member-key",
      "alice/member.key", "--id", "C-1"), 3, "approved already|opened by this member"),
    M("a case that does not exist approved", (KC, "case", "approve", "--data", "central", "--member-key",
      "bob/member.key", "--id", "C-404"), 3, "no such case"),
    M("a case closed that does not exist", (KC, "case", "close", "--data", "central", "--member-key",
      "bob/member.key", "--id", "C-404"), 3, "no such open case"),
    M("set-risk under a case that does not exist", (KC, "set-risk", "--data", "central", "--keys",
      "authority", "--pass-id", "ab" * 16, "--level", "1", "--case", "C-404", "--member-key",
      "alice/member.key",), 3, "no such outbreak case"),
    M("trace with one member's key", (KC, "trace", "--data", "central", "--keys", "authority", "--case",
      "C-1", "--pass-id", "ab" * 16, "--member-key", "alice/member.key",), 2, "two committee members"),
    M("trace with the same key twice", (KC, "trace", "--data", "central", "--keys", "authority", "--case",
      "C-1", "--pass-id", "ab" * 16, "--member-key", "alice/member.key", "--member-key",
      "alice/member.key",), 2, "same member"),
    M("keys retire with one member", (KC, "keys", "retire", "--keys", "authority", "--data", "central",
      "--member-key", "alice/member.key",), 2, "two committee members"),
    M("keys retire without the store", (KC, "keys", "retire", "--keys", "authority", *TWO), 2,
      "needs the store"),
    M("open-records for a kiosk that does not exist", (KC, "open-records", "--data", "central", "--keys",
      "authority", "--case", "C-1", "--kiosk", "k-typo", *TWO,), 2, "no such kiosk"),
    M("open-records outside the case's window", (KC, "open-records", "--data", "central", "--keys",
      "authority", "--case", "C-1", "--from", "2020-01-01", "--to", "2020-01-02", *TWO,), 3,
      "cannot reach outside"),
    M("open-records for a case that does not exist", (KC, "open-records", "--data", "central", "--keys",
      "authority", "--case", "C-404", *TWO), 3, "no such outbreak case"),
    # -- values ------------------------------------------------------------------------------------
    M("serve on a port that is not one", (KC, "serve", "--data", "central", "--keys", "server-keys",
      "--port", "99999"), 2, "not a port"),
    M("serve with half of TLS", (KC, "serve", "--data", "central", "--keys", "server-keys", "--port", "0",
      "--metrics-port", "0", "--tls-cert", "cert.pem",), 2, "go together"),
    M("serve with a certificate that is not there", (KC, "serve", "--data", "central", "--keys",
      "server-keys", "--port", "0", "--metrics-port", "0", "--tls-cert", "cert.pem", "--tls-key",
      "key.pem",), 2, "no such file"),
    M("serve with a certificate that is not one", (KC, "serve", "--data", "central", "--keys",
      "server-keys", "--port", "0", "--metrics-port", "0", "--tls-cert", "a-file", "--tls-key", "a-file",),
      2, "not a PEM certificate"),
    M("case open with a time that is not one", (KC, "case", "open", "--data", "central", "--member-key",
      "alice/member.key", "--id", "C-2", "--reason", "a cluster at the market", "--from", "yesterday",), 2,
      "not a time"),
    M("case open from after to", (KC, "case", "open", "--data", "central", "--member-key",
      "alice/member.key", "--id", "C-2", "--reason", "a cluster at the market", "--from", "2026-12-05",
      "--to", "2026-12-01",), 3, "from before to"),
    M("case open with an id that is not one", (KC, "case", "open", "--data", "central", "--member-key",
      "alice/member.key", "--id", "a b", "--reason", "a cluster at the market",), 3, "case id"),
    M("set-risk with a pass id that is not one", (KC, "set-risk", "--data", "central", "--keys",
      "authority", "--pass-id", "xyz", "--level", "1", "--case", "C-1", "--member-key",
      "alice/member.key",), 2, "hex digits"),
    M("set-risk at level 7", (KC, "set-risk", "--data", "central", "--keys", "authority", "--pass-id",
      "ab" * 16, "--level", "7", "--case", "C-1", "--member-key", "alice/member.key",), 2,
      "invalid choice"),
    M("set-risk for a year", (KC, "set-risk", "--data", "central", "--keys", "authority", "--pass-id",
      "ab" * 16, "--level", "1", "--case", "C-1", "--member-key", "alice/member.key", "--expires-days",
      "365",), 2, "at most 90"),
    M("status with a negative threshold", (KC, "status", "--data", "central", "--silent-hours", "-1"), 2,
      "positive number"),
    M("purge keeping records longer than the rules", (KC, "purge", "--data", "central", "--normal-days",
      "40"), 2, "1..28"),
    M("audit verify against a shortened head", (KC, "audit", "verify", "--data", "central", "--head",
      "abcd"), 2, "shortened"),
    M("pass show of a text that is not a pass", (KC, "pass", "show", "hello"), 2, "not a pass"),
    M("pass show of a photo that is not there", (KC, "pass", "show", "--image", "nope.png"), 2,
      "nope.png"),
    M("pass show of a mistyped number", (KC, "pass", "show", "--number",
      "1MST-2BE8-9VYY-G5W4-ENEA-D8VE-2BK8"), 2, "check"),
    M("issue-pass with an expiry that is not a time", (KC, "issue-pass", "--keys", "authority", "--risk",
      "0", "--expires", "next week"), 2, "not a time"),
    M("issue-passes into a batch folder already used", (KC, "issue-passes", "--keys", "authority",
      "--count", "1", "--out", "frames"), 2, "not empty|already"),
    M("manifest publish at deny level 5", (KC, "manifest", "publish", "--keys", "authority", "--data",
      "central", "--deny-level", "5"), 2, "invalid choice|1 to 3|deny"),
    M("manifest publish with a successor that is not there", (KC, "manifest", "publish", "--keys",
      "authority", "--data", "central", "--next-root", "new-root.pub",), 2, "new-root.pub"),
    M("serve --database with a URL that is not one", (KC, "serve", "--database",
      "postgresql://nobody@/none", "--keys", "server-keys", "--port", "0", "--metrics-port", "0",), 2,
      "PostgreSQL"),
    M("status --read-database without --database", (KC, "status", "--data", "central", "--read-database",
      "postgresql:///x"), 2, "replica"),
    # -- the kiosk ---------------------------------------------------------------------------------
    M("kiosk run with no such config", ("kiosk", "run", "--config", "nope.toml"), 2, "nope.toml"),
    M("kiosk run with a config that is not TOML", ("kiosk", "run", "--config", "bad.toml"), 2, "bad.toml"),
    M("kiosk run with a misspelt key", ("kiosk", "run", "--config", "unknown-key.toml"), 2, "green_pn"),
    M("kiosk run with its database in a missing folder", ("kiosk", "run", "--config", "no-folder.toml"), 2,
      "does not exist", made=("/nonexistent",)),
    M("kiosk purge with its database in a missing folder", ("kiosk", "purge", "--config",
      "no-folder.toml"), 2, "does not exist", made=("/nonexistent",)),
    M("kiosk run with a folder where the database belongs", ("kiosk", "run", "--config", "db-folder.toml"),
      2, "not a file"),
    M("kiosk scan of a missing image", ("kiosk", "scan", "--keys", "authority", "nope.png"), (1, 2, 4),
      "nope.png|no images"),
    M("kiosk scan --keys of a folder without issuer keys", ("kiosk", "scan", "--keys", "frames",
      "frames/pass.png"), 2, "issuer"),
    M("kiosk sync with no server set", ("kiosk", "sync", "--config", "kiosk.toml"), 2, "server_url"),
    M("kiosk sync with the server down", ("kiosk", "sync", "--config", "down.toml"), 1,
      "sync failed.*no answer"),
    M("kiosk sync pinning another authority's root", ("kiosk", "sync", "--config", "wrong-root.toml"), 1,
      "root_key", stream="stdout"),
    M("kiosk sync with a kiosk id the server does not know", ("kiosk", "sync", "--config",
      "unknown-id.toml"), 1, "unknown_kiosk", stream="stdout"),
    M("kiosk keys init again", ("kiosk", "keys", "init", "--config", "kiosk.toml"), 2, "already exists"),
    M("serve with no worker", (KC, "serve", "--data", "central", "--keys", "server-keys", "--workers", "0"),
      2, "whole number >= 1"),
    M("manifest publish with another authority's keys", (KC, "manifest", "publish", "--keys", "other",
      "--data", "central"), 2, "another authority"),
    M("issue-pass from the server's keys folder", (KC, "issue-pass", "--keys", "server-keys", "--risk", "0"),
      2, "server's keys folder"),
    M("keys rotate before the keys are shared", (KC, "keys", "rotate", "--keys", "other", "--data", "fresh"),
      3, "no committee wrap key"),
    M("status with the database server down", (KC, "status", "--database", "postgresql://127.0.0.1:1/x"), 2,
      "cannot use the PostgreSQL database"),
    M("kiosk sync before kiosk keys init", ("kiosk", "sync", "--config", "no-key.toml"), 2,
      "device_key.*keys init"),
    M("kiosk scan with a config whose issuer key is missing", ("kiosk", "scan", "--config", "no-issuer.toml",
      "frames/pass.png"), 2, "issuer_keys"),
    M("kiosk doctor with the server down", ("kiosk", "doctor", "--config", "down.toml", "--no-camera"), 1,
      "FAIL  server .*no answer", stream="stdout"),
]
# fmt: on


def _made(w: Path, paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if (Path(p) if p.startswith("/") else w / p).exists()]


@pytest.mark.parametrize("m", MISTAKES, ids=[m.what for m in MISTAKES])
def test_each_mistake_gets_one_clear_line_and_its_status(world, m):
    before = world.audit_length()
    p = cli(world.w, *m.argv, check=False)
    out = p.stdout if m.stream == "stdout" else p.stderr
    allowed = m.status if isinstance(m.status, tuple) else (m.status,)
    assert p.returncode in allowed, f"{m.what}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr + p.stdout and "[Errno" not in p.stderr + p.stdout, p.stderr
    assert re.search(m.says, out, re.S), f"{m.what}: {out!r}"
    errors = [line for line in p.stderr.splitlines() if line.strip()]
    if not errors[:1] or not errors[0].startswith("usage:"):  # argparse: usage, then its line
        prog = m.argv[0]
        assert all(line.startswith(f"{prog}:") or m.stream == "stdout" for line in errors), p.stderr
        assert len(errors) <= 2, f"{m.what}: more than one line\n{p.stderr}"
    assert _made(world.w, m.made) == [], f"{m.what}: made {m.made}"
    assert world.audit_length() == before or m.logged, f"{m.what}: logged in the audit log"


def test_a_publish_that_cannot_write_its_site_publishes_nothing(world):
    """`exposures publish --site FILE`: refused before anything is signed or kept."""
    con = sqlite3.connect(world.w / "central" / "central.db")
    try:
        assert con.execute("SELECT count(*) FROM exposure_lists").fetchone()[0] == 0
    finally:
        con.close()


def test_doctor_says_the_server_answers_and_what_it_last_heard(world):
    p = cli(world.w, "kiosk", "doctor", "--config", "synced.toml", "--no-camera", check=False)
    line = next(x for x in p.stdout.splitlines() if x.startswith(("ok    server", "FAIL  server")))
    assert line.startswith("ok    server") and f"{world.server_url} answers" in line, p.stdout
    assert "last heard from this kiosk" in line and "holds 0 of its records" not in line


def test_status_shows_the_kiosk_as_it_was_after_its_last_round(world, tmp_path):
    """The health a round reports is the state after it: pending 0 once everything is up,
    and the bundle the round took (it lagged one round before)."""
    import json

    cli(world.w, "kiosk", "run", "--config", "synced.toml")  # the pass in frames/: one check-in
    synced = cli(world.w, "kiosk", "sync", "--config", "synced.toml").stdout
    assert synced.startswith("uploaded 1"), synced
    status = json.loads(cli(world.w, "kiosk-central", "status", "--data", "central", "--json").stdout)
    (me,) = [k for k in status["kiosks"] if k["kiosk_id"] == world.kiosk_id]
    assert me["health"]["pending"] == 0, me
    con = sqlite3.connect(world.w / "kiosk" / "checkins.db")
    held = con.execute("SELECT value FROM state WHERE key = 'bundle_version'").fetchone()[0]
    con.close()
    assert me["health"]["bundle_version"] == int(held), me


def test_a_user_who_may_only_read_the_store_can_look_but_not_write(world, tmp_path):
    """The operator's own account, with read access only: status, report, reads, case list and
    audit work; a command that writes says it may not, in one line, exit 5."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not here")
    store = tmp_path / "ro"
    shutil.copytree(world.w / "central", store)
    for f in store.iterdir():
        f.chmod(0o444)
    store.chmod(0o555)
    drop = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search",
        "--inh-caps=-dac_override,-dac_read_search",
        "--",
    ]
    env = {**os.environ, "KIOSK_CENTRAL_WITNESS": str(tmp_path / "w.json")}
    try:
        for args in (("status",), ("reads",), ("case", "list"), ("audit", "show"), ("audit", "verify"),
                     ("report", "--html", str(tmp_path / "fleet.html"))):  # fmt: skip
            p = subprocess.run([*drop, str(BIN / "kiosk-central"), *args, "--data", str(store)],
                               capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
            assert p.returncode == 0, f"{args}: {p.stderr}"
        p = subprocess.run([*drop, str(BIN / "kiosk-central"), "purge", "--data", str(store)],
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert p.returncode == 5 and "Traceback" not in p.stderr and "internal error" not in p.stderr, (
            p.stderr
        )
        assert len(p.stderr.strip().splitlines()) == 1 and "permission denied" in p.stderr, p.stderr
    finally:
        store.chmod(0o755)
