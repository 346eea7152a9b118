"""The central server's storage on PostgreSQL (psycopg 3, a connection pool), behind the
interface of :mod:`sync.central.storage.interface`: a national deployment runs here, a pilot
on SQLite. No global lock: each call takes a pooled connection, and what must be
atomic is one transaction (a batch's ingest is one INSERT ... ON CONFLICT DO NOTHING
RETURNING; the audit log's end is taken under an advisory lock).

Migrations are numbered like SQLite's, kept beside them (``MIGRATIONS`` here), and applied
under an advisory lock so that many workers starting at once migrate once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from kiosk.core.auditheads import head_document
from kiosk.core.faults import UsageError
from kiosk.core.retention import HOLD_MAX_S, TOMBSTONE_S, UNTAGGED_DAYS
from kiosk.core.timing import DAY, RECORD_ID_SKEW_S, TIME_BUCKET_S, time_bucket
from sync.central.storage import migrations
from sync.central.storage.interface import EntryBuilder, RecordIdConflict, ServerRetention
from sync.central.storage.rows import (
    AuditRow,
    Enrolled,
    EnrolmentToken,
    IngestResult,
    PurgeResult,
    RecordRow,
    TagKeyDoc,
    TagKeyRow,
    record_row,
)
from sync.central.storage.sqlqueries import (
    FLEET_HISTORY_DAYS,
    SEEN_UPSERT,
    SqlQueries,
    seen_row,
    tag_keys_json,
)


def _scalar(cursor: Any) -> Any:
    """The first column of the one row a statement answers (an aggregate, a meta value)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the database answered no row where one is always expected")
    return row[0]


MIGRATION_LOCK = 0x6B696F736B  # pg_advisory_xact_lock keys ("kiosk")
log = logging.getLogger("kiosk-central")
AUDIT_LOCK = 0x6175646974  # ("audit"; the same number in kiosk_audit_append)
MANIFEST_LOCK = 0x6D616E6966  # ("manif")
PURGE_LOCK = 0x7075726765  # ("purge"): one purge at a time, across processes and machines

MIGRATIONS = migrations.load("postgresql")  # sync/central/storage/migrations/postgresql/NNNN.sql

# A batch's ids looked up one at a time (a nested loop over them), each by the record-id
# index of its capture days' partitions, whatever a fresh day's statistics say (a day
# analysed while nearly empty makes a scan of it look cheap): per id, any plan but the id's
# own index costs a whole day's scan, times the batch. The ingest transaction also turns
# hash and merge joins and sequential scans off (PROBE_PLAN), so no other plan is left.
DUPLICATE_PROBE = (
    "SELECT r.record_id::text, r.kiosk_id FROM unnest(string_to_array(%s, ',')::uuid[]) AS u(id) "
    "CROSS JOIN LATERAL "
    "(SELECT record_id, kiosk_id FROM records WHERE record_id = u.id AND captured_at >= %s "
    "AND captured_at <= %s LIMIT 1) r"
)
PROBE_PLAN = (  # for this transaction only (set_config(..., true) is SET LOCAL)
    "set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), "
    "set_config('enable_mergejoin', 'off', true)"
)

# A trace's lookups: by the tag index, whatever a day's statistics say (a few thousand tags
# against a day's rows can look to the planner like a reason to read the whole day).
TAG_PLAN = "set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)"
TAG_CONNECTIONS = 4  # days looked up at once
# What a binary COPY of new records sends, column by column (_copy_rows).
COPY_COLUMNS = (
    "record_id, kiosk_id, seq, epoch, captured_at, clock_synced, sealed, batch_id, received_at, "
    "seal_fallback, tag"
)
COPY_TYPES = ("uuid", "text", "int8", "int8", "float8", "bool", "bytea", "text", "float8", "bool", "bytea")
RECORD_COLUMNS = ("record_id", "kiosk_id", "seq", "captured_at", "clock_synced", "seal_fallback", "sealed")
_SELECT_RECORDS = (
    "SELECT record_id::text, kiosk_id, seq, captured_at, clock_synced, seal_fallback, sealed FROM records"
)


def settings(retention: ServerRetention) -> dict[str, float]:
    """The numbers the database's purge functions need, from the program's one definition
    (kiosk/core/retention.py) and the server's retention."""
    return {
        "record_max_s": retention.record_max_s,
        "hold_max_s": float(HOLD_MAX_S),
        "untagged_days": float(UNTAGGED_DAYS),
        "tombstone_s": float(TOMBSTONE_S),
    }


def write_settings(conn, retention: ServerRetention) -> None:
    """The owner writes :func:`settings` (each start: a changed rule reaches the SQL at once);
    a role that may not (ingest, purge, committee) leaves them as the owner wrote them."""
    if not _scalar(conn.execute("SELECT has_table_privilege(current_user, 'settings', 'INSERT, UPDATE')")):
        return
    with conn.transaction():
        for key, value in settings(retention).items():
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                "DO UPDATE SET value = excluded.value WHERE settings.value <> excluded.value",
                [key, value],
            )


def migrate(conn, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the schema up to date (the owner's job); a role that may only read the version
    (ingest, purge, committee) finds it current and writes nothing."""
    if _scalar(conn.execute("SELECT to_regclass('schema_version')")) is not None:
        (current,) = conn.execute("SELECT version FROM schema_version").fetchone()
        if current == len(migrations):
            return current
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        current = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        if current > len(migrations):
            raise RuntimeError(
                f"database schema version {current} is newer than this program "
                f"({len(migrations)}): refusing to run on it"
            )
        for number, sql in enumerate(migrations[current:], start=current + 1):
            conn.execute(sql)
            conn.execute("UPDATE schema_version SET version = %s", [number])
    return len(migrations)


class PgStorage(SqlQueries):
    P = "%s"

    def __init__(
        self,
        url: str,
        *,
        retention: ServerRetention = ServerRetention(),
        min_size: int = 1,
        max_size: int = 8,
        read_url: str | None = None,
        readonly: bool = False,
    ):
        """``readonly``: for the commands that only look (status, report, reads, case list,
        audit): every session is read-only (PostgreSQL refuses any write), nothing is migrated
        and no partition is made."""
        import psycopg
        from psycopg_pool import ConnectionPool

        self.retention = retention
        self.url = url
        session: dict[str, object] = {"autocommit": True}
        if readonly:
            session["options"] = "-c default_transaction_read_only=on"
        try:  # one plain connection first: a wrong URL fails fast, in one line
            with psycopg.connect(url, connect_timeout=10, **session) as conn:  # type: ignore[arg-type]
                if readonly:
                    have = _scalar(conn.execute("SELECT to_regclass('schema_version')")) and _scalar(
                        conn.execute("SELECT version FROM schema_version")
                    )
                    if have != len(MIGRATIONS):
                        raise UsageError(
                            f"the store's schema ({redacted(url)}) is version {have or 0}, this program's "
                            f"{len(MIGRATIONS)}: a command that writes (serve, purge) brings it up to date"
                        )
                else:
                    migrate(conn)
                    write_settings(conn, retention)
        except psycopg.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"cannot use the PostgreSQL database ({redacted(url)}): {first}") from None
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=True, kwargs=session, timeout=30
        )
        self.read_pool = None
        if read_url:  # a streaming replica for the committee's reads (records, aggregates)
            try:
                with psycopg.connect(read_url, autocommit=True, connect_timeout=10) as conn:
                    if not _scalar(conn.execute("SELECT pg_is_in_recovery()")):
                        log.warning(
                            "--read-database %s is not a replica (reads go there anyway)", redacted(read_url)
                        )
            except psycopg.Error as e:
                self.pool.close()
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UsageError(f"cannot use the read database ({redacted(read_url)}): {first}") from None
            self.read_pool = ConnectionPool(
                read_url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": True}, timeout=30
            )
        if readonly:
            return
        try:  # the owner makes the day partitions; roles may not
            import time

            self.ensure_partitions(now=time.time())
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
            pass  # a role, or a replica (read-only): the owner's server makes them

    def close(self) -> None:
        self.pool.close()
        if self.read_pool is not None:
            self.read_pool.close()

    def _q(self, sql: str, params=()):
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _qr(self, sql: str, params=()):
        with (self.read_pool or self.pool).connection() as conn:
            return conn.execute(sql, params).fetchall()

    # -- kiosks ------------------------------------------------------------------------------
    def register_kiosk(
        self, *, venue: str, public_key: bytes, now: float, tag_public: bytes | None = None
    ) -> str:
        kiosk_id = "k-" + secrets.token_hex(8)
        with self.pool.connection() as conn, conn.transaction():
            held = conn.execute(
                "SELECT kiosk_id FROM kiosks WHERE public_key = %s AND revoked_at IS NULL FOR UPDATE",
                [public_key],
            ).fetchone()
            if held:
                raise UsageError(
                    f"this public key is already registered to active kiosk {held[0]} "
                    f"(revoke it first: register-kiosk --revoke {held[0]})"
                )
            conn.execute(
                "INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at, tag_public) "
                "VALUES (%s, %s, %s, %s, %s)",
                [kiosk_id, venue, public_key, now, tag_public],
            )
        return kiosk_id

    def drop_spent_tag_keys(self, *, now: float) -> int:
        """By the database's clock, through kiosk_drop_spent_tag_keys (the ingest role may)."""
        with self.pool.connection() as conn:
            return int(_scalar(conn.execute("SELECT kiosk_drop_spent_tag_keys()")) or 0)

    def put_enrolment_token(self, token: EnrolmentToken, tag_keys: Sequence[TagKeyRow]) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO enrolment_tokens (token, kiosk_id, venue, issued_at, expires_at, doc, "
                "tag_docs) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [*token[:6], tag_keys_json(tag_keys)],
            )

    def enrol_kiosk(self, token: str, *, public_key: bytes, tag_public: bytes, now: float) -> Enrolled:
        """Through kiosk_enrol (the ingest role may register a kiosk only by a token the
        committee made), by the database's own clock."""
        with self.pool.connection() as conn:
            outcome = str(
                _scalar(conn.execute("SELECT kiosk_enrol(%s, %s, %s)", [token, public_key, tag_public]))
            )
        what, _, kiosk_id = outcome.partition(":")
        return Enrolled(what, kiosk_id)

    def put_update(
        self, roots: Sequence[tuple[str, str]], targets: str, files: dict[str, bytes], *, now: float
    ) -> None:
        with self.pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO update_metadata (name, doc, published_at) VALUES (%s, %s, %s)",
                    [(name, doc, now) for name, doc in roots],
                )
            conn.execute(
                "INSERT INTO update_metadata (name, doc, published_at) VALUES ('targets.json', %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, published_at = excluded.published_at",
                [targets, now],
            )
            conn.execute("DELETE FROM update_targets")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO update_targets (path, data, added_at) VALUES (%s, %s, %s)",
                    [(path, data, now) for path, data in files.items()],
                )

    def revoke_kiosk(self, kiosk_id: str, *, now: float) -> bool:
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE kiosks SET revoked_at = %s WHERE kiosk_id = %s AND revoked_at IS NULL",
                [now, kiosk_id],
            )
            return cur.rowcount == 1

    # -- records ----------------------------------------------------------------------------
    def ingest(self, kiosk_id: str, batch_id: str, records: list[dict], *, now: float) -> IngestResult:
        """Idempotent per (kiosk, record id), in one transaction: another kiosk's record id is
        refused (RecordIdConflict), a known one of this kiosk is a duplicate."""
        import psycopg

        ids = list(dict.fromkeys(r["record_id"] for r in records))
        first: dict[str, dict[str, Any]] = {}
        for r in records:  # in clear: the 5-minute bucket of its time only (issue 33)
            if r["record_id"] not in first:
                at = float(r["captured_at"])
                first[r["record_id"]] = (
                    r if at % TIME_BUCKET_S == 0 else {**r, "captured_at": time_bucket(at)}
                )
        rows = list(first.values())
        # A record is placed by its capture bucket: its id is looked up in the partitions of
        # those days only (each partition's index: no index spans partitions). (A time-ordered
        # id of an older kiosk was checked against its time by the server before.)
        with self.pool.connection() as conn, conn.transaction():
            # One kiosk's batches one at a time (its first two of an epoch too, when no summary
            # row exists yet to lock): else each counts the other's numbers as missing.
            # ... and the probe below by the record-id index only: one round trip for both.
            conn.execute(f"SELECT pg_advisory_xact_lock(hashtextextended(%s, 7)), {PROBE_PLAN}", [kiosk_id])
            held = []
            if rows:
                low = min(float(r["captured_at"]) for r in rows) - RECORD_ID_SKEW_S - TIME_BUCKET_S
                high = max(float(r["captured_at"]) for r in rows) + RECORD_ID_SKEW_S + TIME_BUCKET_S
                held += conn.execute(DUPLICATE_PROBE, [",".join(first), low, high]).fetchall()
            foreign = sorted({rid for rid, owner in held if owner != kiosk_id})
            if foreign:
                raise RecordIdConflict(foreign)
            known = {rid for rid, _ in held}  # (the key includes the partition columns)
            rows = [r for r in rows if r["record_id"] not in known]
            # The aggregate `status` reads; locked, so one kiosk's batches count one at a time.
            highs: dict[int, int] = dict(
                conn.execute(
                    "SELECT epoch, high FROM sequence_summary WHERE kiosk_id = %s FOR UPDATE", [kiosk_id]
                ).fetchall()
            )
            probe = self._to_probe(rows, highs)
            reused = (
                {
                    tuple(x)
                    for x in conn.execute(
                        "SELECT DISTINCT r.epoch, r.seq FROM records r "
                        "JOIN unnest(%s::bigint[], %s::bigint[]) "
                        "AS u(epoch, seq) ON r.epoch = u.epoch AND r.seq = u.seq WHERE r.kiosk_id = %s",
                        [[e for e, _ in probe], [q for _, q in probe], kiosk_id],
                    ).fetchall()
                }
                if probe
                else set()
            )
            # New rows straight into the table by binary COPY (each value sent as the bytes the
            # database stores, no SQL to parse or plan a row): what the probe above did not
            # find is new, the kiosk's lock keeping its batches one at a time. Should another
            # kiosk's id arrive between the probe and here, the duplicate rule takes over.
            accepted = [r["record_id"] for r in rows]
            try:
                with conn.transaction(), conn.cursor() as cur:
                    self._copy_rows(cur, kiosk_id, batch_id, now, rows)
                inserted = rows
            except psycopg.errors.UniqueViolation:
                inserted = self._insert_new(conn, kiosk_id, batch_id, now, rows)
                accepted = [r["record_id"] for r in inserted]
                late = sorted({r["record_id"] for r in rows} - set(accepted))
                if late:  # stored meanwhile: by this kiosk (a duplicate) or another (refused)
                    owners = conn.execute(DUPLICATE_PROBE, [",".join(late), low, high]).fetchall()
                    if any(owner != kiosk_id for _, owner in owners):
                        raise RecordIdConflict(sorted(rid for rid, owner in owners if owner != kiosk_id))

            def execute(sql, params):
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []

            self._keep_sequences(execute, kiosk_id, inserted, highs, reused)
            if inserted:  # a receipt for what was new (its day: no count, no time of day)
                conn.execute(
                    "INSERT INTO batches (batch_id, kiosk_id, received_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (batch_id) DO NOTHING",
                    [batch_id, kiosk_id, now - now % DAY],
                )
        acc = set(accepted)
        order = {rid: i for i, rid in enumerate(ids)}
        return IngestResult(
            accepted=sorted(acc, key=lambda rid: order[rid]), duplicates=[i for i in ids if i not in acc]
        )

    @staticmethod
    def _values(kiosk_id: str, batch_id: str, now: float, rows: list[dict]) -> list[tuple]:
        """Each new record's row as the table's columns (COPY_COLUMNS), in the types stored."""
        return [
            (
                uuid.UUID(r["record_id"]),
                kiosk_id,
                int(r["seq"]),
                int(r.get("epoch", 0)),
                float(r["captured_at"]),
                bool(r["clock_synced"]),
                r["sealed"],
                batch_id,
                now,
                bool(r.get("seal_fallback", False)),
                bytes.fromhex(r["tag"]) if r.get("tag") else None,
            )
            for r in rows
        ]

    @classmethod
    def _copy_rows(cls, cur, kiosk_id: str, batch_id: str, now: float, rows: list[dict]) -> None:
        with cur.copy(f"COPY records ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(COPY_TYPES)
            for values in cls._values(kiosk_id, batch_id, now, rows):
                copy.write_row(values)

    @classmethod
    def _insert_new(cls, conn, kiosk_id: str, batch_id: str, now: float, rows: list[dict]) -> list[dict]:
        """The duplicate rule, row by row in the database: what is new goes in, and is returned."""
        columns = [list(c) for c in zip(*cls._values(kiosk_id, batch_id, now, rows), strict=True)]
        got = conn.execute(
            f"INSERT INTO records ({COPY_COLUMNS}) SELECT * FROM unnest(%s::uuid[], %s::text[], "
            "%s::bigint[], %s::bigint[], %s::float8[], %s::bool[], %s::bytea[], %s::text[], "
            "%s::float8[], %s::bool[], %s::bytea[]) ON CONFLICT DO NOTHING RETURNING record_id::text",
            columns,
        ).fetchall()
        new = {g[0] for g in got}
        return [r for r in rows if r["record_id"] in new]

    def record_ids(self, kiosk_id: str | None = None) -> list[str]:
        if kiosk_id:
            return [
                r[0]
                for r in self._q(
                    "SELECT record_id::text FROM records WHERE kiosk_id = %s ORDER BY epoch, seq", [kiosk_id]
                )
            ]
        return [r[0] for r in self._q("SELECT record_id::text FROM records ORDER BY kiosk_id, epoch, seq")]

    def purge(self, *, now: float, chunk: int = 5000) -> PurgeResult:
        """One purge at a time across processes and machines (an advisory lock: a second one
        finds it held and stops). The owner deletes with ``now`` as given (and drops whole
        days); the purge role only through kiosk_purge_records and kiosk_purge_rest, which
        go by the database's own clock."""
        with self.pool.connection() as lock:
            if not _scalar(lock.execute("SELECT pg_try_advisory_lock(%s)", [PURGE_LOCK])):
                log.info("purge: another purge is running; this one leaves it the work")
                return PurgeResult()
            try:
                if _scalar(lock.execute("SELECT has_table_privilege('records', 'DELETE')")):
                    return self._purge_as_owner(now=now, chunk=chunk)
                return self._purge_by_functions(chunk=chunk)
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", [PURGE_LOCK])

    def _purge_by_functions(self, *, chunk: int) -> PurgeResult:
        records = 0
        while True:
            with self.pool.connection() as conn:
                gone = int(_scalar(conn.execute("SELECT kiosk_purge_records(%s)", [chunk])) or 0)
            records += gone
            if gone < chunk:
                break
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT batches, risk FROM kiosk_purge_rest(%s)", [self.retention.normal_days]
            ).fetchone()
        batches, risk = row if row else (0, 0)
        with self.pool.connection() as conn:
            conn.execute("SELECT kiosk_purge_enrolment()")
        return PurgeResult(records, int(batches), int(risk))

    def _purge_as_owner(self, *, now: float, chunk: int) -> PurgeResult:
        keep, params = self._hold_clause(now)
        records = self._drop_due_days(now)
        while True:  # what is left: held days, the default partition
            with self.pool.connection() as conn:
                n = conn.execute(
                    "DELETE FROM records WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM "
                    f"records WHERE captured_at <= %s{keep} LIMIT %s)",
                    [now - self.retention.record_max_s, *params, chunk],
                ).rowcount
            records += n
            if n < chunk:
                break
        with self.pool.connection() as conn, conn.transaction():
            batches = conn.execute(  # receipts keep no time past the shortest retention
                "DELETE FROM batches WHERE received_at <= %s", [now - self.retention.normal_days * DAY]
            ).rowcount
            conn.execute("DELETE FROM held WHERE captured_at <= %s", [now - HOLD_MAX_S])
            conn.execute(
                "DELETE FROM untagged_days WHERE day < %s",
                [int(now // DAY) - UNTAGGED_DAYS],
            )
            gone = conn.execute(
                "DELETE FROM risk_statements WHERE expires_at <= %s RETURNING changed",
                [now - TOMBSTONE_S],
            ).fetchall()
            if gone:  # kiosks older than these get the whole list
                conn.execute(
                    "UPDATE meta SET value = GREATEST(value::bigint, %s)::text WHERE key = 'delta_floor'",
                    [max(g[0] for g in gone)],
                )
            risk = len(gone)
            conn.execute("DELETE FROM tag_keys WHERE valid_to <= %s", [now])
            conn.execute(  # a token past its expiry keeps no sealed key; its row goes later
                "UPDATE enrolment_tokens SET tag_docs = '[]' WHERE expires_at <= %s AND tag_docs <> '[]'",
                [now],
            )
            conn.execute(
                "DELETE FROM enrolment_tokens WHERE expires_at <= %s",
                [now - self.retention.significant_days * DAY],
            )
            conn.execute("DELETE FROM exposure_lists WHERE expires_at <= %s", [now])
            conn.execute(
                "UPDATE kiosk_health SET last_upload_at = NULL WHERE last_upload_at <= %s",
                [now - self.retention.normal_days * DAY],
            )
        return PurgeResult(records, batches, risk)

    # -- partitions by day ---------------------------------------------------------------------
    def ensure_partitions(self, *, now: float, ahead_days: int = 7) -> int:
        """Day partitions from the longest retention back to ``ahead_days`` ahead (by capture
        day only: the server knows no record's class); returns how many were made. The server
        runs it at start and hourly."""
        start = int(now // DAY) - self.retention.significant_days - 1
        made = 0
        with self.pool.connection() as conn:
            have = {
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'"
                )
            }
            for day in range(start, int(now // DAY) + ahead_days + 1):
                name = _day_partition(day)
                if name in have:
                    continue
                try:
                    with conn.transaction():
                        conn.execute(
                            f"CREATE TABLE {name} PARTITION OF records "
                            f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
                        )
                    made += 1
                except Exception as e:  # rows for that day sit in the default partition,
                    if "would be violated" not in str(e) and "already exists" not in str(e):
                        raise  # or another worker made it first: fine either way
        return made

    def _drop_due_days(self, now: float) -> int:
        """Drop each day partition whose every record is past the longest retention (the
        day's end plus its days) and no open case holds: instant, no dead rows. Returns how
        many records went."""
        gone = 0
        with self.pool.connection() as conn:
            # A day detached by an earlier purge that stopped before dropping it: drop it now
            # (it holds only records past retention, outside the partitioned table).
            for (orphan,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition AND "
                "relname ~ '^records_[0-9]+$'"
            ).fetchall():
                conn.execute(f"DROP TABLE IF EXISTS {orphan}")
            parts = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records' "
                "AND c.relname <> 'records_default'"
            ).fetchall()
            for (name,) in parts:
                day = int(name.rsplit("_", 1)[1])
                start, end = day * DAY, (day + 1) * DAY
                if end + self.retention.record_max_s > now:
                    continue
                if (
                    end + HOLD_MAX_S > now
                    and conn.execute(
                        "SELECT 1 FROM held WHERE captured_at >= %s AND captured_at < %s LIMIT 1",
                        [start, end],
                    ).fetchall()
                ):
                    continue  # an open case holds records of this day: rows go one by one
                n = _scalar(conn.execute(f"SELECT count(*) FROM {name}"))
                try:
                    dropped = self._drop_partition(conn, name, "records")
                except Exception as e:  # not the owner (the purge role): delete rows instead
                    if "must be owner" not in str(e) and "permission denied" not in str(e):
                        raise
                    break
                if dropped:
                    gone += int(n)
        return gone

    @staticmethod
    def _drop_partition(conn, name: str, parent: str, *, wait_ms: int = 20, tries: int = 300) -> bool:
        """Remove a day partition without stalling uploads. Detaching needs the parent's
        exclusive lock, and every insert that arrives while it waits queues behind it: so it
        waits at most ``wait_ms`` and tries again in the next gap between inserts (DETACH
        ... CONCURRENTLY would not lock, but PostgreSQL refuses it beside a default
        partition). The detached table is then dropped on its own, so unlinking its files
        holds no lock uploads need. False if it never got in: the next purge tries again."""
        import psycopg

        for _ in range(tries):
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL lock_timeout = '{int(wait_ms)}ms'")
                    conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {name}")
                break
            except psycopg.errors.LockNotAvailable:
                time.sleep(0.02)
        else:
            return False
        conn.execute(f"DROP TABLE {name}")
        return True

    def records_between(
        self, kiosk_id: str | None, from_ts: float | None, to_ts: float | None
    ) -> list[RecordRow]:
        sql, params = _SELECT_RECORDS + " WHERE true", []
        for cond, value in (
            ("kiosk_id = %s", kiosk_id),
            ("captured_at >= %s", from_ts),
            ("captured_at < %s", to_ts),
        ):
            if value is not None:
                sql += f" AND {cond}"
                params.append(value)
        return [record_row(r) for r in self._qr(sql + " ORDER BY captured_at", params)]

    def hold_records(self, case_id: str, rows: Sequence[RecordRow]) -> None:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO held (case_id, record_id, seal_fallback, captured_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(case_id, r["record_id"], bool(r["seal_fallback"]), r["captured_at"]) for r in rows],
            )

    def release_holds(self, case_id: str) -> int:
        with self.pool.connection() as conn:
            return conn.execute("DELETE FROM held WHERE case_id = %s", [case_id]).rowcount

    def log_read(
        self,
        *,
        reader: str,
        case_id: str,
        kiosk_id: str | None,
        from_ts: float | None,
        to_ts: float | None,
        records: int,
        now: float,
        kind: str = "read",
    ) -> int:
        return self._q(
            "INSERT INTO reads (read_at, reader, case_id, kiosk_id, from_ts, to_ts, records, kind) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING read_id",
            [now, reader, case_id, kiosk_id, from_ts, to_ts, records, kind],
        )[0][0]

    # -- search tags --------------------------------------------------------------------------
    def replace_tag_key_docs(self, rows: Sequence[TagKeyDoc]) -> int:
        """(kiosk id, valid_from, doc): the same sealed keys, signed again (a new root)."""
        n = 0
        with self.pool.connection() as conn, conn.transaction():
            for kid, start, doc in rows:
                n += conn.execute(
                    "UPDATE tag_keys SET doc = %s WHERE kiosk_id = %s AND valid_from = %s", [doc, kid, start]
                ).rowcount
        return n

    def put_tag_keys(self, rows: Sequence[TagKeyRow]) -> int:
        n = 0
        with self.pool.connection() as conn, conn.transaction():
            for row in rows:
                n += conn.execute(
                    "INSERT INTO tag_keys (kiosk_id, valid_from, valid_to, sealed, doc) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    row,
                ).rowcount
        return n

    def records_by_tags(
        self, tags: Mapping[tuple[float, float], Sequence[str]], from_ts: float, to_ts: float
    ) -> list[RecordRow]:
        """Each day's tags looked up in that day's partition only, through its tag index (one
        descent a tag: the cost grows with the tags, never with the rows of the window), the
        days on parallel connections."""
        from concurrent.futures import ThreadPoolExecutor

        asks = [
            (",".join(day_tags), max(start, from_ts), min(end, to_ts))
            for (start, end), day_tags in sorted(tags.items())
            if day_tags and max(start, from_ts) < min(end, to_ts)
        ]

        def one(ask: tuple[str, float, float]) -> list:
            with (self.read_pool or self.pool).connection() as conn, conn.transaction():
                conn.execute(f"SELECT {TAG_PLAN}")
                return conn.execute(
                    _SELECT_RECORDS + " WHERE tag = ANY(ARRAY(SELECT decode(t, 'hex') FROM "
                    "unnest(string_to_array(%s, ',')) t)) AND captured_at >= %s AND captured_at < %s",
                    list(ask),
                ).fetchall()

        if len(asks) <= 1:
            found = [r for ask in asks for r in one(ask)]
        else:
            with ThreadPoolExecutor(min(len(asks), TAG_CONNECTIONS)) as ex:
                found = [r for rows in ex.map(one, asks) for r in rows]
        return sorted((record_row(r) for r in found), key=lambda r: (r["captured_at"], r["record_id"]))

    # -- the committee's audit log -------------------------------------------------------------
    def audit_append(self, build: EntryBuilder) -> AuditRow:
        raw, h, sig, _ = self._append_entry(build, None)
        return AuditRow(raw, h, sig)

    def audit_append_statement(
        self, build: EntryBuilder, statement_id: str, doc: str, *, expires_at: float
    ) -> int:
        """The risk_change entry ``build`` makes and its statement, in one transaction."""
        version = self._append_entry(build, (statement_id, doc, expires_at))[3]
        assert version is not None
        return int(version)

    def _append_entry(self, build, statement) -> tuple[str, str, str | None, int | None]:
        """Through kiosk_audit_append (the committee's role may not write the log, the meta
        or the statements otherwise): it appends only after the current end; a race with
        another member's entry is tried again on the new end."""
        import psycopg

        for attempt in range(5):
            try:
                with self.pool.connection() as conn, conn.transaction():
                    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                    seq, prev = (row[0] + 1, row[1]) if row else (1, "0" * 64)
                    raw, h, sig = build(seq, prev)
                    head = json.dumps(head_document(seq, h, sig)) if sig is not None else None
                    sid, doc, expires = statement or (None, None, None)
                    version = _scalar(
                        conn.execute(
                            "SELECT kiosk_audit_append(%s, %s, %s, %s, %s, %s, %s, %s)",
                            [seq, raw, h, sig, head, sid, doc, expires],
                        )
                    )
                return raw, h, sig, version
            except psycopg.errors.RaiseException as e:
                if "does not follow" not in str(e) or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    # -- trust rooted offline: manifests, risk statements, tag keys, witnessed heads -----------
    def put_manifest(self, version: int, doc: str, *, now: float) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MANIFEST_LOCK])  # one publisher at a time
            held = _scalar(conn.execute("SELECT max(version) FROM manifests"))
            if held is not None and version <= held:
                raise UsageError(f"manifest version {version} is not newer than the one held ({held})")
            conn.execute(
                "INSERT INTO manifests (version, doc, published_at) VALUES (%s, %s, %s)", [version, doc, now]
            )

    def put_exposure_list(self, version: int, doc: str, *, expires_at: float, now: float) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MANIFEST_LOCK])  # one publisher at a time
            held = _scalar(conn.execute("SELECT max(version) FROM exposure_lists"))
            if held is not None and version <= held:
                raise UsageError(f"exposure list version {version} is not newer than the one held ({held})")
            conn.execute(
                "INSERT INTO exposure_lists (version, doc, published_at, expires_at) VALUES (%s, %s, %s, %s)",
                [version, doc, now, expires_at],
            )
            conn.execute("DELETE FROM exposure_lists WHERE version < %s", [version])

    def add_statement(self, statement_id: str, doc: str, *, expires_at: float, now: float) -> int:
        with self.pool.connection() as conn, conn.transaction():
            version = int(
                _scalar(
                    conn.execute(
                        "UPDATE meta SET value = (value::bigint + 1)::text WHERE "
                        "key = 'risk_version' RETURNING value"
                    )
                )
            )
            conn.execute(
                "INSERT INTO risk_statements (statement_id, changed, expires_at, doc) "
                "VALUES (%s, %s, %s, %s)",
                [statement_id, version, expires_at, doc],
            )
            return version

    def statements(self, *, now: float, since: int | None = None) -> tuple[int, list[str]] | None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            version, floor = int(meta["risk_version"]), int(meta["delta_floor"])
            if since is not None:
                if since < floor or since > version:
                    return None
                rows = conn.execute(
                    "SELECT doc FROM risk_statements WHERE changed > %s ORDER BY changed", [since]
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM risk_statements WHERE expires_at > %s ORDER BY changed", [now]
                ).fetchall()
        return version, [r[0] for r in rows]

    def record_seen(
        self,
        kiosk_id: str,
        *,
        now: float,
        skew_s: float,
        summary: str | None,
        upload: bool,
        summary_at: float | None = None,
    ) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                SEEN_UPSERT.replace("?", "%s"),
                seen_row(
                    kiosk_id, now=now, skew_s=skew_s, summary=summary, upload=upload, summary_at=summary_at
                ),
            )

    def add_fleet_snapshot(self, at: float, counts: str) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO fleet_history (at, counts) VALUES (%s, %s) ON CONFLICT (at) DO UPDATE "
                "SET counts = excluded.counts",
                [at, counts],
            )
            conn.execute("DELETE FROM fleet_history WHERE at < %s", [at - FLEET_HISTORY_DAYS * DAY])

    def report_head(self, kiosk_id: str, seq: int, hash_: str, *, now: float) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO audit_witness (kiosk_id, seq, hash, reported_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (kiosk_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                "reported_at = excluded.reported_at WHERE excluded.seq >= audit_witness.seq",
                [kiosk_id, seq, hash_, now],
            )


def _day_partition(day: int) -> str:
    """records_<days since 1970>: one UTC day of records (every class: the server knows none)."""
    return f"records_{day}"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
