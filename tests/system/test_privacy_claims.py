"""The manual's privacy claims held against the code: the "held in clear" table names every table
and column of both sides' schemas (SQLite and PostgreSQL), the committee's set-up block runs
exactly as typed, and one member with the keys folder and a database copy opens nothing."""

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import time
import uuid

import pytest

from testkit import BIN, ROOT

DOCS = ROOT / "docs"


def held_in_clear_rows() -> dict[tuple[str, str], str]:
    """(side, table) -> the row's text, from the manual's table (reference/schema.md)."""
    section = (DOCS / "reference" / "schema.md").read_text()
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in ("kiosk", "server"):
            for table in re.findall(r"`([a-z_]+)`", cells[1]):
                rows[(cells[0], table)] = line
    return rows


def assert_named(side: str, schema: dict[str, list[str]]) -> None:
    rows = held_in_clear_rows()
    missing = []
    for table, columns in schema.items():
        row = rows.get((side, table))
        if row is None:
            missing.append(f"{side} table {table}")
            continue
        named = set(re.findall(r"`([a-z_]+)`", row))
        if side == "server" and table == "records":  # "the kiosk's columns above", plus these
            named |= set(re.findall(r"`([a-z_]+)`", rows[("kiosk", "checkins")]))
        missing += [f"{side} {table}.{c}" for c in columns if c not in named]
    assert missing == [], f"the manual's 'held in clear' table omits: {missing}"


def sqlite_schema(conn) -> dict[str, list[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


def test_the_held_in_clear_table_names_every_table_and_column_of_the_kiosk_and_sqlite_server(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.seal import SealingKey
    from kiosk.store.checkins import CheckinStore
    from sync.central.storage.sqlite_backend import SqliteStorage

    server = SqliteStorage.in_folder(tmp_path / "central")
    kiosk = CheckinStore.open(
        tmp_path / "k.db", sealing=SealingKey.of(X25519PrivateKey.generate().public_key()), venue_id="v"
    )
    try:
        assert_named("server", sqlite_schema(server.db.conn))
        assert_named("kiosk", sqlite_schema(kiosk.db.conn))
    finally:
        server.close()
        kiosk.close()


def test_the_held_in_clear_table_names_every_table_and_column_on_postgresql(pg_url):
    import psycopg

    from sync.central.storage.pg_backend import PgStorage

    PgStorage(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        ).fetchall()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        # The partitions' parents: records_normal and records_significant are records.
        schema.setdefault("records" if table.startswith("records_") else table, []).append(column)
    assert "records" in schema and "held" in schema
    assert_named("server", schema)


def committee_block() -> str:
    """The pilot's first block: the committee founded by two, its keys shared, the first
    manifest (the manual: operator/pilot.md)."""
    from workbench import manual

    return next(b.body for b in manual.blocks("operator/pilot.md") if b.runs)


def test_the_manuals_committee_block_leaves_no_key_in_clear(tmp_path):
    """The authority's set-up, exactly as the manual shows it, in an empty folder: two shares,
    every period key sealed (none in clear)."""
    block = committee_block()
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines[0] == "kiosk-central keys init --dir authority/" and len(lines) >= 8
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for line in lines:
        r = subprocess.run(
            shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0, f"{line}\n{r.stdout}{r.stderr}"
        assert "Traceback" not in r.stderr and "[Errno" not in r.stderr
    assert (tmp_path / "authority" / "committee-wrap.json").exists()
    assert sorted(p.name for p in (tmp_path / "authority" / "shares").iterdir()) == sorted(
        p.name for p in (tmp_path / "authority" / "shares").glob("*.share")
    )
    assert len(list((tmp_path / "authority" / "shares").glob("*.share"))) == 2
    assert not list(tmp_path.joinpath("authority").rglob("sealing*.key"))  # no period key in clear


EPOCH_FLOAT = re.compile(
    r"(?<![\w.])1[5-9]\d{8}(\.\d+)?(?![\w.])"
)  # a Unix time, as a person would not read it


def test_a_new_user_walks_the_committee_and_operator_sections(tmp_path):
    """The manual's committee set-up, then the operator's round (operator/monitoring.md), as
    typed: every command answers with something, in words (no traceback, no raw [Errno, no
    Unix times); then the round again with the configuration naming a mistyped path, where
    each must refuse (never an empty success)."""
    from workbench import manual

    committee = committee_block()
    (round_,) = [b.body for b in manual.blocks("operator/monitoring.md") if b.runs]
    (tmp_path / "central.toml").write_text('[store]\ndata = "central"\n')
    (tmp_path / "typo.toml").write_text('[store]\ndata = "central-typo"\n')
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "KIOSK_CENTRAL_CONFIG": str(tmp_path / "central.toml"),
    }

    def run(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    for line in committee.splitlines():
        assert run(line).returncode == 0, line  # (each names its own --data)
    lines = [line for line in round_.splitlines() if line.strip()]
    assert len(lines) >= 8
    for line in lines:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr)
        assert r.stdout.strip(), f"{line}: printed nothing"
        text = r.stdout + r.stderr
        assert "Traceback" not in text and "[Errno" not in text, (line, text)
        if "--json" not in line:
            assert not EPOCH_FLOAT.search(text), (line, EPOCH_FLOAT.search(text))
    page = (tmp_path / "fleet.html").read_text()
    assert "Kiosk fleet report" in page and "no history yet" in page  # a new store: said in words
    env["KIOSK_CENTRAL_CONFIG"] = str(tmp_path / "typo.toml")
    for line in lines:
        r = run(line)
        assert r.returncode != 0 and "no store here" in r.stderr and not r.stdout, line
        assert "Traceback" not in r.stderr and "[Errno" not in r.stderr
    assert not (tmp_path / "central-typo").exists()


@pytest.fixture
def one_member_world(tmp_path):
    """The committee's keys folder, a copy of the server's database with records of an
    approved case, and Alice's key: what one member alone could get hold of."""
    from kiosk.core.sealkeys import Sealer
    from sync.central.keyring import public_periods
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.world import approved_case, committee, seeded_authority

    keys = seeded_authority(tmp_path / "authority")
    s = SqliteStorage.in_folder(tmp_path / "central")
    kid = s.register_kiosk(venue="Market", public_key=b"k" * 32, now=0)
    from kiosk.core.seal import seal

    now = time.time()
    rows = []
    for i in range(20):
        key, _ = Sealer(fallback=None, periods=lambda: public_periods(keys)).key_for("normal", now - 60 + i)
        rid = str(uuid.uuid4())
        fields = {
            "pass_id": bytes([i]) * 16,
            "risk_level": 0,
            "decision": "admit",
            "reason": "valid",
            "venue": "Market",
        }
        rows.append(
            {
                "record_id": rid,
                "seq": i + 1,
                "captured_at": now - 60 + i,
                "clock_synced": True,
                "retention": "normal",
                "delete_after": now + 86_400,
                "seal_kid": key.kid,
                "sealed": seal(fields, key, record_id=rid),
            }
        )
    s.ingest(kid, str(uuid.uuid4()), rows, now=now)
    alice, bob = committee(s, now=now)
    approved_case(s, alice, bob, now=now)
    s.close()
    return keys, tmp_path / "central", alice, bob, rows


def test_one_member_with_the_keys_folder_and_a_database_copy_opens_nothing(tmp_path, one_member_world):
    from kiosk.core.keys import load_x25519_private, write_private
    from kiosk.core.seal import open_sealed
    from sync.central.committee.custody import CustodyError, unlock

    keys, data, alice, bob, rows = one_member_world
    write_private(tmp_path / "alice.key", alice)
    write_private(tmp_path / "bob.key", bob)
    # Every file in the keys folder, tried as a key: none opens a record.
    opened = 0
    for path in keys.rglob("*"):
        try:
            key = load_x25519_private(path)
        except Exception:
            continue
        for r in rows:
            try:
                open_sealed(r["sealed"], key, record_id=r["record_id"])
                opened += 1
            except Exception:
                pass
    assert opened == 0
    # One member's share alone (or the same member twice) rebuilds nothing.
    with pytest.raises(CustodyError, match="two different members"):
        unlock(keys, [alice], active=set())
    with pytest.raises(CustodyError, match="two different members"):
        unlock(keys, [alice, alice], active=set())
    for command in (
        ["open-records", "--case", "OB-TEST-1"],
        ["trace", "--case", "OB-TEST-1", "--pass-id", "00" * 16],
    ):
        base = [BIN / "kiosk-central", *command, "--data", data, "--keys", keys]
        alone = subprocess.run(
            base + ["--member-key", tmp_path / "alice.key"], capture_output=True, text=True
        )
        assert alone.returncode == 2 and "two committee members" in alone.stderr and alone.stdout == ""
        twice = subprocess.run(
            base + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "alice.key"],
            capture_output=True,
            text=True,
        )
        assert twice.returncode == 2 and "same member" in twice.stderr and twice.stdout == ""
    # Two members together do open them, and the log names both.
    both = subprocess.run(
        [BIN / "kiosk-central", "open-records", "--case", "OB-TEST-1", "--data", data, "--keys", keys]
        + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "bob.key"],
        capture_output=True,
        text=True,
    )
    assert both.returncode == 0, both.stderr
    assert len(both.stdout.splitlines()) == 20
    as_csv = subprocess.run(
        [
            BIN / "kiosk-central",
            "open-records",
            "--case",
            "OB-TEST-1",
            "--data",
            data,
            "--keys",
            keys,
            "--csv",
        ]
        + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "bob.key"],
        capture_output=True,
        text=True,
    )
    import csv

    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert len(rows) == 20 and {r["venue"] for r in rows} == {"Market"} and len(rows[0]["pass_id"]) == 32
    from sync.central.storage.sqlite_backend import SqliteStorage

    s = SqliteStorage.in_folder(data)
    try:
        assert s.reads()[-1]["reader"] == "Alice + Bob"
    finally:
        s.close()


def test_a_departed_members_share_combines_with_nothing_after_reissue(tmp_path, one_member_world):
    from kiosk.core.keys import write_private
    from sync.central.committee import members as committee
    from sync.central.committee.audit import member_id
    from sync.central.committee.custody import CustodyError, unlock, wrap_document
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.world import seeded_ed25519

    keys, data, alice, bob, _ = one_member_world
    carol = seeded_ed25519("member/carol")
    s = SqliteStorage.in_folder(data)
    committee.add_member(s, name="Carol", public_key=carol.public_key(), key=alice, now=time.time())
    committee.approve_member(s, key=bob, member="Carol", now=time.time())
    s.close()
    for name, key in (("alice", alice), ("bob", bob), ("carol", carol)):
        write_private(tmp_path / f"{name}.key", key)
    share = [BIN / "kiosk-central", "keys", "share", "--keys", keys, "--data", data]
    r = subprocess.run(
        share + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "bob.key"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "one share each for 3 members" in r.stdout, r.stderr
    old_bob_share = (keys / "shares" / f"{member_id(bob.public_key())}.share").read_bytes()
    # Bob leaves: Alice asks, Carol confirms; Alice and Carol re-issue the shares.
    s = SqliteStorage.in_folder(data)
    committee.revoke_member(s, key=alice, member="Bob", now=time.time())
    committee.approve_member(s, key=carol, member="Bob", now=time.time())
    s.close()
    before = wrap_document(keys)["wrap_id"]
    r = subprocess.run(
        share + ["--member-key", tmp_path / "alice.key", "--member-key", tmp_path / "carol.key"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "one share each for 2 members (Alice, Carol)" in r.stdout, r.stderr
    assert wrap_document(keys)["wrap_id"] != before
    assert not (keys / "shares" / f"{member_id(bob.public_key())}.share").exists()
    # Bob's old share (kept by him) against the new key: refused; the two remaining open.
    (keys / "shares" / f"{member_id(bob.public_key())}.share").write_bytes(old_bob_share)
    active = {member_id(k.public_key()) for k in (alice, bob, carol)}
    with pytest.raises(CustodyError, match="earlier wrap key"):
        unlock(keys, [alice, bob], active=active)
    assert unlock(keys, [alice, carol], active=active).members == (
        member_id(alice.public_key()),
        member_id(carol.public_key()),
    )


def test_the_privacy_suite_finds_nothing_any_adversary_could_link_or_open(tmp_path):
    """`scripts/privacy`, run short: every adversary at its goal of 0, in a world where the
    committee's own trace does find the pass (so the zeros are not an empty world's)."""
    from workbench import privacy

    kept: list = []
    rows, facts = privacy.run(tmp_path, privacy.SHORT, keep=kept)
    assert [r for r in rows if not r.held] == [], privacy.table(rows, facts)
    assert len(rows) == 14 and facts["check-ins"] > 100 and facts["uploads"] >= facts["kiosks"]
    assert facts["significant"] > 5  # a world with high-risk visitors
    visits = int(re.search(r"the pass checked in (\d+) times", facts["trace"]).group(1))
    assert visits > 0  # two members do find the pass's visits across venues and days
    # Without the padding, the same observer would read most counts off the sizes.
    unpadded, rounds = privacy.network_observer(kept[0], pad=False)
    with_records = sum(1 for rows, _ in kept[0].uploads if rows)
    assert unpadded.found > with_records // 2
    assert rounds.found == with_records  # and every round with check-ins from one without
    # A server that kept each record's key id, as the last release did, told every significant
    # check-in apart with the public schedule.
    world = kept[0]
    copy = tmp_path / "last-release"
    copy.mkdir()
    shutil.copy(world.data / "central.db", copy / "central.db")
    with sqlite3.connect(copy / "central.db") as conn:
        conn.execute("ALTER TABLE records ADD COLUMN seal_kid TEXT")
        conn.executemany(
            "UPDATE records SET seal_kid = ? WHERE record_id = ?",
            [(r["seal_kid"], r["record_id"]) for rows, _ in world.uploads for r in rows],
        )
    world.data = copy
    (told,) = privacy.significance_on_the_server(world)
    assert told.found == facts["significant"] > 0


def test_kiosk_central_ends_with_each_documented_status_in_one_line(tmp_path, one_member_world):
    """The manual's kiosk-central exit-status table, each status made to happen: one line on
    stderr, never a traceback or a raw [Errno."""
    import sqlite3

    keys, data, alice, bob, _ = one_member_world
    from kiosk.core.keys import write_private

    write_private(tmp_path / "alice.key", alice)
    write_private(tmp_path / "bob.key", bob)
    table = (
        (DOCS / "reference" / "exit-status.md").read_text().split("`kiosk-central` ends the same way", 1)[1]
    )
    table = table.split("\n\n", 2)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == {0, 1, 2, 3, 5, 70, 130, 141}
    (tmp_path / "afile").write_text("")
    cases = {
        0: ["reads", "--data", data],
        2: ["issue-pass", "--keys", keys, "--risk", "0", "--expires", "tomorrow"],
        3: ["open-records", "--data", data, "--keys", keys, "--case", "lunch", "--member-key",
            tmp_path / "alice.key", "--member-key", tmp_path / "bob.key"],
    }  # fmt: skip
    seen = {}
    for status, args in cases.items():
        r = subprocess.run(
            [BIN / "kiosk-central", *map(str, args)], capture_output=True, text=True, timeout=60
        )
        seen[status] = r.returncode
        assert "Traceback" not in r.stderr and "[Errno" not in r.stderr and len(r.stderr.splitlines()) <= 1, (
            r.stderr
        )
    for wrong in (["audit", "verify"], ["reads"], ["purge"], ["status"], ["case", "list"]):
        r = subprocess.run(
            [BIN / "kiosk-central", *wrong, "--data", tmp_path / "typo"], capture_output=True, text=True
        )
        assert r.returncode == 2 and "no store here" in r.stderr and "kiosk-central init" in r.stderr, wrong
    assert not (tmp_path / "typo").exists()  # nothing made at a mistyped path
    not_keys = tmp_path / "photos"
    not_keys.mkdir()
    for command in (
        ["keys", "rotate"],
        ["keys", "retire", "--data", data, "--member-key", "a", "--member-key", "b"],
        ["issue-pass", "--risk", "0"],
        ["issue-passes", "--count", "2", "--out", tmp_path / "batch"],
        ["exposures", "publish", "--data", data, "--member-key", "a"],
        ["pass", "show", "VC1:X"],
    ):
        for folder, says in (
            (tmp_path / "keys-typo", "no such folder"),
            (not_keys, "not the authority's keys"),
        ):
            r = subprocess.run(
                [BIN / "kiosk-central", *map(str, command), "--keys", folder], capture_output=True, text=True
            )
            assert r.returncode == 2 and says in r.stderr and "keys init" in r.stderr, (command, r.stderr)
    assert (
        not (tmp_path / "keys-typo").exists()
        and os.listdir(not_keys) == []
        and not (tmp_path / "batch").exists()
    )
    dir_file = subprocess.run(
        [BIN / "kiosk-central", "status", "--data", tmp_path / "afile"], capture_output=True, text=True
    )
    assert dir_file.returncode == 2 and "not a folder" in dir_file.stderr
    # 1: a log changed underneath (an entry rewritten), as `audit verify` finds it.
    conn = sqlite3.connect(data / "central.db")
    conn.execute("UPDATE audit SET entry = replace(entry, 'Alice', 'Mallory') WHERE seq = 1")
    conn.commit()
    conn.close()
    bad = subprocess.run(
        [BIN / "kiosk-central", "audit", "verify", "--data", data], capture_output=True, text=True
    )
    seen[1] = bad.returncode
    assert "does NOT verify" in bad.stderr
    # 5: a store the command may not write (read-only folder), unless root (who may).
    if os.geteuid() != 0:
        os.chmod(data, 0o500)
        ro = subprocess.run([BIN / "kiosk-central", "reads", "--data", data], capture_output=True, text=True)
        os.chmod(data, 0o700)
        seen[5] = ro.returncode
    # 141: stdout closed early.
    pipe = subprocess.run(
        f"'{BIN / 'kiosk-central'}' --help | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True,
    )  # fmt: skip
    assert pipe.stdout.strip() in ("0", "141")
    assert {k: v for k, v in seen.items()} == {k: k for k in seen}, seen
