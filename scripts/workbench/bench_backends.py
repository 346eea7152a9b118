"""The central server on PostgreSQL against its raw limits, side by side (`scripts/bench
--only-backends`, issue 34), at two table sizes so growth shows:

- ingest: the real HTTP upload path (kiosks' gzip JSON bodies, signed, through `serve
  --workers 2`) against a raw batched INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
  NOTHING and a per-batch binary COPY of the same number of rows into the same table, the
  three interleaved round by round; records/s and CPU a record (server and database
  together, from /proc; for the raw ways, this process and the database);
- polls: a kiosk polling its bundle (If-None-Match) from a process of its own, idle and
  while the kiosks upload: p99 against the idle p99;
- trace: the committee's `trace` of one pass with 5 visits over 14 days against the index
  floor (the same lookup for the 5 matching tags only), then once at national scale
  (155,000 venues by default).

Tables are filled by COPY (the benchmark's own loading, not the API), spread over the last 14
days. PostgreSQL is a throwaway server started here, as the tests do.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from workbench.bench_front import TICK, postmaster, tree

DAY = 86_400
BATCH = 500
BLOB = b"\x5a" * 208  # the size of a padded sealed record
COLUMNS = (
    "record_id, kiosk_id, seq, epoch, captured_at, clock_synced, sealed, batch_id, received_at, "
    "seal_fallback, tag"
)
TYPES = ("uuid", "text", "int8", "int8", "float8", "bool", "bytea", "text", "float8", "bool", "bytea")


def bench_backends(
    t,
    work: Path,
    keys_dir: Path,
    *,
    sizes: tuple[int, ...] = (1_000_000, 5_000_000),
    kiosks: int = 200,
    batches: int = 1,
    rounds: int = 3,
    trace_kiosks: int = 1000,
    national_venues: int = 155_000,
    national_rows: int = 10_000_000,
) -> None:
    from workbench.pgserver import PgServer, server_binaries

    if server_binaries() is None:
        t.add("backend figures skipped: no PostgreSQL server binaries (apt install postgresql)", "")
        return
    pg = PgServer().start()
    try:
        url = pg.fresh_database()
        world = Fleet(url, work, keys_dir, kiosks=kiosks, trace_kiosks=trace_kiosks)
        with world.server() as server:
            for size in sizes:
                world.fill_to(size)
                print(f"backends: {size:,} rows", flush=True)
                ingest_side_by_side(t, world, server, pg, size=size, batches=batches, rounds=rounds)
                trace_side_by_side(t, world, size=size)
        if national_venues:
            print(f"backends: a trace at {national_venues:,} venues", flush=True)
            nation = Fleet(
                pg.fresh_database(), work / "nation", keys_dir, kiosks=0, trace_kiosks=national_venues
            )
            nation.fill_to(national_rows)
            trace_side_by_side(t, nation, size=national_rows, venues=national_venues)
    finally:
        pg.stop()


class Fleet:
    """A PostgreSQL store with upload kiosks (real device keys), trace kiosks (their rows
    loaded by COPY over 14 days) and one pass's 5 visits among them, sealed for real."""

    def __init__(self, url: str, work: Path, keys_dir: Path, *, kiosks: int, trace_kiosks: int) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from kiosk.core.keys import init_authority_keys, raw_public
        from kiosk.core.sealkeys import Sealer
        from sync.central.keyring import public_periods, tag_keys
        from sync.central.manifests import publish
        from sync.central.storage.pg_backend import PgStorage
        from workbench.world import seeded_committee_keys

        self.url, self.work, self.rng = url, work, random.Random(34)
        work.mkdir(parents=True, exist_ok=True)
        self.now = time.time()
        self.start = self.now - 14 * DAY
        self.keys = work / "committee"
        init_authority_keys(self.keys)
        seeded_committee_keys(self.keys, now=self.start, ahead=16)
        self.tag_keys = tag_keys(self.keys)
        self.sealing = Sealer(fallback=None, periods=lambda: public_periods(self.keys))
        self.storage = PgStorage(url, max_size=12)
        publish(keys_dir, self.storage, now=self.now)  # bundles need a root-signed manifest
        self.keys_dir = keys_dir
        self.devices = [Ed25519PrivateKey.generate() for _ in range(kiosks)]
        self.kids = [
            self.storage.register_kiosk(venue=f"up-{i}", public_key=raw_public(d.public_key()), now=0)
            for i, d in enumerate(self.devices)
        ]
        self.trace_kids = self._many_kiosks(trace_kiosks)
        self.rows, self.next_seq = 0, {k: 1 for k in self.kids}
        self.infected = b"\x07" * 16
        self.visits: list[tuple[str, float, str]] = []  # kiosk, time, tag
        self.raw_kiosk = self.storage.register_kiosk(venue="raw", public_key=os.urandom(32), now=0)
        self.raw_seq = 1

    def _many_kiosks(self, n: int) -> list[str]:
        kids = [f"k-{self.rng.getrandbits(64):016x}" for _ in range(n)]
        with self.storage.pool.connection() as conn, conn.cursor() as cur:
            with cur.copy("COPY kiosks (kiosk_id, venue, public_key, registered_at) FROM STDIN") as cp:
                for i, kid in enumerate(kids):
                    cp.write_row((kid, f"venue-{i}", os.urandom(32), 0.0))
        return kids

    def server(self):
        from sync.central.keyring import server_keys_folder
        from workbench.localserver import LocalServer

        keys = server_keys_folder(self.keys_dir, self.work / "server-keys")
        return LocalServer(self.work / "data", keys, database=self.url, workers=2)

    def fill_to(self, size: int) -> None:
        """COPY rows at the trace kiosks, spread over the 14 days, up to ``size`` in the table;
        the pass's 5 visits go in with the first."""
        from kiosk.core.seal import seal
        from kiosk.core.sealkeys import search_tag, venue_tag_key

        todo = size - self.rows
        if todo <= 0 or not self.trace_kids:
            return
        t0 = time.perf_counter()
        rng, kids, span = self.rng, self.trace_kids, self.now - 3600 - self.start
        with self.storage.pool.connection() as conn, conn.cursor() as cur:
            with cur.copy(f"COPY records ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(TYPES)
                if not self.visits:
                    for kid in rng.sample(kids, 5):
                        at = self.start + 3600 + rng.random() * (span - 3600)
                        period = max(s for s in self.tag_keys if s <= at)
                        tag = search_tag(venue_tag_key(self.tag_keys[period][1], kid), self.infected)
                        rid = str(uuid.uuid4())
                        key, _ = self.sealing.key_for("normal", at)
                        sealed = seal(
                            {"pass_id": self.infected, "risk_level": 0, "decision": "admit",
                             "reason": "valid", "venue": "v", "at": at},
                            key,
                            record_id=rid,
                        )  # fmt: skip
                        bucket = at - at % 300
                        cp.write_row(
                            (
                                uuid.UUID(rid),
                                kid,
                                1,
                                1,
                                bucket,
                                True,
                                sealed,
                                "b",
                                at,
                                False,
                                bytes.fromhex(tag),
                            ),
                        )
                        self.visits.append((kid, at, tag))
                        todo -= 1
                rand = rng.getrandbits
                for i in range(todo):
                    at = self.start + rng.random() * span
                    cp.write_row(
                        (
                            uuid.UUID(int=rand(128)),
                            kids[i % len(kids)],
                            self.rows + i + 2,
                            2,
                            at - at % 300,
                            True,
                            BLOB,
                            "b",
                            at,
                            False,
                            rand(128).to_bytes(16, "big"),
                        )
                    )
            self.rows = size
        with self.storage.pool.connection() as conn:
            conn.execute("ANALYZE records")
        print(f"  filled to {size:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)

    # -- what kiosks send, and the same rows for the raw ways -----------------------------------
    def bodies(self, batches: int) -> list[list[tuple[int, bytes]]]:
        """Each upload kiosk's gzip bodies (as the uploader makes them: padded, random ids)."""
        from kiosk.core import protocol

        now, out = time.time(), []
        for kid in self.kids:
            mine = []
            for _ in range(batches):
                first = self.next_seq[kid]
                self.next_seq[kid] += BATCH
                recs = [
                    {
                        "record_id": str(uuid.uuid4()),
                        "seq": first + j,
                        "epoch": 1,
                        "captured_at": now - 60,
                        "clock_synced": True,
                        "sealed": BLOB_B64,
                        "seal_fallback": False,
                        "tag": os.urandom(16).hex(),
                    }
                    for j in range(BATCH)
                ]
                mine.append((len(recs), protocol.encode_batch(str(uuid.uuid4()), recs)))
            out.append(mine)
        return out

    def raw_batches(self, n: int) -> list[list[tuple]]:
        now, out = time.time(), []
        for i in range(0, n, BATCH):
            out.append(
                [
                    (
                        str(uuid.uuid4()),
                        self.raw_seq + i + j,
                        1,
                        now - 60 - (now % 300),
                        BLOB,
                        os.urandom(16).hex(),
                    )
                    for j in range(min(BATCH, n - i))
                ]
            )
        self.raw_seq += n
        return out


BLOB_B64 = __import__("base64").b64encode(BLOB).decode()


def cpu_s(pids: list[int]) -> float:
    """CPU seconds of these processes and of their children already gone (a connection's
    backend that ended counts in the postmaster's reaped time)."""
    total = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue
    return total / TICK


def _upload(server_url: str, fleet: Fleet, bodies) -> float:
    import requests

    from kiosk.core import protocol

    def kiosk(i: int) -> None:
        # The kiosks are elsewhere in the field: here their threads give the server's machine
        # way (niced), so what is measured is the server, not 200 clients on its cores.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        except OSError:
            pass
        s = requests.Session()
        for _, body in bodies[i]:
            h = protocol.sign_request(
                fleet.devices[i], kiosk_id=fleet.kids[i], method="POST", path=protocol.UPLOAD_PATH,
                timestamp=int(time.time()), body=body,
            )  # fmt: skip
            r = s.post(
                server_url + protocol.UPLOAD_PATH, data=body, timeout=300,
                headers={**h, "Content-Encoding": "gzip"},
            )  # fmt: skip
            assert r.status_code == 200, r.text[:200]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(len(bodies))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


def _raw(url: str, kiosk_id: str, batches: list[list[tuple]], how: str, parallel: int) -> float:
    import psycopg

    share = [batches[i::parallel] for i in range(parallel)]

    def run(mine: list[list[tuple]]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for rows in mine:
                if how == "COPY":
                    with conn.transaction(), conn.cursor() as cur:
                        with cur.copy(f"COPY records ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                            cp.set_types(TYPES)
                            for rid, seq, epoch, at, blob, tag in rows:
                                cp.write_row(
                                    (
                                        uuid.UUID(rid),
                                        kiosk_id,
                                        seq,
                                        epoch,
                                        at,
                                        True,
                                        blob,
                                        "b",
                                        at,
                                        False,
                                        bytes.fromhex(tag),
                                    )
                                )
                else:
                    conn.execute(
                        f"INSERT INTO records ({COLUMNS}) SELECT u.r, %s, u.s, u.e, u.c, true, u.b, 'b', "
                        "u.c, false, u.t FROM unnest(%s::uuid[], %s::int8[], %s::int8[], %s::float8[], "
                        "%s::bytea[], %s::bytea[]) AS u(r, s, e, c, b, t) ON CONFLICT DO NOTHING",
                        [kiosk_id, *map(list, zip(*rows, strict=True))],
                    )

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(m,)) for m in share]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


def _polls(server_url: str, fleet: Fleet, during=None) -> tuple[list[float], Any]:
    """Bundle-poll latencies from a process of its own, while ``during()`` runs (else 3 s),
    and what ``during()`` returned."""
    from workbench.bench_central import _poll_bundle

    ctx = multiprocessing.get_context("fork")
    stop, back = ctx.Event(), ctx.Queue()
    p = ctx.Process(
        target=_poll_bundle,
        args=(server_url, fleet.kids[0], fleet.devices[0].private_bytes_raw(), stop, back),
    )
    p.start()
    time.sleep(0.5)
    out = during() if during else time.sleep(3)
    stop.set()
    polls = back.get(timeout=60)
    p.join()
    return polls, out


def p99(xs: list[float]) -> float:
    return sorted(xs)[int(0.99 * (len(xs) - 1))] if xs else float("nan")


def ingest_side_by_side(t, fleet: Fleet, server, pg, *, size: int, batches: int, rounds: int) -> None:
    """HTTP, INSERT and COPY interleaved ``rounds`` times; medians side by side."""
    figures: dict[str, list[tuple[float, float]]] = {"HTTP": [], "INSERT": [], "COPY": []}
    idle: list[float] = []
    busy: list[float] = []
    split: list[float] = []  # the server's own part of the HTTP path's CPU
    for r in range(rounds):
        order = ["HTTP", "INSERT", "COPY"]
        order = order[r % 3 :] + order[: r % 3]
        for how in order:
            n = len(fleet.kids) * batches * BATCH
            if how == "HTTP":
                bodies = fleet.bodies(batches)
                s0, d0 = cpu_s(tree(server.proc.pid)), cpu_s(tree(postmaster(pg)))
                polls, took = _polls(server.url, fleet, lambda b=bodies: _upload(server.url, fleet, b))
                busy += polls
                server_cpu = cpu_s(tree(server.proc.pid)) - s0
                cpu = server_cpu + cpu_s(tree(postmaster(pg))) - d0
                split.append(server_cpu / n * 1e6)
            else:
                work = fleet.raw_batches(n)
                c0, p0 = cpu_s(tree(postmaster(pg))), time.process_time()
                took = _raw(fleet.url, fleet.raw_kiosk, work, how, parallel=4)
                cpu = cpu_s(tree(postmaster(pg))) - c0 + time.process_time() - p0
            figures[how].append((n / took, cpu / n * 1e6))
        idle += _polls(server.url, fleet)[0]
    med = {
        k: (statistics.median(x for x, _ in v), statistics.median(c for _, c in v))
        for k, v in figures.items()
    }
    (http, http_cpu), (ins, ins_cpu), (cp, cp_cpu) = med["HTTP"], med["INSERT"], med["COPY"]
    label = f"at {size:,} rows"
    t.add(
        f"ingest, HTTP upload path ({len(fleet.kids)} kiosks, 2 workers), {label}",
        f"{http:,.0f} records/s",
        f"{http / ins:.2f}x raw INSERT ({ins:,.0f}/s; goal >= 1.0x), {http / cp:.2f}x COPY "
        f"({cp:,.0f}/s; goal >= 0.5x); median of {rounds} interleaved rounds",
    )
    t.add(
        f"ingest CPU a record (server + database), {label}",
        f"{http_cpu:.0f} us",
        f"raw INSERT {ins_cpu:.0f} us (goal: at most it), COPY {cp_cpu:.0f} us; the server's "
        f"own part {statistics.median(split):.0f} us",
    )
    t.add(
        f"bundle poll p99 while {len(fleet.kids)} kiosks upload, {label}",
        f"{p99(busy) * 1000:.0f} ms",
        f"idle p99 {p99(idle) * 1000:.0f} ms: {p99(busy) / p99(idle):.1f}x (goal <= 2x and < 100 ms); "
        f"p50 {statistics.median(busy) * 1000:.0f} ms",
    )


def trace_side_by_side(t, fleet: Fleet, *, size: int, venues: int | None = None) -> None:
    """One trace through the committee's code (two members, a case, the real keys) against
    the index floor: the same lookup for the 5 matching tags only."""
    from sync.central.committee import members as committee
    from sync.central.committee.trace import trace
    from sync.central.keyring import committee_keys
    from workbench.world import members, unlocked

    storage = fleet.storage
    a, b = members()
    case = f"BENCH-{size}"
    if committee.state_of(storage).count == 0:
        committee.found_committee(storage, [("a", a), ("b", b)], now=fleet.now)
    committee.open_case(storage, key=b, case_id=case, reason="the benchmark's trace", from_ts=fleet.start,
                        to_ts=fleet.now, now=fleet.now)  # fmt: skip
    committee.approve_case(storage, key=a, case_id=case, now=fleet.now)
    keys = committee_keys(fleet.keys, unlocked(fleet.keys))
    t0 = time.perf_counter()
    result = trace(storage, keys, fleet.tag_keys, member_key=a, second_key=b, case_id=case,
                   pass_id=fleet.infected, now=fleet.now)  # fmt: skip
    took = time.perf_counter() - t0
    floor_tags: dict[tuple[float, float], list[str]] = {}
    for _, at, tag in fleet.visits:
        period = max(s for s in fleet.tag_keys if s <= at)
        floor_tags.setdefault((period, fleet.tag_keys[period][0]), []).append(tag)
    t0 = time.perf_counter()
    floor = storage.records_by_tags(floor_tags, fleet.start, fleet.now)
    floor_s = time.perf_counter() - t0
    days = sum(1 for s, (e, _) in fleet.tag_keys.items() if s < fleet.now and e > fleet.start)
    n_kiosks = len(fleet.trace_kids) + len(fleet.kids) + 1
    where = f"{venues:,} venues" if venues else f"{size:,} rows"
    t.add(
        f"trace of one pass, 5 visits, 14 days, at {where}",
        f"{took:.2f} s",
        f"{len(result.visits)} visits found, {result.decrypted} records opened; "
        f"{days * n_kiosks:,} tags looked up ({n_kiosks:,} kiosks x {days} days); index floor "
        f"(the 5 matching tags) {floor_s * 1000:.1f} ms, {len(floor)} rows; goal "
        + ("< 10 s" if venues else "<= 1 s at 1M rows"),
    )


def sqlite_side_by_side(t, work: Path, keys_dir: Path, *, kiosks: int = 200, rounds: int = 3) -> None:
    """The pilot's backend: the HTTP upload path on SQLite (`serve --workers 1`) against the
    same rows by its own raw ``executemany`` in 500-row transactions, interleaved."""
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.keys import raw_public
    from sync.central.keyring import server_keys_folder
    from sync.central.manifests import publish
    from sync.central.storage.sqlite_backend import SqliteStorage
    from workbench.localserver import LocalServer

    data = work / "sqlite-side-by-side"
    admin = SqliteStorage.in_folder(data)
    fleet = Fleet.__new__(Fleet)  # the upload kiosks only: no committee, no trace rows
    fleet.devices = [Ed25519PrivateKey.generate() for _ in range(kiosks)]
    fleet.kids = [
        admin.register_kiosk(venue=f"up-{i}", public_key=raw_public(d.public_key()), now=0)
        for i, d in enumerate(fleet.devices)
    ]
    fleet.next_seq = {k: 1 for k in fleet.kids}
    raw_kiosk = admin.register_kiosk(venue="raw", public_key=os.urandom(32), now=0)
    publish(keys_dir, admin, now=time.time())
    admin.close()
    fleet.raw_seq = 1
    figures: dict[str, list[float]] = {"HTTP": [], "executemany": []}
    keys = server_keys_folder(keys_dir, work / "sqlite-server-keys")
    with LocalServer(data, keys) as server:
        for r in range(rounds):
            for how in ["HTTP", "executemany"] if r % 2 == 0 else ["executemany", "HTTP"]:
                n = kiosks * BATCH
                if how == "HTTP":
                    took = _upload(server.url, fleet, fleet.bodies(1))
                else:
                    batches = Fleet.raw_batches(fleet, n)
                    conn = sqlite3.connect(data / "central.db", timeout=60)
                    t0 = time.perf_counter()
                    for rows in batches:
                        with conn:
                            conn.executemany(
                                f"INSERT OR IGNORE INTO records ({COLUMNS}) "
                                "VALUES (?, ?, ?, ?, ?, 1, ?, 'b', ?, 0, ?)",
                                [
                                    (rid, raw_kiosk, seq, epoch, at, blob, at, tag)
                                    for rid, seq, epoch, at, blob, tag in rows
                                ],
                            )
                    took = time.perf_counter() - t0
                    conn.close()
                figures[how].append(n / took)
    http, raw = statistics.median(figures["HTTP"]), statistics.median(figures["executemany"])
    t.add(
        f"ingest on SQLite, HTTP upload path ({kiosks} kiosks, 1 worker)",
        f"{http:,.0f} records/s",
        f"{http / raw:.2f}x its raw executemany ({raw:,.0f}/s; goal >= 1.0x); median of {rounds} rounds",
    )
