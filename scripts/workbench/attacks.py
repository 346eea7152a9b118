"""The attacks of whoever runs the central server (or sits on the network, or holds one
member's key), each tried for real against real processes: a `kiosk-central serve` on
127.0.0.1, real kiosk stores and uploaders, the real command line. Each attack gives one row:
what it tried, what must happen, what happened. `scripts/attacks` prints the table; the tests
run it too. An attack "succeeds" when what happened is not what must happen.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.keys import (
    BUNDLE_KEY,
    ROOT_PUB,
    init_authority_keys,
    load_ed25519_private,
    load_ed25519_public,
    raw_public,
)
from kiosk.core.timing import DAY

BIN = Path(sys.executable).parent


@dataclass
class Row:
    attack: str
    expected: str
    observed: str
    held: bool  # the promise held: the attack did not succeed


class World:
    """An authority (root on the committee's machine), a server holding only its own keys,
    a committee of two with an approved case, one kiosk registered and synced."""

    def __init__(self, work: Path, server: Any):
        from kiosk.store.checkins import CheckinStore
        from sync.central.keyring import public_periods
        from workbench.world import raise_risk, seeded_committee_keys, trusted_world, with_storage

        self.work, self.server = work, server
        self.keys = work / "committee"
        self.now = time.time()
        self.root = load_ed25519_public(self.keys / ROOT_PUB)  # what the kiosk pinned at install
        seeded_committee_keys(self.keys, now=self.now, ahead=7)  # split between Alice and Bob
        self.installed = public_periods(self.keys)  # the schedule the kiosk is installed with
        admin = with_storage(server.data_dir)
        self.device = Ed25519PrivateKey.generate()
        self.up: Any = None  # the kiosk's uploader, made once its store exists
        self.kid = admin.register_kiosk(
            venue="Market", public_key=raw_public(self.device.public_key()), now=0
        )
        self.alice, self.bob = trusted_world(admin, self.keys, now=self.now)
        from sync.central.committee.audit import member_id
        from sync.central.committee.custody import wrap_document
        from sync.central.committee.members import log_keys_shared

        log_keys_shared(  # who holds a share, as `keys share` logs it
            admin,
            key=self.alice,
            wrap_id=str(wrap_document(self.keys)["wrap_id"]),
            members=sorted(member_id(k.public_key()) for k in (self.alice, self.bob)),
            reissued=False,
            now=self.now,
        )
        self.exposed = b"\x33" * 16
        from kiosk.core.sealkeys import Sealer

        self.store = CheckinStore.open(
            work / "kiosk.db", venue_id="Market", sealing=Sealer(fallback=None, periods=self.periods)
        )
        self.up = self.uploader(server.url)
        assert self.up.round().ok
        self.old_bundle = (work / "bundle.json").read_bytes()  # before the exposed pass was raised
        raise_risk(admin, self.alice, [self.exposed], 3, now=self.now)
        admin.close()
        assert self.up.round().ok

    def periods(self) -> Any:
        held = self.up._held_bundle() if self.up is not None else None
        return held.sealing_periods if held and held.sealing_periods else self.installed

    def uploader(self, url: str) -> Any:
        from kiosk.uploader import Uploader

        return Uploader(
            store=self.store,
            server_url=url,
            kiosk_id=self.kid,
            device_key=self.device,
            root_key=self.root,
            bundle_file=self.work / "bundle.json",
        )

    def trust(self) -> Any:
        from kiosk.app import Trust
        from kiosk.compose import TrustProvider
        from kiosk.core.keys import trusted_issuers
        from kiosk.trust import HeldTrust

        return TrustProvider(  # what the door holds: the database's verified chain
            Trust(issuers=trusted_issuers([self.keys / "issuer.pub"])),
            HeldTrust(self.store, root=self.root, kiosk_id=self.kid),
        )()

    def decide(self, text: str) -> Any:
        from kiosk.core.decision import decide

        t = self.trust()
        return decide(text, trusted=t.issuers, risk_list=t.risk_list, policy=t.policy, now=time.time())

    def pass_text(self, pass_id: bytes, *, key: Any = None) -> str:
        from kiosk.core.passes import encode_pass

        now = int(time.time())
        return encode_pass(
            signing_key=key or load_ed25519_private(self.keys / "issuer.key"),
            issuer="attack",
            issued_at=now - 60,
            expires_at=now + 3600,
            pass_id=pass_id,
            risk_level=0,
        )

    def storage(self) -> Any:
        from workbench.world import with_storage

        return with_storage(self.server.data_dir)


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kiosk-central"), *map(str, args)], capture_output=True, text=True, timeout=120
    )


# -- the attacks ----------------------------------------------------------------------------------
def forged_manifest(w: World) -> list[Row]:
    """With the server's keys folder only: a manifest of the attacker's, naming an issuer and
    a sealing period of theirs and deny level 1, signed with the server's own key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.decision import Policy
    from kiosk.core.manifest import FRESHNESS, RECEIPTS, manifest_payload, sign_manifest
    from kiosk.core.sealkeys import PeriodKey

    server_key = load_ed25519_private(w.server.keys_dir / BUNDLE_KEY)
    issuer = Ed25519PrivateKey.generate()
    theirs = X25519PrivateKey.generate()
    period = PeriodKey(
        kid="attacker",
        klass="normal",
        valid_from=w.now - DAY,
        valid_to=w.now + DAY,
        destroy_after=w.now + 30 * DAY,
        public=raw_public(theirs.public_key()),
    )
    payload = manifest_payload(
        version=99,
        issued_at=time.time(),
        issuer_keys=[issuer.public_key()],
        sealing_periods=[period],
        policy=Policy(deny_level=1),
        server_keys=[(server_key.public_key(), [FRESHNESS, RECEIPTS])],
    )
    s = w.storage()
    s.put_manifest(99, sign_manifest(payload, server_key).decode(), now=time.time())
    s.close()
    fetched = w.up.fetch_bundle()
    admitted = w.decide(w.pass_text(b"\x44" * 16, key=issuer))
    from kiosk.core.decision import Policy as P
    from kiosk.core.reasons import Outcome

    w.store.record(w.decide(w.pass_text(b"\x45" * 16)), now=time.time(), clock_synced=True)
    kid_used = w.store.db.execute("SELECT seal_kid FROM checkins ORDER BY seq DESC LIMIT 1").fetchone()[0]
    deny = w.decide(w.pass_text(b"\x55" * 16)).outcome.value
    held_policy = w.trust().policy
    rows = [
        Row(
            "server keys: a manifest adding the attacker's issuer",
            "refused; their pass is see-staff",
            f"bundle {fetched[:40]}; their pass: {admitted.outcome.value} ({admitted.reason.value})",
            admitted.outcome is not Outcome.ADMIT,
        ),
        Row(
            "server keys: a manifest redirecting sealing to the attacker",
            "records sealed to the root's periods",
            f"next record sealed to {kid_used}",
            kid_used != "attacker",
        ),
        Row(
            "server keys: a manifest lowering deny_level to 1",
            "deny level stays 3",
            f"deny level {held_policy.deny_level} (a level-0 pass: {deny})",
            held_policy.deny_level == P().deny_level,
        ),
    ]
    return rows  # (the forged manifest stays in the store: later attacks run beside it)


def server_signed_risk(w: World) -> list[Row]:
    """The server signs a risk statement itself, to refuse a visitor by its own will."""
    from kiosk.core.auditheads import member_id
    from kiosk.core.riskstatements import sign_statement, statement_payload

    server_key = load_ed25519_private(w.server.keys_dir / BUNDLE_KEY)
    victim = b"\x66" * 16
    from kiosk.core.passes import pass_ref

    doc = sign_statement(
        statement_payload(
            statement_id=uuid.uuid4().hex,
            pass_refs=[pass_ref(victim)],
            level=3,
            case_id="none",
            at=time.time(),
            expires_at=time.time() + DAY,
            member_id=member_id(w.alice.public_key()),
        ),
        server_key,
    )
    s = w.storage()
    s.add_statement(uuid.uuid4().hex, doc.decode(), expires_at=time.time() + DAY, now=time.time())
    s.close()
    fetched = w.up.fetch_bundle()
    verdict = w.decide(w.pass_text(victim)).outcome.value
    return [
        Row(
            "server keys: a risk entry the server signed itself",
            "refused; the visitor is admitted",
            f"bundle {fetched[:40]}; visitor: {verdict}",
            verdict == "admit",
        )
    ]


def withdrawn_statement(w: World) -> list[Row]:
    """The server's database: the exposed pass's risk statement deleted and a whole list
    forced (the delta floor raised), to take back a refusal kiosks already hold."""
    from workbench.world import raise_risk

    s = w.storage()
    version = raise_risk(s, w.alice, [b"\x34" * 16], 2, now=time.time())  # something new to fetch
    s.close()
    db = sqlite3.connect(w.server.data_dir / "central.db")
    db.execute("DELETE FROM risk_statements WHERE doc LIKE ?", ["%"])  # every statement gone
    db.execute("UPDATE meta SET value = ? WHERE key = 'delta_floor'", [str(version + 1)])
    db.commit()
    db.close()
    s = w.storage()
    raise_risk(s, w.alice, [b"\x35" * 16], 2, now=time.time())
    s.close()
    fetched = w.up.fetch_bundle()
    verdict = w.decide(w.pass_text(w.exposed)).outcome.value
    return [
        Row(
            "server DB: a held risk entry deleted, a whole list forced",
            "the exposed pass still refused",
            f"bundle {fetched[:30]}; exposed pass: {verdict}",
            verdict == "deny",
        )
    ]


def forged_receipt(w: World) -> list[Row]:
    """On a plain-HTTP path, an impostor answers 200 naming every record id, no real receipt."""
    import http.server
    import threading

    from workbench.localserver import free_port

    for i in range(5):  # check-ins the impostor will claim to have stored
        w.store.record(w.decide(w.pass_text(bytes([0x70 + i]) * 16)), now=time.time(), clock_synced=True)
    pending = w.store.stats()["pending"]
    ids = [r["record_id"] for r in w.store.pending(1000)]

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(n)
            body = json.dumps({"batch_id": "x", "accepted": ids, "duplicates": [], "receipt": "{}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            self.send_response(304)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    port = free_port()
    httpd = http.server.HTTPServer(("127.0.0.1", port), Impostor)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    fake = w.uploader(f"http://127.0.0.1:{port}")
    for _ in range(3):
        fake.round()
    httpd.shutdown()
    w.store.purge(now=time.time() + 2 * 3600)
    after = w.store.stats()["pending"]
    from kiosk.store.checkins import BAD_RECEIPTS

    bad = int(w.store.get_state(BAD_RECEIPTS, "0"))
    return [
        Row(
            "network: a forged 200 naming every record id",
            "nothing marked synced or purged",
            f"pending {pending} -> {after} after purge; bad receipts {bad}",
            after == pending and pending > 0,
        )
    ]


def rollback(w: World) -> list[Row]:
    """One byte of damage, then an older genuine bundle put back, to lift a refusal."""
    w.up.fetch_bundle()
    path = w.work / "bundle.json"
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
    damaged = w.decide(w.pass_text(w.exposed)).outcome.value
    path.write_bytes(w.old_bundle)  # genuine, signed, and from before the raise
    replaced = w.decide(w.pass_text(w.exposed)).outcome.value
    return [
        Row(
            "kiosk disk: one byte of damage to bundle.json",
            "the exposed pass still refused",
            f"exposed pass: {damaged}",
            damaged == "deny",
        ),
        Row(
            "kiosk disk: an older bundle file put back",
            "never below the database's versions",
            f"exposed pass: {replaced}",
            replaced == "deny",
        ),
    ]


def audit_tail(w: World) -> list[Row]:
    """Delete the last audit row (a case close), then empty the audit table."""
    from workbench.world import TEST_CASE

    key = w.work / "alice.key"
    from kiosk.core.keys import write_private

    write_private(key, w.alice)
    data = w.server.data_dir
    cli("case", "close", "--data", data, "--id", TEST_CASE, "--member-key", key)
    db = sqlite3.connect(data / "central.db")
    db.execute("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    db.commit()
    verify = cli("audit", "verify", "--data", data)
    reopened = cli(
        "set-risk",
        "--data",
        data,
        "--pass-id",
        "ab" * 16,
        "--level",
        "3",
        "--case",
        TEST_CASE,
        "--member-key",
        key,
    )
    db.execute("DELETE FROM audit")
    db.commit()
    db.close()
    boot = cli("init", "--data", data, "--name", "Mallory", "--public-key", w.keys / ROOT_PUB)
    return [
        Row(
            "server DB: the last audit row (a case close) deleted",
            "audit verify fails; the case stays closed",
            f"verify rc {verify.returncode}; set-risk on it rc {reopened.returncode}",
            verify.returncode != 0 and reopened.returncode != 0,
        ),
        Row(
            "server DB: the audit table emptied, then a new first member",
            "refused as tampering",
            f"init rc {boot.returncode}: {boot.stderr.strip()[:60]}",
            boot.returncode != 0,
        ),
    ]


def one_member(work: Path) -> list[Row]:
    """One person founds the committee alone, or adds a second key she holds and approves her
    own case with it."""
    from sync.central.committee import members as committee
    from sync.central.committee.audit import AuditError
    from workbench.world import with_storage

    s = with_storage(work / "one-member")
    alice, alter_ego, bob = (Ed25519PrivateKey.generate() for _ in range(3))
    now = time.time()
    committee.found_member(s, name="Alice", key=alice, now=now)
    try:  # the founder alone adds her puppet as the second member
        committee.add_member(s, name="Alice too", public_key=alter_ego.public_key(), key=alice, now=now)
        founding = "added"
    except AuditError as e:
        founding = f"refused ({str(e)[:40]})"
    committee.found_member(s, name="Bob", key=bob, now=now)  # a second person signs in
    committee.add_member(s, name="Alice too", public_key=alter_ego.public_key(), key=alice, now=now)
    committee.open_case(
        s, key=alice, case_id="SELF-1", reason="approving my own case", from_ts=now - DAY, to_ts=now, now=now
    )
    outcomes = []
    for step in ("pending", "approved"):  # her second key, before and after Bob approved it
        if step == "approved":
            committee.approve_member(s, key=bob, member="Alice too", now=now)
        try:
            committee.approve_case(s, key=alter_ego, case_id="SELF-1", now=now)
            outcomes.append("approved")
        except AuditError as e:
            outcomes.append(f"refused ({str(e)[:40]})")
    try:  # the other founder is independent: this is how a case gets approved
        committee.approve_case(s, key=bob, case_id="SELF-1", now=now)
        other = "approved"
    except AuditError as e:
        other = f"refused ({str(e)[:40]})"
    s.close()
    return [
        Row(
            "one member: founds the committee alone, her second key the other founder",
            "refused",
            founding,
            founding.startswith("refused"),
        ),
        Row(
            "one member: her own second key approves her case (pending, then approved)",
            "refused both times",
            "; ".join(outcomes),
            all(o.startswith("refused") for o in outcomes),
        ),
        Row(
            "committee: the other founder approves a founder's case",
            "approved",
            other,
            other == "approved",
        ),
    ]


def bounds_and_expiry(w: World) -> list[Row]:
    """Risk entries that never end, a case window over a century, an entry past its expiry."""
    from workbench.world import TEST_CASE

    key = w.work / "bob.key"
    from kiosk.core.keys import write_private

    write_private(key, w.bob)
    data = w.work / "bounds"
    shutil.copytree(w.server.data_dir, data, ignore=shutil.ignore_patterns("*.log"))
    rows = []
    for days in ("1e7", "-1"):
        r = cli(
            "set-risk",
            "--data",
            data,
            "--pass-id",
            "cd" * 16,
            "--level",
            "3",
            "--case",
            TEST_CASE,
            "--member-key",
            key,
            "--expires-days",
            days,
        )
        rows.append(
            Row(
                f"committee: --expires-days {days}",
                "refused naming the bound",
                f"rc {r.returncode}: {r.stderr.strip()[-50:]}",
                r.returncode != 0 and "90" in r.stderr,
            )
        )
    r = cli(
        "case",
        "open",
        "--data",
        data,
        "--id",
        "CENTURY",
        "--member-key",
        key,
        "--reason",
        "a century of records",
        "--from",
        "1970-01-01",
        "--to",
        "2100-01-01",
    )
    rows.append(
        Row(
            "committee: a case window from 1970 to 2100",
            "refused naming the bound",
            f"rc {r.returncode}: {r.stderr.strip()[-50:]}",
            r.returncode != 0,
        )
    )
    held = w.up._held_bundle()
    later = held.risk_list.level_for(w.exposed, now=w.now + 15 * DAY) if held else 3
    rows.append(
        Row(
            "offline kiosk: an entry past its expiry",
            "no longer applies on the kiosk's clock",
            f"level 15 days on: {later}",
            later == 0,
        )
    )
    return rows


def retire_holds(w: World) -> list[Row]:
    """keys retire while an open case holds a period; and without a member key."""
    from sync.central.keyring import load_schedule

    data = w.work / "retire-store"
    shutil.copytree(w.server.data_dir, data, ignore=shutil.ignore_patterns("*.log"))
    keys = w.work / "retire-keys"
    shutil.copytree(w.keys, keys)
    no_member = cli("keys", "retire", "--keys", keys, "--data", data)
    return [
        Row(
            "committee: keys retire with a store, no member key",
            "refused: every destruction is logged",
            f"rc {no_member.returncode}",
            no_member.returncode != 0 and bool(load_schedule(keys)),
        )
    ]


def live_manifest(w: World) -> list[Row]:
    """keys rotate and a new manifest while the server runs: taken without a restart."""
    before = w.up._held_bundle().manifest_version
    r = cli("keys", "rotate", "--keys", w.keys, "--ahead", "9", "--data", w.server.data_dir)
    fetched = w.up.fetch_bundle()
    after = w.up._held_bundle().manifest_version
    return [
        Row(
            "operator: new periods while the server runs",
            "served without a restart",
            f"rotate rc {r.returncode}; manifest {before} -> {after} ({fetched[:30]})",
            after > before,
        )
    ]


SCENARIOS: list[Callable[[World], list[Row]]] = [
    live_manifest,
    server_signed_risk,
    withdrawn_statement,
    forged_receipt,
    rollback,
    bounds_and_expiry,
    retire_holds,
    forged_manifest,  # leaves its forged manifest in the store
    audit_tail,  # leaves the log emptied
]


def fresh_world(work: Path, scenario: Callable[[World], list[Row]]) -> list[Row]:
    """One attack in a world of its own: an authority, a server and a kiosk no other attack touched."""
    from sync.central.keyring import server_keys_folder
    from workbench.localserver import LocalServer

    work.mkdir(parents=True)
    init_authority_keys(work / "committee")
    with LocalServer(
        work / "central", server_keys_folder(work / "committee", work / "server-keys")
    ) as server:
        w = World(work, server)
        try:
            return scenario(w)
        except Exception as e:  # an attack that breaks the harness is reported, not hidden
            return [Row(scenario.__name__, "the scenario runs", f"{type(e).__name__}: {e}"[:80], False)]
        finally:
            w.store.close()


def run_all(work: Path) -> list[Row]:
    from sync.central.keyring import server_keys_folder
    from workbench.localserver import LocalServer

    work.mkdir(parents=True, exist_ok=True)
    init_authority_keys(work / "committee")
    rows: list[Row] = []
    with LocalServer(
        work / "central", server_keys_folder(work / "committee", work / "server-keys")
    ) as server:
        w = World(work, server)
        from workbench import attacks_fleet, attacks_trust

        for scenario in [
            *SCENARIOS[:-2],
            *attacks_trust.SCENARIOS,
            *attacks_fleet.SCENARIOS,
            *SCENARIOS[-2:],
        ]:
            try:
                rows += scenario(w)
            except Exception as e:  # an attack that breaks the harness is reported, not hidden
                rows.append(
                    Row(scenario.__name__, "the scenario runs", f"{type(e).__name__}: {e}"[:80], False)
                )
        w.store.close()
    for scenario in attacks_trust.FRESH:
        rows += fresh_world(work / scenario.__name__, scenario)
    rows += one_member(work)
    rows += attacks_trust.healthz_database_down(work)
    return rows


def table(rows: list[Row]) -> str:
    out = [f"{'attack':58s} {'expected':42s} observed"]
    for r in rows:
        out.append(f"{r.attack[:58]:58s} {r.expected[:42]:42s} {r.observed}")
    succeeded = sum(not r.held for r in rows)
    out.append("")
    out.append(f"attacks tried      {len(rows):4d}")
    out.append(f"attacks succeeded  {succeeded:4d}")
    return "\n".join(out)
