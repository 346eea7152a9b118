"""Least privilege on PostgreSQL, end to end: `db-roles`, a login user in each role, and each
role running its real commands (`serve` as ingest, `purge` as purge, every committee
command as committee); then every forbidden statement tried as each role."""

import subprocess
import time
import uuid

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.keys import load_ed25519_public, raw_public
from testkit import BIN, fill
from workbench.localserver import LocalServer

DAY = 86_400


@pytest.fixture
def roles(pg_url, pg_server):
    r = subprocess.run(
        [BIN / "kiosk-central", "db-roles", "--database", pg_url], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    db = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for user, role in (
            ("ingest", "kiosk_ingest"),
            ("purge", "kiosk_purge"),
            ("board", "kiosk_committee"),
        ):
            conn.execute(
                f"CREATE USER u_{user}_{db} IN ROLE {role}"
            )  # users are per cluster: a set per database
    url = {
        u: f"postgresql://u_{u}_{db}@127.0.0.1:{pg_server.port}/{db}" for u in ("ingest", "purge", "board")
    }
    url["owner"] = pg_url
    return url


def cli(*args, check=True):
    r = subprocess.run([BIN / "kiosk-central", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert not check or r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r


def test_each_role_runs_its_real_commands(roles, tmp_path, make_pass, trusted):
    from kiosk.core.keys import write_private, write_public
    from kiosk.core.sealkeys import Sealer
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from sync.central.keyring import public_periods
    from workbench.world import members

    board, owner = roles["board"], roles["owner"]
    authority = tmp_path / "authority"
    cli("keys", "init", "--dir", authority)
    for name, key in zip(("alice", "bob"), members(), strict=True):
        write_private(tmp_path / f"{name}.key", key)
        write_public(tmp_path / f"{name}.pub", key.public_key())
    alice, bob = tmp_path / "alice.key", tmp_path / "bob.key"
    # The committee's commands, as the committee role.
    cli("init", "--database", board, "--name", "Alice", "--member-key", alice)
    cli("member", "found", "--database", board, "--name", "Bob", "--member-key", bob)
    cli("keys", "share", "--keys", authority, "--database", board, "--member-key", alice)
    cli("keys", "rotate", "--keys", authority, "--database", board)
    cli(
        "case",
        "open",
        "--database",
        board,
        "--member-key",
        bob,
        "--id",
        "OB-9",
        "--reason",
        "a cluster at the market",
        "--from",  # the test's own window: the check-ins below fall inside it however slow this is
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)),
        "--to",
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
    )
    cli("case", "approve", "--database", board, "--member-key", alice, "--id", "OB-9")
    # The owner registers the kiosk; the ingest role serves it.
    device = Ed25519PrivateKey.generate()
    write_public(tmp_path / "device.pub", device.public_key())
    kid = cli(
        "register-kiosk", "--database", owner, "--venue", "Market", "--public-key", tmp_path / "device.pub"
    ).stdout.splitlines()[0]
    cli("manifest", "publish", "--keys", authority, "--database", board)
    store = CheckinStore.open(
        tmp_path / "k.db",
        venue_id="Market",
        sealing=Sealer(fallback=None, periods=lambda: public_periods(authority)),
    )
    fill(store, make_pass, trusted, 12)
    from sync.central.keyring import server_keys_folder

    server_keys = server_keys_folder(authority, tmp_path / "server-keys")
    with LocalServer(tmp_path / "server", server_keys, database=roles["ingest"]) as server:
        up = Uploader(
            store=store,
            server_url=server.url,
            kiosk_id=kid,
            device_key=device,
            root_key=load_ed25519_public(authority / "root.pub"),
            bundle_file=tmp_path / "bundle.json",
        )
        assert up.round().ok and store.stats()["pending"] == 0
    store.close()
    # The committee reads, traces, raises a risk, retires keys, audits, closes.
    pass_id = make_pass(0)  # a pass text; its id: bytes(range(0, 16))
    pid = bytes(range(0, 16)).hex()
    opened = cli(
        "open-records",
        "--database",
        board,
        "--keys",
        authority,
        "--case",
        "OB-9",
        "--member-key",
        alice,
        "--member-key",
        bob,
    )
    assert len(opened.stdout.splitlines()) == 12 and pass_id
    cli(
        "trace",
        "--database",
        board,
        "--keys",
        authority,
        "--case",
        "OB-9",
        "--pass-id",
        pid,
        "--member-key",
        alice,
        "--member-key",
        bob,
    )
    raised = cli(
        "set-risk",
        "--database",
        board,
        "--keys",
        authority,
        "--pass-id",
        pid,
        "--level",
        "3",
        "--case",
        "OB-9",
        "--member-key",
        alice,
        "--member-key",  # a refusal takes two independent members
        bob,
    )
    assert raised.stdout.startswith("risk list version")
    cli(
        "keys", "retire", "--keys", authority, "--database", board, "--member-key", alice, "--member-key", bob
    )
    assert "verifies" in cli("audit", "verify", "--database", board).stdout
    assert "OB-9" in cli("reads", "--database", board).stdout
    assert kid in cli("status", "--database", board).stdout
    cli("case", "close", "--database", board, "--member-key", bob, "--id", "OB-9")
    # The purge role: deletes what is past the longest retention, by the database's clock.
    with psycopg.connect(owner, autocommit=True) as conn:
        old = time.time() - 90 * 86400 - 600
        conn.execute("UPDATE records SET captured_at = %s WHERE seq <= 5", [old - old % 300])
    purged = cli("purge", "--database", roles["purge"])
    assert purged.stdout.startswith("purged 5 records"), purged.stdout


def test_every_forbidden_statement_is_refused_for_each_role(roles):
    from sync.central.storage.pg_backend import PgStorage

    owner = PgStorage(roles["owner"])
    kid = owner.register_kiosk(
        venue="v", public_key=raw_public(Ed25519PrivateKey.generate().public_key()), now=0
    )
    rid = str(uuid.uuid4())
    now = time.time()
    row = {
        "record_id": rid, "seq": 5, "epoch": 0, "captured_at": now - 60, "clock_synced": True,
        "retention": "normal", "delete_after": 1e300, "seal_kid": "k", "sealed": b"s" * 64, "tag": None,
    }  # fmt: skip
    owner.ingest(kid, str(uuid.uuid4()), [row], now=now)  # numbers 1-4 now missing
    owner.close()
    follows_not = "SELECT kiosk_audit_append(7, '{\"seq\": 7, \"prev\": \"x\"}', 'h', 's', NULL)"
    forbidden = {
        "ingest": [
            "DELETE FROM records",
            "UPDATE records SET sealed = 'x'",
            "DELETE FROM sequence_summary",
            "UPDATE sequence_summary SET received = 0",
            "DELETE FROM sequence_gaps",
            "UPDATE untagged_days SET records = 0",
            "INSERT INTO audit (seq, entry, hash) VALUES (1, '{}', 'h')",
            "SELECT * FROM audit",
            "UPDATE meta SET value = '0' WHERE key = 'risk_version'",
            "INSERT INTO risk_statements VALUES ('x', 1, 1, 'doc')",
            "SELECT * FROM kiosk_purge_records(10)",
            follows_not,
        ],
        "purge": [
            "DELETE FROM records",
            "SELECT * FROM records",
            "DELETE FROM risk_statements",
            "DELETE FROM audit",
            "UPDATE meta SET value = '0' WHERE key = 'delta_floor'",
            "INSERT INTO audit (seq, entry, hash) VALUES (1, '{}', 'h')",
            "DELETE FROM held",
            follows_not,
        ],
        "board": [
            "DELETE FROM records",
            "INSERT INTO records (record_id) VALUES (gen_random_uuid())",
            "UPDATE meta SET value = '0' WHERE key = 'risk_version'",
            "INSERT INTO meta VALUES ('audit_length', '0')",
            "INSERT INTO audit (seq, entry, hash) VALUES (1, '{}', 'h')",
            "DELETE FROM audit",
            "INSERT INTO risk_statements VALUES ('x', 1, 1, 'doc')",
            "DELETE FROM risk_statements",
            "UPDATE sequence_summary SET received = 0",
            "SELECT * FROM kiosk_purge_records(10)",
            follows_not,  # the function: only an entry that follows the end of the log
            'SELECT kiosk_audit_append(1, \'{"seq": 1, "prev": "'
            + "0" * 64
            + '", "action": "member_add"}\', '
            "'h', NULL, NULL, 'stmt', 'doc', 1)",  # a statement without its risk_change entry
        ],
    }
    allowed = []
    for role, statements in forbidden.items():
        for sql in statements:
            with psycopg.connect(roles[role], autocommit=False) as conn:
                try:
                    conn.execute(sql)
                    conn.commit()  # deferred checks (a run of missing numbers) run here
                    allowed.append((role, sql))
                except (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException):
                    conn.rollback()
    assert allowed == []
    # And nothing changed: the missing numbers are still there, the counts as they were.
    s = PgStorage(roles["owner"])
    try:
        assert s.gaps(kid, 0) == [(1, 4)] and len(s.record_ids(kid)) == 1
    finally:
        s.close()


def test_one_purge_at_a_time_across_processes(roles):
    from sync.central.storage.pg_backend import PURGE_LOCK, PgStorage

    with psycopg.connect(roles["owner"], autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [PURGE_LOCK])  # another purge, running
        s = PgStorage(roles["purge"])
        try:
            assert s.purge(now=time.time()).records == 0
        finally:
            s.close()
        other.execute("SELECT pg_advisory_unlock(%s)", [PURGE_LOCK])
    assert DAY


def test_committee_reads_go_to_a_streaming_replica(pg_url, pg_server, tmp_path):
    """`--read-database`: status, reads, open-records and trace read records and aggregates
    from a real replica (made with pg_basebackup); with its replay paused, what it shows is
    the replica's, while the log they append to stays on the primary."""
    from sync.central.storage.pg_backend import PgStorage

    s = PgStorage(pg_url)
    kid = s.register_kiosk(venue="Market", public_key=b"r" * 32, now=0)
    now = time.time()

    def rows(first, n):
        return [
            {"record_id": str(uuid.uuid4()), "seq": first + i, "epoch": 0, "captured_at": now - 60,
             "clock_synced": True, "retention": "normal", "delete_after": 1e300, "seal_kid": "k",
             "sealed": b"s" * 64, "tag": None}
            for i in range(n)
        ]  # fmt: skip

    s.ingest(kid, str(uuid.uuid4()), rows(1, 10), now=now)
    replica = pg_server.replica()
    try:
        read_url = replica.url(pg_url.rsplit("/", 1)[1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # caught up
            try:
                with psycopg.connect(read_url, autocommit=True) as conn:
                    if conn.execute("SELECT count(*) FROM records").fetchone()[0] == 10:
                        break
            except psycopg.Error:
                pass
            time.sleep(0.2)
        with psycopg.connect(read_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        s.ingest(kid, str(uuid.uuid4()), rows(11, 5), now=now)  # on the primary only, for now
        on_primary = cli("status", "--database", pg_url).stdout
        on_replica = cli("status", "--database", pg_url, "--read-database", read_url).stdout
        assert "records 15" in on_primary and "records 10" in on_replica, (on_primary, on_replica)
        with psycopg.connect(read_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        wrong = cli(
            "status",
            "--database",
            pg_url,
            "--read-database",
            "postgresql://nobody@127.0.0.1:1/x",
            check=False,
        )
        assert wrong.returncode == 2 and "cannot use the read database" in wrong.stderr
    finally:
        s.close()
        replica.stop()
