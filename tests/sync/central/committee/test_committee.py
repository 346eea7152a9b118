"""The committee's side: members, outbreak cases that need a second member, an audit log
anyone can verify, and a server that will not start beside a private key."""

import json
import shutil
import sqlite3
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.central.committee import members as committee
from sync.central.committee.audit import AuditError
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import BIN

DAY = 86_400


@pytest.fixture
def board(tmp_path):
    """A server database with three members and one approved case."""
    s = SqliteStorage.in_folder(tmp_path / "central")
    a, b, c = (Ed25519PrivateKey.generate() for _ in range(3))
    committee.found_member(s, name="Alice", key=a, now=1)  # the two founders, each with own key
    committee.found_member(s, name="Bob", key=b, now=2)
    committee.add_member(s, name="Chan", public_key=c.public_key(), key=b, now=3)  # two active: pending
    committee.approve_member(s, key=a, member="Chan", now=3)  # a member other than who added her
    committee.open_case(
        s,
        key=b,
        case_id="OB-7",
        reason="cluster at the night market",
        from_ts=1000,
        to_ts=1000 + 13 * DAY,
        now=4,
    )
    committee.approve_case(s, key=a, case_id="OB-7", now=5)  # Alice: a founder, independent of Bob
    yield s, (a, b, c), tmp_path / "central"
    s.close()


def test_a_case_needs_a_second_member_and_reads_stay_in_its_window(board):
    s, (a, b, c), _ = board
    committee.open_case(
        s, key=c, case_id="OB-8", reason="a second cluster, same street", from_ts=0, to_ts=10, now=6
    )
    with pytest.raises(AuditError, match="opened by this member"):
        committee.approve_case(s, key=c, case_id="OB-8", now=7)  # one person alone: no
    with pytest.raises(AuditError, match="not approved yet"):
        committee.state_of(s).usable_case("OB-8")
    assert committee.state_of(s).usable_case("OB-7").approved_by is not None

    def read(**kw):
        return committee.authorise_read(
            s,
            key=a,
            second=b,  # reading takes two members
            case_id=kw.pop("case", "OB-7"),
            action="read",
            detail={},
            touched=lambda x, y: [],
            now=8,
            **kw,
        )

    _, case, start, end = read(from_ts=None, to_ts=None)
    assert (start, end) == (1000, 1000 + 13 * DAY)  # the case's own window
    with pytest.raises(AuditError, match="cannot reach outside"):
        read(from_ts=0, to_ts=2000)
    with pytest.raises(AuditError, match="no such outbreak case"):
        read(case="lunch", from_ts=None, to_ts=None)
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(AuditError, match="not a registered, active committee member"):
        committee.authorise_read(
            s,
            key=stranger,
            case_id="OB-7",
            action="read",
            detail={},
            touched=lambda x, y: [],
            from_ts=None,
            to_ts=None,
            now=9,
        )
    committee.close_case(s, key=b, case_id="OB-7", now=10)
    with pytest.raises(AuditError, match="closed"):
        read(from_ts=None, to_ts=None)


def test_only_a_member_adds_a_member_and_reasons_and_windows_are_required(board):
    s, (a, b, c), _ = board
    with pytest.raises(AuditError, match="needs --member-key"):
        committee.add_member(
            s, name="Eve", public_key=Ed25519PrivateKey.generate().public_key(), key=None, now=11
        )
    with pytest.raises(AuditError, match="not a registered"):
        committee.add_member(
            s,
            name="Eve",
            public_key=Ed25519PrivateKey.generate().public_key(),
            key=Ed25519PrivateKey.generate(),
            now=11,
        )
    with pytest.raises(AuditError, match="reason"):
        committee.open_case(s, key=a, case_id="OB-9", reason="x", from_ts=0, to_ts=1, now=12)
    with pytest.raises(AuditError, match="case id"):
        committee.open_case(s, key=a, case_id="a b", reason="a real reason here", from_ts=0, to_ts=1, now=12)


def _tamper(db, sql, *params):
    conn = sqlite3.connect(db)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("how", ["change", "delete", "reorder", "resign", "truncate"])
def test_any_change_to_the_audit_log_fails_verify(board, how):
    s, (a, b, c), data = board
    head = committee.state_of(s)
    published = (head.count, head.head)
    db = data / "central.db"
    rows = s.audit_entries()
    if how == "change":  # backdate entry 4 (the case's opening)
        raw = json.loads(rows[3][0])
        raw["at"] = 0
        _tamper(
            db,
            "UPDATE audit SET entry = ? WHERE seq = 4",
            json.dumps(raw, sort_keys=True, separators=(",", ":")),
        )
    elif how == "delete":  # remove the approval, renumber nothing
        _tamper(db, "DELETE FROM audit WHERE seq = 5")  # the log now ends at 4: the head says 5
    elif how == "reorder":
        _tamper(db, "UPDATE audit SET seq = -1 WHERE seq = 2")
        _tamper(db, "UPDATE audit SET seq = 2 WHERE seq = 3")
        _tamper(db, "UPDATE audit SET seq = 3 WHERE seq = -1")
    elif how == "resign":  # rewrite an entry and its hash consistently: the signature fails
        from sync.central.committee.audit import entry_hash

        raw = json.loads(rows[4][0])
        raw["detail"]["case"] = "OB-X"
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        _tamper(db, "UPDATE audit SET entry = ?, hash = ? WHERE seq = 5", text, entry_hash(text))
    else:  # truncate to below a published head
        _tamper(db, "DELETE FROM audit WHERE seq >= 4")
    verify = subprocess.run(
        [BIN / "kiosk-central", "audit", "verify", "--data", data, "--head", published[1]],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 1 and "does NOT verify" in verify.stderr, verify.stdout
    if how in ("change", "reorder", "resign"):  # caught even without a published head
        plain = subprocess.run(
            [BIN / "kiosk-central", "audit", "verify", "--data", data], capture_output=True, text=True
        )
        assert plain.returncode == 1


def test_audit_show_head_and_verify_from_the_command_line(board):
    s, _, data = board
    head = subprocess.run(
        [BIN / "kiosk-central", "audit", "head", "--data", data], capture_output=True, text=True
    )
    count, h = head.stdout.split()
    assert count == "6" and len(h) == 64
    ok = subprocess.run(
        [BIN / "kiosk-central", "audit", "verify", "--data", data, "--head", h],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "6 entries" in ok.stdout
    shown = subprocess.run(
        [BIN / "kiosk-central", "audit", "show", "--data", data], capture_output=True, text=True
    ).stdout.splitlines()
    assert [line.split()[3] for line in shown] == ["member_found"] * 2 + [
        "member_add",
        "member_approve",
        "case_open",
        "case_approve",
    ]
    import re

    assert not any(re.search(r"\b1[0-9]{9}\.[0-9]", line) for line in shown)  # no epoch floats
    assert h in shown[-1]  # the whole head, as verify --head takes it
    short = subprocess.run(
        [BIN / "kiosk-central", "audit", "verify", "--data", data, "--head", h[:16]],
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "shortened" in short.stderr


def test_set_risk_is_refused_without_an_approved_case_and_keeps_no_pass_id(board, tmp_path, authority):
    s, (a, b, c), data = board
    from kiosk.core.keys import write_private

    write_private(tmp_path / "a.key", a)
    write_private(tmp_path / "b.key", b)
    write_private(tmp_path / "c.key", c)
    write_private(tmp_path / "x.key", Ed25519PrivateKey.generate())
    s.close()
    pid = "ab" * 16
    base = [
        BIN / "kiosk-central",
        "set-risk",
        "--data",
        data,
        "--pass-id",
        pid,
        "--level",
        "3",
        "--keys",
        authority,
    ]
    no_member = subprocess.run(
        base + ["--case", "OB-7", "--member-key", tmp_path / "x.key"], capture_output=True, text=True
    )
    assert no_member.returncode == 3 and "not a registered" in no_member.stderr
    no_case = subprocess.run(
        base + ["--case", "OB-99", "--member-key", tmp_path / "a.key"], capture_output=True, text=True
    )
    assert no_case.returncode == 3 and "OB-99" in no_case.stderr
    alone = subprocess.run(
        base + ["--case", "OB-7", "--member-key", tmp_path / "a.key"], capture_output=True, text=True
    )
    assert alone.returncode == 3 and "takes two independent members" in alone.stderr  # a refusal
    added = subprocess.run(  # Chan was added by Bob: not independent of him
        base + ["--case", "OB-7", "--member-key", tmp_path / "b.key", "--member-key", tmp_path / "c.key"],
        capture_output=True,
        text=True,
    )
    assert added.returncode == 3 and "independent" in added.stderr
    ok = subprocess.run(
        base + ["--case", "OB-7", "--member-key", tmp_path / "a.key", "--member-key", tmp_path / "b.key"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    raw = b"".join(p.read_bytes() for p in data.glob("central.db*"))
    assert pid.encode() not in raw and bytes.fromhex(pid) not in raw  # refs only
    s2 = SqliteStorage.in_folder(data)
    last = json.loads(s2.audit_entries()[-1][0])
    s2.close()
    assert last["action"] == "risk_change" and last["detail"]["case"] == "OB-7"
    # The log names the pass by a keyed hash (under a key retired with the day's keys), not
    # by the reference kiosks match on.
    from kiosk.core.passes import pass_ref

    assert pass_ref(bytes.fromhex(pid)) not in json.dumps(last) and len(last["detail"]["passes"]) == 1


def test_serve_refuses_a_private_key_in_its_keys_folder(tmp_path, authority, server_keys):
    for name in ("root.key", "issuer.key"):
        keys = tmp_path / f"keys-{name}"
        shutil.copytree(server_keys, keys)
        shutil.copy(authority / name, keys / name)
        p = subprocess.run(
            [BIN / "kiosk-central", "serve", "--data", tmp_path / "c", "--keys", keys, "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 2 and f"{keys / name}: a private key in the server's keys folder" in p.stderr
        assert "serving on" not in p.stderr
