"""The privacy suite (`scripts/privacy`): a multi-venue, multi-day world, then each adversary
with what it can get hold of, and what it could link or open against the goal of 0.

The authority and the committee act through `kiosk-central` exactly as README says (keys,
members, their shares, periods, kiosks registered with their tag keys, the manifest, a case,
a trace by two members). Each kiosk fetches its bundle from a real server over HTTP. The
check-ins of the days ahead are then made through the kiosk's own store with a clock passed
in (today and the next days: the kiosk holds those days' keys), and ingested by the server's
storage with the same clock; the uploads' sizes are what the uploader would send.

Adversaries: the server (a copy of its database), a stolen kiosk (its files), both together,
one committee member (with the committee's keys folder and a database copy), anyone after
retirement (a backup of everything, and even two members' keys), and a network observer.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.core.timing import DAY

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Row:
    adversary: str
    what: str
    found: int
    goal: int = 0

    @property
    def held(self) -> bool:
        return self.found <= self.goal


@dataclass(frozen=True)
class Size:
    kiosks: int = 5
    passes: int = 200
    days: int = 6
    known: int = 11  # passes whose ids an adversary already holds


SHORT = Size(kiosks=3, passes=40, days=3, known=6)


def cli(*args: Any, cwd: Path) -> str:
    r = subprocess.run(
        [str(BIN / "kiosk-central"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if r.returncode != 0:
        raise RuntimeError(
            f"kiosk-central {' '.join(map(str, args))}: {r.stderr.strip() or r.stdout.strip()}"
        )
    return r.stdout


class World:
    def __init__(self, work: Path, size: Size, *, seed: int = 1) -> None:
        self.work, self.size, self.rng = work, size, random.Random(seed)
        self.t0 = time.time()
        self.keys, self.data = work / "authority", work / "central"
        self.kiosks: list[dict[str, Any]] = []
        self.uploads: list[tuple[list[dict[str, Any]], int]] = []  # (records, bytes on the wire)
        self.pass_ids: list[bytes] = []
        self.significant: dict[str, bool] = {}  # the truth: record id -> significant (risk 2+, refused)

    # -- the authority and the committee, through the command line ------------------------------
    def committee(self) -> None:
        w = self.work
        cli("keys", "init", "--dir", "authority", cwd=w)
        for name in ("alice", "bob"):
            cli("keys", "init-member", "--dir", name, cwd=w)
        cli("init", "--data", "central", cwd=w)
        for name in ("Alice", "Bob"):  # the two founders, each signing in with their own key
            cli("member", "found", "--data", "central", "--name", name, "--member-key",
                f"{name.lower()}/member.key", cwd=w)  # fmt: skip
        cli(
            "keys",
            "share",
            "--keys",
            "authority",
            "--data",
            "central",
            "--member-key",
            "alice/member.key",
            cwd=w,
        )
        cli("keys", "rotate", "--keys", "authority", "--data", "central", cwd=w)

    def register_kiosks(self) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        from kiosk.core.keys import write_private, write_public

        for i in range(self.size.kiosks):
            d = self.work / f"kiosk-{i}"
            d.mkdir()
            device, tag = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()  # `kiosk keys init`
            write_private(d / "device.key", device)
            write_public(d / "device.pub", device.public_key())
            write_private(d / "tag.key", tag)
            write_public(d / "tag.pub", tag.public_key())
            out = cli(
                "register-kiosk", "--data", "central", "--venue", f"Venue {i}", "--public-key",
                d / "device.pub", "--tag-key", d / "tag.pub", "--keys", "authority", cwd=self.work,
            )  # fmt: skip
            self.kiosks.append({"dir": d, "id": out.splitlines()[0], "device": device, "tag": tag})
        cli("manifest", "publish", "--keys", "authority", "--data", "central", cwd=self.work)
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0 - 3600))
        end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0 + self.size.days * DAY))
        cli(
            "case", "open", "--data", "central", "--member-key", "bob/member.key", "--id", "OB-PRIV-1",
            "--reason", "a cluster the privacy suite traces", "--from", start, "--to", end, cwd=self.work,
        )  # fmt: skip
        cli("case", "approve", "--data", "central", "--member-key", "alice/member.key", "--id", "OB-PRIV-1",
            cwd=self.work)  # fmt: skip

    # -- each kiosk: its bundle over HTTP, then its days ----------------------------------------
    def fetch_bundles(self) -> None:
        from kiosk.core.keys import load_ed25519_public
        from kiosk.store.checkins import CheckinStore
        from kiosk.uploader import Uploader
        from sync.central.keyring import server_keys_folder
        from workbench.localserver import LocalServer

        with LocalServer(self.data, server_keys_folder(self.keys, self.work / "server-keys")) as server:
            for k in self.kiosks:
                store = CheckinStore.open(k["dir"] / "k.db", sealing=None, venue_id="-")
                up = Uploader(
                    store=store,
                    server_url=server.url,
                    kiosk_id=k["id"],
                    device_key=k["device"],
                    root_key=load_ed25519_public(self.keys / "root.pub"),
                    bundle_file=k["dir"] / "bundle.json",
                )
                up.fetch_bundle()
                k["bundle"] = up._held_bundle()
                store.close()

    def checkins(self) -> None:
        from kiosk.core.decision import Policy, RiskList, decide
        from kiosk.core.keys import load_ed25519_private, trusted_issuers
        from kiosk.core.passes import encode_pass
        from kiosk.core.sealkeys import Sealer, Tagger
        from kiosk.store.checkins import CheckinStore
        from sync.central.storage.sqlite_backend import SqliteStorage

        issuer = load_ed25519_private(self.keys / "issuer.key")
        trusted = trusted_issuers([self.keys / "issuer.pub"])
        self.pass_ids = [self.rng.randbytes(16) for _ in range(self.size.passes)]
        # one pass in ten at level 2 and one in twenty-five at level 3 (refused): their
        # check-ins are significant, kept 90 days on the kiosk, and the server must not know it
        levels = {p: 3 if i % 25 == 7 else 2 if i % 10 == 3 else 0 for i, p in enumerate(self.pass_ids)}
        texts = {
            p: encode_pass(
                signing_key=issuer,
                issuer="privacy-suite",
                issued_at=int(self.t0) - 3600,
                expires_at=int(self.t0 + 60 * DAY),
                pass_id=p,
                risk_level=levels[p],
            )
            for p in self.pass_ids
        }
        stores = []
        for k in self.kiosks:
            bundle = k["bundle"]
            stores.append(
                CheckinStore.open(
                    k["dir"] / "k.db",
                    venue_id=f"Venue {self.kiosks.index(k)}",
                    sealing=Sealer(fallback=None, periods=lambda b=bundle: b.sealing_periods),
                    tagger=Tagger(
                        private_key=k["tag"], kiosk_id=k["id"], sealed_keys=lambda b=bundle: b.tag_keys
                    ),
                )
            )
        server = SqliteStorage.in_folder(self.data)
        try:
            for day in range(self.size.days):
                visits = []
                for p in self.pass_ids:
                    for _ in range(self.rng.choice((0, 1, 1, 2, 3))):  # a route through the venues
                        at = self.t0 + day * DAY + self.rng.uniform(60, DAY - 7200)
                        visits.append((at, self.rng.randrange(len(self.kiosks)), p))
                visits.sort()
                for hour in range(24):  # every kiosk syncs every hour, whether anybody came or not
                    end = self.t0 + day * DAY + (hour + 1) * 3600
                    while visits and visits[0][0] < end:
                        at, i, p = visits.pop(0)
                        d = decide(texts[p], trusted=trusted, risk_list=RiskList(), policy=Policy(), now=at)
                        rid = stores[i].record(d, now=at, clock_synced=True)
                        self.significant[rid] = stores[i].retention.classify(d)[0] == "significant"
                    for k, store in zip(self.kiosks, stores, strict=True):
                        self.sync_round(server, k, store, now=end)
        finally:
            server.close()
            for store in stores:
                store.close()

    def sync_round(self, server: Any, k: dict[str, Any], store: Any, *, now: float) -> None:
        """One round of a kiosk's sync: its upload (an empty batch when it has nothing to
        send, as the uploader does), what the server keeps, and what leaves the kiosk."""
        import base64

        from kiosk.core import protocol

        rows = store.pending(5000)
        body = protocol.encode_batch(str(uuid.uuid4()), rows)
        self.uploads.append((rows, len(body)))
        if rows:
            server.ingest(
                k["id"],
                str(uuid.uuid4()),
                [{**r, "sealed": base64.b64decode(r["sealed"])} for r in rows],
                now=now,
            )
            store.mark_synced([r["record_id"] for r in rows], now=now)
        server.drop_spent_tag_keys(now=now)  # what `serve` does every minute
        # the round's bundle says what the server holds: those may leave the kiosk
        store.confirm(server.stored_summary(k["id"]), now=now)
        store.purge(now=now + 7200)

    def trace(self) -> str:
        """Two members trace one pass (real time: the case's window holds the days ahead)."""
        return cli(
            "trace", "--data", "central", "--keys", "authority", "--member-key", "alice/member.key",
            "--member-key", "bob/member.key", "--case", "OB-PRIV-1", "--pass-id", self.pass_ids[0].hex(),
            cwd=self.work,
        )  # fmt: skip


# -- the adversaries ----------------------------------------------------------------------------
def server_rows(folder: Path, sql: str, params: Any = ()) -> list[Any]:
    """What a copy of the server's database (the folder holding central.db) answers."""
    from sync.central.storage.sqlite_backend import SqliteStorage

    s = SqliteStorage.in_folder(folder)
    try:
        return list(s._q(sql, params))
    finally:
        s.close()


def server_copy(world: World) -> list[Row]:
    """From the server's database alone: one pass's visits joined across venues by tag."""
    rows = server_rows(world.data, "SELECT kiosk_id, captured_at, tag FROM records WHERE tag IS NOT NULL")
    groups: dict[tuple[int, str], set[str]] = defaultdict(set)
    for kiosk_id, at, tag in rows:
        groups[(int(at // DAY), tag)].add(kiosk_id)
    across = sum(1 for kiosks in groups.values() if len(kiosks) > 1)
    return [Row("server copy", "itineraries joined across venues (a tag at 2+ venues a day)", across)]


def kiosk_tag_keys(world: World, k: dict[str, Any], *, now: float) -> list[Any]:
    """The sealed tag keys a thief of kiosk ``k`` finds in everything it stores (its bundle
    file and the copy in its database), after its purge timer ran at ``now``."""
    from kiosk.core.bundle import chain_docs
    from kiosk.core.sealkeys import SealedTagKey
    from kiosk.core.signed import unb64
    from kiosk.store.checkins import CheckinStore
    from kiosk.trust import HeldTrust, TrustKey

    store = CheckinStore.open(k["dir"] / "k.db", sealing=None, venue_id="-")
    try:
        HeldTrust(store, root=None, kiosk_id=k["id"]).prune(now=now)  # what `kiosk purge` does
        copy = store.get_state(TrustKey.COPY.value)
        if copy:  # and its export, the bundle file
            (k["dir"] / "bundle.json").write_text(copy)
    finally:
        store.close()
    texts = [(k["dir"] / "bundle.json").read_bytes()] + ([copy.encode()] if copy else [])
    found = set()
    for text in texts:
        for doc in chain_docs(text):
            for tag_doc in json.loads(doc).get("tag_keys", []):
                found.add(SealedTagKey.from_wire(json.loads(unb64(json.loads(tag_doc)["payload"]))))
    return sorted(found, key=lambda s: s.valid_from)


def stolen_kiosk(world: World, *, now: float) -> list[Row]:
    """A thief of kiosk 0 at the end, alone and with a server copy: past visits of passes
    whose ids they hold, tagged with every key the kiosk can open."""
    import sqlite3

    from kiosk.core.keys import load_x25519_private
    from kiosk.core.sealkeys import Tagger

    k = world.kiosks[0]
    held = kiosk_tag_keys(world, k, now=now)
    private = load_x25519_private(k["dir"] / "tag.key")
    known = world.pass_ids[: world.size.known]
    tags = set()
    for sealed in held:
        tagger = Tagger(private_key=private, kiosk_id=k["id"], sealed_keys=lambda s=sealed: [s])
        tags |= {tagger.tag_for(p, sealed.valid_from) for p in known}
    today = now - now % DAY  # the kiosk needs today's key to tag today's check-ins: "past" is before
    conn = sqlite3.connect(k["dir"] / "k.db")
    try:
        own = sum(
            1 for (t,) in conn.execute("SELECT tag FROM checkins WHERE captured_at < ?", [now]) if t in tags
        )
    finally:
        conn.close()
    past = server_rows(
        world.data, "SELECT tag FROM records WHERE captured_at < ? AND tag IS NOT NULL", [today]
    )
    both = sum(1 for (t,) in past if t in tags)
    return [
        Row("stolen kiosk", f"visits before today of {len(known)} known passes, in its own files", own),
        Row("stolen kiosk + server", f"visits before today of {len(known)} known passes, any venue", both),
        Row("stolen kiosk", "search-tag keys of a day already over that it still holds",
            sum(1 for s in held if s.valid_to <= now)),
    ]  # fmt: skip


def times_in_clear(world: World) -> list[Row]:
    """What a copy of the server, or a stolen kiosk, says of when each check-in happened:
    finer than its 5-minute bucket, from a clear time or from a time-ordered record id."""
    import sqlite3

    from kiosk.core.recordids import id_time
    from kiosk.core.timing import TIME_BUCKET_S

    def finer(rows: list[Any]) -> int:
        return sum(1 for rid, at in rows if float(at) % TIME_BUCKET_S or id_time(str(rid)) is not None)

    server = server_rows(world.data, "SELECT record_id, captured_at FROM records")
    # each kiosk's rows as it held them before its upload (then they left it)
    kiosk = [(r["record_id"], r["captured_at"]) for rows, _ in world.uploads for r in rows]
    for k in world.kiosks:  # and what it still holds
        conn = sqlite3.connect(k["dir"] / "k.db")
        try:
            kiosk += conn.execute("SELECT record_id, captured_at FROM checkins").fetchall()
        finally:
            conn.close()
    return [
        Row(
            "server copy",
            f"check-ins whose time it holds finer than 5 minutes (of {len(server)})",
            finer(server),
        ),
        Row(
            "stolen kiosk",
            f"check-ins whose time it holds finer than 5 minutes (of {len(kiosk)})",
            finer(kiosk),
        ),
    ]


def significance_on_the_server(world: World) -> list[Row]:
    """Which check-ins were significant (a visitor at risk level 2 or more, or refused), told
    from a copy of the server and the public key schedule: any class, key id (the schedule
    names each key's class) or deletion time (28 days against 90) the server keeps of a record
    or a hold, or a sealed size apart from the rest. Counted against the truth."""
    import sqlite3

    schedule = json.loads((world.keys / "sealing-periods.json").read_text())["periods"]
    klass = {e["kid"]: e["class"] for e in schedule}
    conn = sqlite3.connect(world.data / "central.db")
    conn.row_factory = sqlite3.Row
    try:
        records = [dict(r) for r in conn.execute("SELECT * FROM records")]
        held = {r["record_id"]: dict(r) for r in conn.execute("SELECT * FROM held")}
    finally:
        conn.close()
    sizes: dict[int, int] = defaultdict(int)
    for r in records:
        sizes[len(r["sealed"])] += 1
    usual = max(sizes, key=lambda n: sizes[n]) if sizes else 0

    def says_significant(r: dict[str, Any]) -> bool:
        both = {**held.get(r["record_id"], {}), **r}
        return (
            both.get("retention") == "significant"
            or klass.get(str(both.get("seal_kid"))) == "significant"
            or float(both.get("delete_after") or 0) - float(both["captured_at"]) > 29 * DAY
            or len(r["sealed"]) != usual
        )

    truly = sum(1 for r in records if world.significant.get(r["record_id"]))
    told = sum(1 for r in records if world.significant.get(r["record_id"]) and says_significant(r))
    return [Row("server copy", f"significant check-ins it tells apart (of {truly} held)", told)]


def uploads_on_the_server(world: World) -> list[Row]:
    """What a copy of the server keeps of each upload: a count of its records, or a time finer
    than its day (the batch receipts, the kiosks' last upload)."""
    columns = {r[1] for r in server_rows(world.data, "PRAGMA table_info(batches)")}
    batches = server_rows(world.data, "SELECT received_at FROM batches")
    told = sum(1 for (at,) in batches if float(at) % DAY) + (
        len(batches) if columns & {"records", "newest_capture"} else 0
    )
    told += sum(
        1
        for (at,) in server_rows(
            world.data, "SELECT last_upload_at FROM kiosk_health WHERE last_upload_at IS NOT NULL"
        )
        if float(at) % DAY
    )
    return [
        Row("server copy", f"uploads whose count or time of day it keeps (of {len(batches)} stored)", told)
    ]


def server_copy_with_kiosk_keys(world: World, *, now: float) -> list[Row]:
    """A copy of the server taken at ``now`` (no purge ran: only what `serve` drops every
    minute is gone) and every kiosk's tag key: check-ins of days already over, of any pass."""
    from kiosk.core.keys import load_x25519_private
    from kiosk.core.seal import SUITE
    from kiosk.core.sealkeys import search_tag, tag_key_info

    world_keys = {k["id"]: load_x25519_private(k["dir"] / "tag.key") for k in world.kiosks}
    today = now - now % DAY
    day_keys: dict[tuple[str, float], bytes] = {}
    for kiosk_id, start, end, sealed in server_rows(
        world.data, "SELECT kiosk_id, valid_from, valid_to, sealed FROM tag_keys"
    ):
        if end <= today and kiosk_id in world_keys:  # a day already over
            key = SUITE.decrypt(bytes(sealed), world_keys[kiosk_id], info=tag_key_info(kiosk_id, start))
            day_keys[(kiosk_id, float(start))] = key
    tags = {search_tag(key, p) for key in day_keys.values() for p in world.pass_ids}
    past = server_rows(
        world.data, "SELECT tag FROM records WHERE captured_at < ? AND tag IS NOT NULL", [today]
    )
    found = sum(1 for (t,) in past if t in tags)
    return [
        Row(
            "server copy + every kiosk's tag key",
            f"check-ins of days already over, of any pass (of {len(past)})",
            found,
        )
    ]


def one_member(world: World) -> list[Row]:
    """Alice with the committee's keys folder and a database copy, without Bob."""
    from kiosk.core.keys import load_ed25519_private, load_x25519_private
    from kiosk.core.seal import open_sealed
    from sync.central.committee.audit import member_id
    from sync.central.committee.custody import CustodyError, unlock
    from sync.central.keyring import period_private_keys

    rows = server_rows(world.data, "SELECT record_id, sealed FROM records")
    candidates = []
    for path in world.keys.rglob("*"):
        try:
            candidates.append(load_x25519_private(path))
        except Exception:
            continue
    alice = load_ed25519_private(world.work / "alice" / "member.key")
    try:  # her share alone: were it to rebuild the wrap key, every period key would be hers
        candidates += period_private_keys(
            world.keys, unlock(world.keys, [alice], active={member_id(alice.public_key())})
        ).values()
    except CustodyError:
        pass
    opened = 0
    for rid, blob in rows:
        for key in candidates:
            try:
                open_sealed(bytes(blob), key, record_id=rid)
                opened += 1
                break
            except Exception:
                continue
    refused = subprocess.run(
        [str(BIN / "kiosk-central"), "open-records", "--data", "central", "--keys", "authority", "--case",
         "OB-PRIV-1", "--member-key", "alice/member.key"],
        cwd=world.work, capture_output=True, text=True,
    )  # fmt: skip
    opened += len(refused.stdout.splitlines())
    return [Row("one member", f"records opened by one member (of {len(rows)} held)", opened)]


def after_retirement(world: World, *, backup: Path, at: float) -> list[Row]:
    """Day 98: the keys are retired; a backup taken on the last day, the keys folder and even
    both members' keys open nothing; moved-aside kiosk databases are gone."""
    from kiosk.core.keys import load_ed25519_private
    from kiosk.store.sqlitedb import purge_moved_aside
    from sync.central.committee.audit import member_id
    from sync.central.committee.custody import unlock
    from sync.central.committee.reading import open_record
    from sync.central.keyring import period_private_keys, retire
    from sync.central.storage.sqlite_backend import SqliteStorage

    s = SqliteStorage.in_folder(world.data)
    try:
        retire(world.keys, now=at, holds=s.held_days())
    finally:
        s.close()
    members = [load_ed25519_private(world.work / n / "member.key") for n in ("alice", "bob")]
    keys = period_private_keys(
        world.keys, unlock(world.keys, members, active={member_id(m.public_key()) for m in members})
    )
    rows = server_rows(backup, "SELECT record_id, sealed, captured_at, seal_fallback FROM records")
    readable = 0
    for rid, blob, at_, fallback in rows:  # every key still held that may have sealed it
        row = {"record_id": rid, "sealed": bytes(blob), "captured_at": at_, "seal_fallback": fallback}
        readable += open_record(row, keys) is not None
    purge_moved_aside(world.kiosks[0]["dir"] / "k.db", now=at, after_days=90)  # `kiosk purge`
    left = len(list(world.kiosks[0]["dir"].glob("k.db.damaged-*")))
    return [
        Row("anyone after retirement", f"records a backup opens, even with 2 members' keys (of {len(rows)})",
            readable),
        Row("anyone after retirement", "damaged kiosk databases moved aside, left at day 98", left),
    ]  # fmt: skip


def network_observer(world: World, *, pad: bool = True) -> list[Row]:
    """Who sees the (TLS) traffic: uploads whose size gives their number of records. Sizes
    are told apart up to their bucket (the padding lands a few bytes under it, at random);
    an upload of n records gives its count when neither n - 1 records (the same upload less
    its last) nor n + 1 (one more like it) would fill the same bucket."""
    import base64
    import os

    from kiosk.core import protocol
    from kiosk.core.recordids import time_ordered_id

    def seen(size: int) -> int:  # what the observer tells apart (without padding: every byte)
        return protocol.bucket_size(size) if pad else size

    def bucket(rows: list[dict[str, Any]]) -> int:
        return seen(len(protocol.encode_batch(str(uuid.uuid4()), rows, pad=pad)))

    revealed = 0
    uploads = [(rows, observed) for rows, observed in world.uploads if rows]
    for rows, observed in uploads:
        last = rows[-1]
        more = {
            **last,
            "record_id": time_ordered_id(last["captured_at"] + 1),
            "seq": last["seq"] + 1,
            "sealed": base64.b64encode(os.urandom(len(base64.b64decode(last["sealed"])))).decode(),
            "tag": os.urandom(16).hex(),
        }
        neighbours = ([rows[:-1]] if len(rows) > 1 else []) + [rows + [more]]
        if not pad:
            observed = len(protocol.encode_batch(str(uuid.uuid4()), rows, pad=False))
        if all(bucket(n) != seen(observed) for n in neighbours):
            revealed += 1
    # A round with check-ins told from one without: by its size (every round uploads)
    empty = bucket([])
    active = [(rows, observed) for rows, observed in world.uploads if rows]
    told = sum(
        1
        for rows, observed in active
        if seen(observed if pad else len(protocol.encode_batch(str(uuid.uuid4()), rows, pad=False))) != empty
    )
    return [
        Row("network observer", f"uploads whose size gives their count (of {len(uploads)})", revealed),
        Row(
            "network observer",
            f"sync rounds it can tell had check-ins (of {len(world.uploads)} rounds)",
            told,
        ),
    ]


def run(
    work: Path, size: Size = Size(), *, keep: list[Any] | None = None
) -> tuple[list[Row], dict[str, Any]]:
    """Build the world, then ask each adversary. Returns (rows, facts about the world);
    ``keep``: a list the world is appended to (for a test's own checks)."""
    world = World(work, size)
    world.committee()
    world.register_kiosks()
    world.fetch_bundles()
    world.checkins()
    traced = world.trace()
    end = world.t0 + size.days * DAY
    backup = work / "backup"
    shutil.copytree(world.data, backup)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(world.t0))  # moved aside on the first day
    shutil.copy(world.kiosks[0]["dir"] / "k.db", world.kiosks[0]["dir"] / f"k.db.damaged-{stamp}")

    placed = server_rows(world.data, "SELECT kiosk_id, captured_at FROM records")
    held, venue_days = len(placed), len({(k, int(a // DAY)) for k, a in placed})
    facts = {
        "kiosks": size.kiosks,
        "passes": size.passes,
        "days": size.days,
        "check-ins": held,
        "significant": sum(world.significant.values()),
        "venue-days": venue_days,
        "uploads": len(world.uploads),
        "trace": next((line for line in traced.splitlines() if line.startswith("case ")), traced[:80]),
    }
    rows = server_copy(world)
    rows += times_in_clear(world)
    rows += significance_on_the_server(world)
    rows += uploads_on_the_server(world)
    rows += stolen_kiosk(world, now=end)
    rows += server_copy_with_kiosk_keys(world, now=end)
    rows += one_member(world)
    rows += network_observer(world)
    rows += after_retirement(world, backup=backup, at=world.t0 + 98 * DAY)
    if keep is not None:
        keep.append(world)
    return rows, facts


def table(rows: list[Row], facts: dict[str, Any]) -> str:
    out = [
        "world: " + ", ".join(f"{k} {v}" for k, v in facts.items() if k != "trace"),
        "  " + str(facts["trace"]),
    ]
    width = max(len(r.adversary) for r in rows)
    out.append(f"{'adversary':<{width}}  {'found':>5}  {'goal':>4}  what")
    for r in rows:
        out.append(
            f"{r.adversary:<{width}}  {r.found:>5}  {r.goal:>4}  {r.what}{'' if r.held else '  <- FAILS'}"
        )
    failed = sum(1 for r in rows if not r.held)
    out.append(f"{len(rows) - failed} of {len(rows)} at their goal" + (f"; {failed} NOT" if failed else ""))
    return "\n".join(out)
