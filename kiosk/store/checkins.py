"""The kiosk's check-in store: one SQLite file, sealed records, retention, upload queue.

Clear columns are what the kiosk needs to run (order, time, retention, which key sealed
the record, sync state); who came, at what risk, and what was decided are sealed to the
committee. A record is committed (synchronous=FULL) before its signal is shown.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from kiosk.core.decision import Decision
from kiosk.core.reasons import Outcome, Reason
from kiosk.core.retention import NORMAL_DAYS, SIGNIFICANT_DAYS, SIGNIFICANT_LEVEL
from kiosk.core.seal import SealingKey, seal
from kiosk.store.sqlitedb import MovedAside, migrate, open_checked, truncate_wal

log = logging.getLogger(__name__)
from kiosk.core.timing import DAY, time_bucket  # noqa: E402

# What the kiosk trusts (bundles, floors, roots, carried statements) is kept under the state
# keys of kiosk.trust.TrustKey, by that module alone.
BAD_RECEIPTS = "bad_receipts"  # upload answers in a row without a verifiable receipt


MIGRATIONS = [
    """
    CREATE TABLE checkins (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- per-kiosk sequence, never reused
        record_id TEXT NOT NULL UNIQUE,
        captured_at REAL NOT NULL,
        clock_synced INTEGER NOT NULL,
        retention TEXT NOT NULL CHECK (retention IN ('normal', 'significant')),
        delete_after REAL NOT NULL,
        seal_kid TEXT NOT NULL,
        sealed BLOB NOT NULL,
        synced_at REAL,
        set_aside_at REAL,                       -- the server refused it for good
        set_aside_reason TEXT
    );
    CREATE INDEX checkins_pending ON checkins (seq)
        WHERE synced_at IS NULL AND set_aside_at IS NULL;
    CREATE INDEX checkins_delete_after ON checkins (delete_after);
    CREATE TABLE invalid_scans (
        day TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (day, reason)
    );
    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    -- Sealed to the newest key held because no period key covered the capture time.
    ALTER TABLE checkins ADD COLUMN seal_fallback INTEGER NOT NULL DEFAULT 0;
    -- The search tag (kiosk.core.sealkeys.search_tag), when the kiosk held its period's tag key.
    ALTER TABLE checkins ADD COLUMN tag TEXT;
    """,
    """
    -- When a bundle (signed by the server's bundle key, apart from the receipt key) said the
    -- server holds this record: an uploaded record is deleted only after that.
    ALTER TABLE checkins ADD COLUMN confirmed_at REAL;
    """,
    """
    -- Only the 5-minute bucket of a record's time in clear (issue 33): the exact time is in
    -- the sealed payload of records made from now on.
    UPDATE checkins SET captured_at = CAST(captured_at / 300 AS INTEGER) * 300.0,
        delete_after = CAST(delete_after / 300 AS INTEGER) * 300.0;
    """,
]


@dataclass(frozen=True)
class Retention:
    normal_days: int = NORMAL_DAYS
    significant_days: int = SIGNIFICANT_DAYS
    significant_level: int = SIGNIFICANT_LEVEL  # this risk level or more, or a refusal, is significant
    synced_grace_s: int = 3600  # a synced record leaves the kiosk this long after the ack

    def classify(self, decision: Decision) -> tuple[str, int]:
        significant = decision.outcome is Outcome.DENY or (decision.risk_level or 0) >= self.significant_level
        return ("significant", self.significant_days) if significant else ("normal", self.normal_days)


class CheckinStore:
    """``epoch``: this database file's sequence epoch. A fresh file (first start, or after a
    damaged one was moved aside) starts a new epoch, so the server sees a reset as a reset
    rather than as duplicate or missing sequence numbers."""

    def __init__(
        self,
        db: Database,
        *,
        sealing: SealingKey,
        venue_id: str,
        retention: Retention = Retention(),
        now: float | None = None,
        tagger=None,
    ):
        self.db = db
        self.tagger = tagger  # kiosk.core.sealkeys.Tagger, or None: records carry no tag
        self.sealing = sealing
        self.venue_id = venue_id
        self.retention = retention
        migrate(db, MIGRATIONS)
        self.epoch = self._init_epoch(time.time() if now is None else now)

    @classmethod
    def open(cls, path, *, now: float | None = None, **kwargs) -> CheckinStore:
        """Open (or create) the kiosk's database file; a damaged one is moved aside first,
        said in the journal, and remembered in the new file for `kiosk doctor`."""
        db, moved = open_checked(path, now=now)
        store = cls(db, now=now, **kwargs)
        if moved:
            log.error(
                "database %s was damaged (%s): moved aside to %s, kept for recovery; "
                "a new sequence epoch %d begins",
                moved.original,
                moved.reason,
                moved.moved_to,
                store.epoch,
            )
            store.set_state("moved_aside", json.dumps(moved.__dict__))
        return store

    @classmethod
    def open_readonly(cls, db: Database, **kwargs) -> CheckinStore:
        """A store for reading only (doctor): no migration, no epoch written."""
        store = cls.__new__(cls)
        store.db, store.venue_id = db, kwargs.get("venue_id", "")
        store.sealing = None  # type: ignore[assignment]  # reading only: nothing is sealed
        store.retention = kwargs.get("retention", Retention())
        store.epoch = int(store.get_state("epoch", "0") or 0)
        return store

    def _init_epoch(self, now: float) -> int:
        """A new file's epoch: milliseconds at creation. A file from before epochs existed
        keeps epoch 0, so its sequence goes on where it was."""
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT value FROM state WHERE key = 'epoch'").fetchone()
            if row:
                return int(row[0])
            used = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'checkins'").fetchone()
            epoch = 0 if used and used[0] else int(now * 1000)
            self.db.execute("INSERT INTO state (key, value) VALUES ('epoch', ?)", [str(epoch)])
        return epoch

    def moved_aside(self) -> MovedAside | None:
        raw = self.get_state("moved_aside")
        return MovedAside(**json.loads(raw)) if raw else None

    def close(self) -> None:
        self.db.conn.close()

    # -- writing --------------------------------------------------------------------------
    def record(self, decision: Decision, *, now: float, clock_synced: bool) -> str:
        """Seal and commit one admitted or refused scan; returns its record id."""
        if not decision.recordable or decision.claims is None:
            raise ValueError("only admitted or refused scans are recorded")
        record_id = str(uuid.uuid4())  # random: an id says nothing of when (issue 33)
        at = time_bucket(now)  # what is kept in clear: the 5-minute bucket
        retention, days = self.retention.classify(decision)
        key, fell_back = self.sealing.key_for(retention, now)  # the period's key (or not)
        sealed = seal(
            {
                "pass_id": decision.claims.pass_id,
                "risk_level": decision.risk_level,
                "decision": decision.outcome.value,
                "reason": decision.reason.value,
                "venue": self.venue_id,
                "at": round(now, 3),  # the exact time, for the committee only
            },
            key,
            record_id=record_id,
        )
        tag = self.tagger.tag_for(decision.claims.pass_id, now) if self.tagger else None
        with self.db.conn:
            self.db.execute(
                "INSERT INTO checkins (record_id, captured_at, clock_synced, retention, "
                "delete_after, seal_kid, sealed, seal_fallback, tag) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record_id,
                    at,
                    int(clock_synced),
                    retention,
                    at + days * DAY,
                    key.kid,
                    sealed,
                    int(fell_back),
                    tag,
                ],
            )
        return record_id

    def count_invalid(self, reason: Reason, *, now: float) -> None:
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        with self.db.conn:
            self.db.execute(
                "INSERT INTO invalid_scans (day, reason, count) VALUES (?, ?, 1) "
                "ON CONFLICT (day, reason) DO UPDATE SET count = count + 1",
                [day, reason.value],
            )

    def probe(self, *, now: float) -> None:
        """A small write: can the kiosk record again? (The app calls it while the store fails.)"""
        self.set_state("store_probe_at", f"{now:.3f}")

    # -- the upload queue ---------------------------------------------------------------------
    def pending(self, limit: int, *, now: float | None = None) -> list[dict]:
        """The oldest records not yet acknowledged nor set aside, in capture order; with ``now``,
        none already past its retention (it is deleted, never uploaded)."""
        rows = self.db.execute(
            "SELECT seq, record_id, captured_at, clock_synced, retention, delete_after, seal_kid, "
            "sealed, seal_fallback, tag FROM checkins WHERE synced_at IS NULL AND set_aside_at IS NULL "
            "AND delete_after > ? ORDER BY seq LIMIT ?",
            [float("-inf") if now is None else now, limit],
        ).fetchall()
        return [
            {
                "seq": r[0],
                "epoch": self.epoch,
                "record_id": r[1],
                "captured_at": r[2],
                "clock_synced": bool(r[3]),
                "retention": r[4],
                "delete_after": r[5],
                "seal_kid": r[6],
                "sealed": base64.b64encode(r[7]).decode("ascii"),
                "seal_fallback": bool(r[8]),
                "tag": r[9],
            }
            for r in rows
        ]

    def _update_many(self, sql: str, record_ids, params: list) -> int:
        ids = list(record_ids)
        changed = 0
        with self.db.conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                cur = self.db.execute(sql.format(marks=",".join("?" * len(chunk))), params + chunk)
                changed += cur.rowcount
        return changed

    def mark_synced(self, record_ids, *, now: float) -> int:
        return self._update_many(
            "UPDATE checkins SET synced_at = ? WHERE synced_at IS NULL AND record_id IN ({marks})",
            record_ids,
            [now],
        )

    def set_aside(self, record_ids, *, reason: str, now: float) -> int:
        return self._update_many(
            "UPDATE checkins SET set_aside_at = ?, set_aside_reason = ? WHERE record_id IN ({marks})",
            record_ids,
            [now, reason[:200]],
        )

    def retry_set_aside(self) -> int:
        """Put every set-aside record back in the upload queue (`kiosk sync --retry-set-aside`)."""
        with self.db.conn:
            return self.db.execute(
                "UPDATE checkins SET set_aside_at = NULL, set_aside_reason = NULL "
                "WHERE set_aside_at IS NOT NULL"
            ).rowcount

    def requeue_clock_set_aside(self, *, now: float, code: str, future_s: float, oldest_s: float) -> int:
        """Records the server set aside for their capture time (``code``) that it would take now
        (the kiosk's clock was wrong then; it is right now): back in the upload queue, by
        themselves. ``now``: the server's time as the kiosk knows it."""
        with self.db.conn:
            return self.db.execute(
                "UPDATE checkins SET set_aside_at = NULL, set_aside_reason = NULL "
                "WHERE set_aside_at IS NOT NULL AND instr(set_aside_reason, ?) > 0 "
                "AND captured_at <= ? AND captured_at > ? AND delete_after > ?",
                [code, now + future_s, now - oldest_s, now],
            ).rowcount

    def set_aside_reasons(self) -> dict[str, int]:
        return dict(
            self.db.execute(
                "SELECT set_aside_reason, count(*) FROM checkins WHERE set_aside_at IS NOT NULL GROUP BY 1"
            ).fetchall()
        )

    # -- retention ----------------------------------------------------------------------------
    def unconfirmed(self) -> int:
        """Records acknowledged by a receipt that no bundle has confirmed the server holds."""
        return int(
            self.db.execute(
                "SELECT count(*) FROM checkins WHERE synced_at IS NOT NULL AND confirmed_at IS NULL"
            ).fetchone()[0]
        )

    def confirm(self, stored, *, now: float, sent_before: float | None = None) -> tuple[int, int]:
        """Mark the uploaded records a bundle says the server holds (``stored``: its freshness
        statement's summary of this kiosk's numbers: epoch, highest, runs missing); only
        these leave the kiosk after the grace. A receipt alone (one key) never deletes. With
        ``sent_before`` (when the bundle was asked for): a record acknowledged before then
        that the summary does not name goes back in the upload queue (the receipt was not the
        server's word). Returns (confirmed, queued again)."""
        ours = bool(stored) and int(stored["epoch"]) == self.epoch
        gaps = [(int(lo), int(hi)) for lo, hi in stored["gaps"]] if ours else []
        holes = "".join(" AND NOT (seq BETWEEN ? AND ?)" for _ in gaps)
        held = f"seq <= ?{holes}"
        params = [int(stored["high"]) if ours else 0, *[x for run in gaps for x in run]]
        with self.db.conn:
            unconfirmed = "synced_at IS NOT NULL AND confirmed_at IS NULL"
            confirmed = self.db.execute(
                f"UPDATE checkins SET confirmed_at = ? WHERE {unconfirmed} AND {held}", [now, *params]
            ).rowcount
            again = 0
            if sent_before is not None:
                again = self.db.execute(
                    f"UPDATE checkins SET synced_at = NULL WHERE {unconfirmed} AND synced_at <= ? "
                    f"AND NOT ({held})",
                    [sent_before, *params],
                ).rowcount
        return confirmed, again

    def purge(self, *, now: float) -> int:
        """Delete records past their retention, and uploaded ones a bundle confirmed the server
        holds, past the grace after that."""
        with self.db.conn:
            cur = self.db.execute(
                "DELETE FROM checkins WHERE delete_after <= ? OR confirmed_at <= ?",
                [now, now - self.retention.synced_grace_s],
            )
            cutoff = (
                datetime.fromtimestamp(now - self.retention.significant_days * DAY, UTC).date().isoformat()
            )
            self.db.execute("DELETE FROM invalid_scans WHERE day < ?", [cutoff])
        if cur.rowcount:
            truncate_wal(self.db)  # no copy of a deleted record stays in the WAL
        return cur.rowcount

    # -- state and figures ----------------------------------------------------------------------
    def get_state(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str) -> None:
        self.set_states({key: value})

    def set_states(self, values: dict[str, str]) -> None:
        """Several keys in one transaction: they change together or not at all."""
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.conn.executemany(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def stats(self) -> dict:
        q = self.db.execute(
            "SELECT count(*), sum(synced_at IS NULL AND set_aside_at IS NULL), "
            "sum(synced_at IS NOT NULL), sum(set_aside_at IS NOT NULL), "
            "min(CASE WHEN synced_at IS NULL AND set_aside_at IS NULL THEN captured_at END), "
            "sum(seal_fallback), sum(tag IS NULL) FROM checkins"
        ).fetchone()
        invalid = self.db.execute("SELECT coalesce(sum(count), 0) FROM invalid_scans").fetchone()[0]
        return {
            "records": q[0],
            "pending": q[1] or 0,
            "synced": q[2] or 0,
            "set_aside": q[3] or 0,
            "oldest_pending_age_s": (time.time() - q[4]) if q[4] else None,
            "seal_fallback": q[5] or 0,
            "untagged": q[6] or 0,
            "invalid_scans": invalid,
        }
