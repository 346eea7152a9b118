"""The authority's storage in one SQLite file in its data folder (a pilot): WAL,
synchronous=FULL (an acknowledged batch survives a crash), one writer at a time, reads on a
connection of their own. The interface is :mod:`sync.central.storage.interface`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from kiosk.core.auditheads import head_document
from kiosk.core.faults import UsageError
from kiosk.core.retention import HOLD_MAX_S, TOMBSTONE_S, UNTAGGED_DAYS
from kiosk.core.timing import DAY, time_bucket
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
from sync.central.storage.sqlite_file import migrate, open_db, open_readonly, truncate_wal
from sync.central.storage.sqlqueries import (
    FLEET_HISTORY_DAYS,
    SEEN_UPSERT,
    SqlQueries,
    seen_row,
    tag_keys_json,
)

DB_NAME = "central.db"


class StoreVersionError(UsageError):
    """A store whose schema this program does not match, opened read-only (nothing migrated)."""


MIGRATIONS = migrations.load("sqlite")  # sync/central/storage/migrations/sqlite/NNNN.sql


class SqliteStorage(SqlQueries):
    def __init__(
        self,
        path: Path | str | None,
        *,
        retention: ServerRetention = ServerRetention(),
        readonly: bool = False,
    ):
        """``readonly``: for the commands that only look (status, report, reads, case list,
        audit): the file is opened read-only, nothing is migrated or written, so a user who may
        only read the store can run them, and they never change it."""
        self.retention = retention
        self._lock = threading.Lock()  # one writer; the server's threads share a connection
        if readonly and path is not None:
            self.db = open_readonly(path)
            self._reader, self._read_lock = self.db, self._lock
            have = self.db.execute("PRAGMA user_version").fetchone()[0]
            if have != len(MIGRATIONS):
                self.db.conn.close()
                raise StoreVersionError(
                    f"{path}: the store's schema is version {have}, this program's {len(MIGRATIONS)}: "
                    "a command that writes (serve, purge) brings it up to date first"
                )
            return
        self.db = open_db(path)
        migrate(self.db, MIGRATIONS)
        # Reads on a connection of their own (WAL: readers never wait for the writer), so a
        # bundle poll or a kiosk lookup does not queue behind an ingest or a purge chunk.
        self._reader = open_db(path) if path is not None else self.db
        self._read_lock = threading.Lock() if path is not None else self._lock

    @classmethod
    def in_folder(cls, data_dir: Path | str, **kwargs) -> SqliteStorage:
        if not kwargs.get("readonly"):
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        return cls(Path(data_dir) / DB_NAME, **kwargs)

    def ensure_partitions(self, *, now: float) -> int:
        """Nothing to make ahead: one SQLite table holds every day."""
        return 0

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not self.db:
                self._reader.conn.close()
        with self._lock:  # not in the middle of a purge chunk or an ingest
            self.db.conn.close()

    def _q(self, sql: str, params=()):
        """A read (every caller only reads), on the reader connection."""
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    # -- kiosks ------------------------------------------------------------------------------
    def register_kiosk(
        self, *, venue: str, public_key: bytes, now: float, tag_public: bytes | None = None
    ) -> str:
        """A new kiosk id for this device key; ValueError when the key is already registered
        to an active kiosk (one key, one kiosk: revoke the old registration first)."""
        kiosk_id = "k-" + secrets.token_hex(8)
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            held = self.db.execute(
                "SELECT kiosk_id FROM kiosks WHERE public_key = ? AND revoked_at IS NULL", [public_key]
            ).fetchone()
            if held:
                raise UsageError(
                    f"this public key is already registered to active kiosk {held[0]} "
                    f"(revoke it first: register-kiosk --revoke {held[0]})"
                )
            self.db.execute(
                "INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at, "
                "tag_public) VALUES (?, ?, ?, ?, ?)",
                [kiosk_id, venue, public_key, now, tag_public],
            )
        return kiosk_id

    def drop_spent_tag_keys(self, *, now: float) -> int:
        with self._lock, self.db.conn:
            return self.db.execute("DELETE FROM tag_keys WHERE valid_to <= ?", [now]).rowcount

    def put_enrolment_token(self, token: EnrolmentToken, tag_keys: Sequence[TagKeyRow]) -> None:
        with self._lock, self.db.conn:
            self.db.execute(
                "INSERT INTO enrolment_tokens (token, kiosk_id, venue, issued_at, expires_at, doc, "
                "tag_docs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*token[:6], tag_keys_json(tag_keys)],
            )

    def enrol_kiosk(self, token: str, *, public_key: bytes, tag_public: bytes, now: float) -> Enrolled:
        """Register the kiosk a token names, with the device's keys, once: the token's
        sealed tag keys become the kiosk's; the same device asking again gets the same id."""
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT kiosk_id, venue, expires_at, used_at, device_key, tag_docs FROM enrolment_tokens "
                "WHERE token = ?",
                [token],
            ).fetchone()
            if row is None:
                return Enrolled("unknown")
            kiosk_id, venue, expires_at, used_at, device_key, tag_docs = row
            if used_at is not None:
                return Enrolled("ok", kiosk_id) if device_key == public_key else Enrolled("used")
            if expires_at <= now:
                return Enrolled("expired")
            if self.db.execute(
                "SELECT 1 FROM kiosks WHERE public_key = ? AND revoked_at IS NULL", [public_key]
            ).fetchone():
                return Enrolled("key_in_use")
            self.db.execute(
                "INSERT INTO kiosks (kiosk_id, venue, public_key, registered_at, tag_public) "
                "VALUES (?, ?, ?, ?, ?)",
                [kiosk_id, venue, public_key, now, tag_public],
            )
            self.db.conn.executemany(
                "INSERT INTO tag_keys (kiosk_id, valid_from, valid_to, sealed, doc) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    (kiosk_id, k["valid_from"], k["valid_to"], base64.b64decode(k["sealed"]), k["doc"])
                    for k in json.loads(tag_docs)
                    if k["valid_to"] > now
                ],
            )
            self.db.execute(
                "UPDATE enrolment_tokens SET used_at = ?, device_key = ?, tag_docs = '[]' WHERE token = ?",
                [now, public_key, token],
            )
        return Enrolled("ok", kiosk_id)

    def put_update(
        self, roots: Sequence[tuple[str, str]], targets: str, files: dict[str, bytes], *, now: float
    ) -> None:
        with self._lock, self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO update_metadata (name, doc, published_at) VALUES (?, ?, ?)",
                [(name, doc, now) for name, doc in roots],
            )
            self.db.execute(
                "INSERT INTO update_metadata (name, doc, published_at) VALUES ('targets.json', ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, published_at = excluded.published_at",
                [targets, now],
            )
            self.db.execute("DELETE FROM update_targets")
            self.db.conn.executemany(
                "INSERT INTO update_targets (path, data, added_at) VALUES (?, ?, ?)",
                [(path, data, now) for path, data in files.items()],
            )

    def revoke_kiosk(self, kiosk_id: str, *, now: float) -> bool:
        with self._lock, self.db.conn:
            cur = self.db.execute(
                "UPDATE kiosks SET revoked_at = ? WHERE kiosk_id = ? AND revoked_at IS NULL", [now, kiosk_id]
            )
        return cur.rowcount == 1

    # -- records ----------------------------------------------------------------------------
    def ingest(self, kiosk_id: str, batch_id: str, records: list[dict], *, now: float) -> IngestResult:
        """Store what is new, in one transaction; the same record again is a duplicate."""
        ids = [r["record_id"] for r in records]
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            known: set[str] = set()
            foreign: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                for rid, owner in self.db.execute(
                    f"SELECT record_id, kiosk_id FROM records WHERE record_id IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ):
                    (known if owner == kiosk_id else foreign).add(rid)
            if foreign:  # another kiosk's record ids: never acknowledged as this one's
                raise RecordIdConflict(sorted(foreign))
            fresh, seen = [], set()
            for r in records:
                if r["record_id"] in known or r["record_id"] in seen:
                    continue
                seen.add(r["record_id"])
                captured = time_bucket(float(r["captured_at"]))  # in clear: the 5-minute bucket only
                # no class, no key id, no deletion time: nothing that tells significance apart
                fresh.append(
                    (
                        r["record_id"],
                        kiosk_id,
                        r["seq"],
                        r.get("epoch", 0),
                        captured,
                        int(r["clock_synced"]),
                        r["sealed"],
                        batch_id,
                        now,
                        int(r.get("seal_fallback", False)),
                        r.get("tag"),
                    )
                )
            new_rows = [{"seq": f[2], "epoch": f[3], "captured_at": f[4], "tag": f[10]} for f in fresh]
            held = dict(
                self.db.execute(
                    "SELECT epoch, high FROM sequence_summary WHERE kiosk_id = ?", [kiosk_id]
                ).fetchall()
            )
            reused = {
                tuple(x)
                for epoch, seq in self._to_probe(new_rows, held)
                for x in self.db.execute(
                    "SELECT epoch, seq FROM records WHERE kiosk_id = ? AND epoch = ? AND seq = ? LIMIT 1",
                    [kiosk_id, epoch, seq],
                )
            }
            self.db.conn.executemany(
                "INSERT INTO records (record_id, kiosk_id, seq, epoch, captured_at, clock_synced, "
                "sealed, batch_id, received_at, seal_fallback, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                fresh,
            )
            self._keep_sequences(
                lambda sql, params: self.db.execute(sql, params).fetchall(), kiosk_id, new_rows, held, reused
            )
            if fresh:  # a receipt for what was new (its day: no count, no time of day)
                self.db.execute(
                    "INSERT INTO batches (batch_id, kiosk_id, received_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (batch_id) DO NOTHING",
                    [batch_id, kiosk_id, now - now % DAY],
                )
        accepted = [f[0] for f in fresh]
        acc = set(accepted)
        return IngestResult(accepted=accepted, duplicates=[i for i in dict.fromkeys(ids) if i not in acc])

    def record_ids(self, kiosk_id: str | None = None) -> list[str]:
        if kiosk_id:
            return [
                r[0]
                for r in self._q("SELECT record_id FROM records WHERE kiosk_id = ? ORDER BY seq", [kiosk_id])
            ]
        return [r[0] for r in self._q("SELECT record_id FROM records ORDER BY kiosk_id, seq")]

    def purge(self, *, now: float, chunk: int = 2000) -> PurgeResult:
        """Delete what is due: records past the longest retention from capture (whatever their
        class, which the server does not know), batch receipts older than the shortest
        retention, expired risk entries. In chunks, each its own transaction, so an
        upload waits for one chunk at most; then the WAL is cut to zero bytes.

        A record an open case's trace or opening touched (held) is kept until the case
        closes, but never past the longest retention from capture."""
        keep, params = self._hold_clause(now)
        records = 0
        while True:
            with self._lock, self.db.conn:
                n = self.db.execute(
                    "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE "
                    f"captured_at <= ?{keep} LIMIT ?)",
                    [now - self.retention.record_max_s, *params, chunk],
                ).rowcount
            records += n
            if n < chunk:
                break
        with self._lock, self.db.conn:
            batches = self.db.execute(  # receipts keep no time past the shortest retention
                "DELETE FROM batches WHERE received_at <= ?", [now - self.retention.normal_days * DAY]
            ).rowcount
            self.db.execute("DELETE FROM held WHERE captured_at <= ?", [now - HOLD_MAX_S])
            self.db.execute(
                "DELETE FROM untagged_days WHERE day < ?",
                [int(now // DAY) - UNTAGGED_DAYS],
            )
            # Expired statements apply nowhere (kiosks stop applying them at their expiry):
            # kept a while for kiosks catching up by delta, then deleted.
            gone = self.db.execute(
                "DELETE FROM risk_statements WHERE expires_at <= ? RETURNING changed",
                [now - TOMBSTONE_S],
            ).fetchall()
            if gone:  # kiosks older than these get the whole list
                self.db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'delta_floor' AND CAST(value AS INTEGER) < ?",
                    [str(max(g[0] for g in gone))] * 2,
                )
            risk = len(gone)
            self.db.execute("DELETE FROM tag_keys WHERE valid_to <= ?", [now])  # kiosks are done
            # a token past its expiry keeps no sealed key; its row goes after the longest retention
            self.db.execute(
                "UPDATE enrolment_tokens SET tag_docs = '[]' WHERE expires_at <= ? AND tag_docs <> '[]'",
                [now],
            )
            self.db.execute(
                "DELETE FROM enrolment_tokens WHERE expires_at <= ?",
                [now - self.retention.significant_days * DAY],
            )
            self.db.execute("DELETE FROM exposure_lists WHERE expires_at <= ?", [now])
            self.db.execute(  # a last upload says someone checked in there before it
                "UPDATE kiosk_health SET last_upload_at = NULL WHERE last_upload_at <= ?",
                [now - self.retention.normal_days * DAY],
            )
        if records or batches or risk:
            with self._lock:
                truncate_wal(self.db)
        return PurgeResult(records, batches, risk)

    def records_between(
        self, kiosk_id: str | None, from_ts: float | None, to_ts: float | None
    ) -> list[RecordRow]:
        sql = (
            "SELECT record_id, kiosk_id, seq, captured_at, clock_synced, seal_fallback, sealed "
            "FROM records WHERE 1=1"
        )
        params: list = []
        for cond, value in (
            ("kiosk_id = ?", kiosk_id),
            ("captured_at >= ?", from_ts),
            ("captured_at < ?", to_ts),
        ):
            if value is not None:
                sql += f" AND {cond}"
                params.append(value)
        rows = self._q(sql + " ORDER BY captured_at", params)
        return [record_row(r) for r in rows]

    def hold_records(self, case_id: str, rows: Sequence[RecordRow]) -> None:
        with self._lock, self.db.conn:
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO held (case_id, record_id, seal_fallback, captured_at) "
                "VALUES (?, ?, ?, ?)",
                [(case_id, r["record_id"], int(bool(r["seal_fallback"])), r["captured_at"]) for r in rows],
            )

    def release_holds(self, case_id: str) -> int:
        with self._lock, self.db.conn:
            return self.db.execute("DELETE FROM held WHERE case_id = ?", [case_id]).rowcount

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
        with self._lock, self.db.conn:
            return (
                self.db.execute(
                    "INSERT INTO reads (read_at, reader, case_id, kiosk_id, from_ts, to_ts, records, kind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [now, reader, case_id, kiosk_id, from_ts, to_ts, records, kind],
                ).lastrowid
                or 0
            )

    # -- search tags --------------------------------------------------------------------------
    def put_tag_keys(self, rows: Sequence[TagKeyRow]) -> int:
        """(kiosk id, valid_from, valid_to, sealed, root-signed doc) rows not held yet;
        returns how many were new."""
        with self._lock, self.db.conn:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "INSERT INTO tag_keys (kiosk_id, valid_from, valid_to, sealed, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return self.db.conn.total_changes - before

    def replace_tag_key_docs(self, rows: Sequence[TagKeyDoc]) -> int:
        """(kiosk id, valid_from, doc): the same sealed keys, signed again (a new root)."""
        with self._lock, self.db.conn:
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                "UPDATE tag_keys SET doc = ? WHERE kiosk_id = ? AND valid_from = ?",
                [(doc, kid, start) for kid, start, doc in rows],
            )
            return self.db.conn.total_changes - before

    def records_by_tags(
        self, tags: Mapping[tuple[float, float], Sequence[str]], from_ts: float, to_ts: float
    ) -> list[RecordRow]:
        """Each day's tags looked up within that day, through the tag index."""
        found = []
        for (start, end), day_tags in sorted(tags.items()):
            a, b = max(start, from_ts), min(end, to_ts)
            for i in range(0, len(day_tags) if a < b else 0, 500):
                chunk = list(day_tags[i : i + 500])
                found += self._q(
                    "SELECT record_id, kiosk_id, seq, captured_at, clock_synced, seal_fallback, sealed "
                    f"FROM records WHERE tag IN ({','.join('?' * len(chunk))}) AND captured_at >= ? "
                    "AND captured_at < ?",
                    [*chunk, a, b],
                )
        return sorted((record_row(r) for r in found), key=lambda r: (r["captured_at"], r["record_id"]))

    # -- the committee's audit log -------------------------------------------------------------
    def audit_append(self, build: EntryBuilder) -> AuditRow:
        """Append ``build(seq, prev_hash)``'s (entry JSON, hash, signature) at the end of the
        log, atomically with reading where the end is."""
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            return self._append_entry(build)

    def audit_append_statement(
        self, build: EntryBuilder, statement_id: str, doc: str, *, expires_at: float
    ) -> int:
        """The risk_change entry ``build`` makes and its statement, in one transaction."""
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            raw, _, _ = self._append_entry(build)
            entry = json.loads(raw)
            if entry["action"] != "risk_change" or entry["detail"].get("statement") != statement_id:
                raise ValueError("a risk statement is kept only with its own risk_change entry")
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'risk_version'")
            version = int(self.db.execute("SELECT value FROM meta WHERE key = 'risk_version'").fetchone()[0])
            self.db.execute(
                "INSERT INTO risk_statements (statement_id, changed, expires_at, doc) VALUES (?, ?, ?, ?)",
                [statement_id, version, expires_at, doc],
            )
            return version

    def _append_entry(self, build: EntryBuilder) -> AuditRow:
        """In the caller's transaction: the entry after the current end."""
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, "0" * 64)
        raw, h, sig = build(seq, prev)
        self.db.execute(
            "INSERT INTO audit (seq, entry, hash, signature) VALUES (?, ?, ?, ?)", [seq, raw, h, sig]
        )
        self.db.execute(  # the length the log must keep: a shorter log is tampering
            "INSERT INTO meta (key, value) VALUES ('audit_length', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [str(seq)],
        )
        if sig is not None:  # the head bundles carry: number, hash, signature; no content
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('audit_head', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [json.dumps(head_document(seq, h, sig))],
            )
        return AuditRow(raw, h, sig)

    # -- trust rooted offline: manifests, risk statements, tag keys, witnessed heads -----------
    def put_manifest(self, version: int, doc: str, *, now: float) -> None:
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            held = self.db.execute("SELECT max(version) FROM manifests").fetchone()[0]
            if held is not None and version <= held:
                raise UsageError(f"manifest version {version} is not newer than the one held ({held})")
            self.db.execute(
                "INSERT INTO manifests (version, doc, published_at) VALUES (?, ?, ?)", [version, doc, now]
            )

    def put_exposure_list(self, version: int, doc: str, *, expires_at: float, now: float) -> None:
        with self._lock, self.db.conn:
            held = self.db.execute("SELECT max(version) FROM exposure_lists").fetchone()[0]
            if held is not None and version <= held:
                raise UsageError(f"exposure list version {version} is not newer than the one held ({held})")
            self.db.execute(
                "INSERT INTO exposure_lists (version, doc, published_at, expires_at) VALUES (?, ?, ?, ?)",
                [version, doc, now, expires_at],
            )
            self.db.execute("DELETE FROM exposure_lists WHERE version < ?", [version])

    def add_statement(self, statement_id: str, doc: str, *, expires_at: float, now: float) -> int:
        with self._lock, self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'risk_version'")
            version = int(self.db.execute("SELECT value FROM meta WHERE key = 'risk_version'").fetchone()[0])
            self.db.execute(
                "INSERT INTO risk_statements (statement_id, changed, expires_at, doc) VALUES (?, ?, ?, ?)",
                [statement_id, version, expires_at, doc],
            )
            return version

    def statements(self, *, now: float, since: int | None = None) -> tuple[int, list[str]] | None:
        with self._lock:  # one snapshot: the version and the statements it counts
            version = int(self.db.execute("SELECT value FROM meta WHERE key = 'risk_version'").fetchone()[0])
            if since is not None:
                floor = int(self.db.execute("SELECT value FROM meta WHERE key = 'delta_floor'").fetchone()[0])
                if since < floor or since > version:
                    return None
                rows = self.db.execute(
                    "SELECT doc FROM risk_statements WHERE changed > ? ORDER BY changed", [since]
                ).fetchall()
            else:
                rows = self.db.execute(
                    "SELECT doc FROM risk_statements WHERE expires_at > ? ORDER BY changed", [now]
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
        with self._lock, self.db.conn:
            self.db.execute(
                SEEN_UPSERT,
                seen_row(
                    kiosk_id, now=now, skew_s=skew_s, summary=summary, upload=upload, summary_at=summary_at
                ),
            )

    def add_fleet_snapshot(self, at: float, counts: str) -> None:
        with self._lock, self.db.conn:
            self.db.execute("INSERT OR REPLACE INTO fleet_history (at, counts) VALUES (?, ?)", [at, counts])
            self.db.execute("DELETE FROM fleet_history WHERE at < ?", [at - FLEET_HISTORY_DAYS * DAY])

    def report_head(self, kiosk_id: str, seq: int, hash_: str, *, now: float) -> None:
        with self._lock, self.db.conn:
            self.db.execute(
                "INSERT INTO audit_witness (kiosk_id, seq, hash, reported_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kiosk_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                "reported_at = excluded.reported_at WHERE excluded.seq >= audit_witness.seq",
                [kiosk_id, seq, hash_, now],
            )
