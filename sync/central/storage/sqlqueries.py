"""The SQL both storage backends ask in the same words, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from kiosk.core.retention import HOLD_MAX_S
from kiosk.core.timing import DAY
from sync.central.storage.interface import ServerRetention
from sync.central.storage.rows import (
    AuditRow,
    EnrolmentToken,
    EpochRow,
    FleetPoint,
    GapRow,
    HeldRow,
    KioskHeard,
    KioskInfo,
    KioskSeen,
    KioskTagKey,
    PollState,
    ReadRow,
    Run,
    SequenceSummary,
    StatementRow,
    StoredSummary,
    TagKeyRow,
    VersionedDoc,
    WitnessedHead,
)

_KIOSK_COLUMNS = "kiosk_id, venue, public_key, registered_at, revoked_at, tag_public"


def _blobs(row: Sequence[Any]) -> list[Any]:
    """PostgreSQL answers bytea as memoryview, SQLite as bytes: bytes either way."""
    return [bytes(v) if isinstance(v, memoryview) else v for v in row]


FLEET_HISTORY_DAYS = 400  # the fleet's hourly state, for `report`: about a year back

# A kiosk seen: when, its clock's distance, the health it signed (kept only when made later
# than the one held: none sent, or an older one replayed, keeps it), and (for an upload) when
# it last uploaded.
_NEWER_SUMMARY = "excluded.summary_at > coalesce(kiosk_health.summary_at, 0)"
SEEN_UPSERT = (
    "INSERT INTO kiosk_health (kiosk_id, seen_at, last_upload_at, skew_s, summary, summary_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kiosk_id) DO UPDATE SET seen_at = excluded.seen_at, "
    "skew_s = excluded.skew_s, "
    "last_upload_at = coalesce(excluded.last_upload_at, kiosk_health.last_upload_at), "
    f"summary = CASE WHEN {_NEWER_SUMMARY} THEN excluded.summary ELSE kiosk_health.summary END, "
    f"summary_at = CASE WHEN {_NEWER_SUMMARY} THEN excluded.summary_at ELSE kiosk_health.summary_at END"
)


MAX_NAMED_GAPS = 100  # holes a bundle names; past them it confirms only below the first


def confirmed(high: int, gaps: int, first_low: int) -> tuple[int, int]:
    """(the highest number a bundle says the server holds, how many holes it names), from the
    epoch's highest number, its holes and where the first starts."""
    return (first_low - 1, 0) if gaps > MAX_NAMED_GAPS else (high, gaps)


def seen_row(
    kiosk_id: str, *, now: float, skew_s: float, summary: str | None, upload: bool, summary_at: float | None
) -> list[Any]:
    """SEEN_UPSERT's parameters, the same for both backends. An upload's day only: every
    round uploads, and the hour of one would say no more than when it was seen; the day says
    when someone may have come."""
    made = (now if summary_at is None else summary_at) if summary else None
    return [kiosk_id, now, now - now % DAY if upload else None, skew_s, summary, made]


_TOKEN_COLUMNS = "token, kiosk_id, venue, issued_at, expires_at, doc, used_at"


def tag_keys_json(rows: Sequence[TagKeyRow]) -> str:
    """Sealed tag keys kept with an enrolment token until it is used (the kiosk id is the
    token's)."""
    import base64
    import json

    return json.dumps(
        [
            {
                "valid_from": r.valid_from,
                "valid_to": r.valid_to,
                "sealed": base64.b64encode(r.sealed).decode("ascii"),
                "doc": r.doc,
            }
            for r in rows
        ]
    )


class SqlQueries:
    """What both backends ask in the same SQL, but for the placeholder (``P``: "?" for
    SQLite, "%s" for PostgreSQL); each provides ``_q(sql, params)`` and ``retention``."""

    P = "?"
    retention: ServerRetention

    def _q(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement on the backend's connection; returns its rows."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.P)

    def _qr(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A read the committee may take from a streaming replica (``--read-database``):
        records and the aggregates, never the audit log it appends to."""
        return self._q(sql, params)

    # -- reads both backends ask in the same words ----------------------------------------------
    def kiosk(self, kiosk_id: str) -> KioskInfo | None:
        rows = self._q(self._sql(f"SELECT {_KIOSK_COLUMNS} FROM kiosks WHERE kiosk_id = ?"), [kiosk_id])
        return KioskInfo(*_blobs(rows[0])) if rows else None

    def enrolment_token(self, token: str) -> EnrolmentToken | None:
        rows = self._q(self._sql(f"SELECT {_TOKEN_COLUMNS} FROM enrolment_tokens WHERE token = ?"), [token])
        return EnrolmentToken(*rows[0]) if rows else None

    def enrolment_tokens(self) -> list[EnrolmentToken]:
        return [
            EnrolmentToken(*r)
            for r in self._q(f"SELECT {_TOKEN_COLUMNS} FROM enrolment_tokens ORDER BY issued_at, token")
        ]

    def update_doc(self, name: str) -> str | None:
        rows = self._q(self._sql("SELECT doc FROM update_metadata WHERE name = ?"), [name])
        return str(rows[0][0]) if rows else None

    def update_root_version(self) -> int:
        rows = self._q(self._sql("SELECT name FROM update_metadata WHERE name LIKE ?"), ["%.root.json"])
        return max((int(r[0].split(".")[0]) for r in rows), default=0)

    def update_target(self, path: str) -> bytes | None:
        rows = self._q(self._sql("SELECT data FROM update_targets WHERE path = ?"), [path])
        return bytes(rows[0][0]) if rows else None

    def kiosks(self) -> list[KioskInfo]:
        return [
            KioskInfo(*_blobs(r))
            for r in self._qr(f"SELECT {_KIOSK_COLUMNS} FROM kiosks ORDER BY registered_at, kiosk_id")
        ]

    def tag_keys_for(self, kiosk_id: str, now: float) -> list[KioskTagKey]:
        return [
            KioskTagKey(float(a), float(b), bytes(c))
            for a, b, c in self._q(
                self._sql(
                    "SELECT valid_from, valid_to, sealed FROM tag_keys WHERE kiosk_id = ? AND valid_to > ? "
                    "ORDER BY valid_from"
                ),
                [kiosk_id, now],
            )
        ]

    def reads(self) -> list[ReadRow]:
        keys = ("read_id", "read_at", "reader", "case_id", "kiosk_id", "from_ts", "to_ts", "records", "kind")
        rows = self._qr(f"SELECT {', '.join(keys)} FROM reads ORDER BY read_id")
        return [cast(ReadRow, dict(zip(keys, r))) for r in rows]

    def audit_entries(self) -> list[AuditRow]:
        """(entry JSON, hash, signature) in order."""
        return [
            AuditRow(e, h, s) for e, h, s in self._q("SELECT entry, hash, signature FROM audit ORDER BY seq")
        ]

    def latest_manifest(self) -> VersionedDoc | None:
        rows = self._q("SELECT version, doc FROM manifests ORDER BY version DESC LIMIT 1")
        return VersionedDoc(int(rows[0][0]), str(rows[0][1])) if rows else None

    def manifest_docs(self) -> list[VersionedDoc]:
        """(version, document) of every manifest kept, oldest first (audit verify checks each
        against the log)."""
        return [
            VersionedDoc(int(v), str(d))
            for v, d in self._q("SELECT version, doc FROM manifests ORDER BY version")
        ]

    def statement_rows(self) -> list[StatementRow]:
        """(statement id, document, expiry) of every risk statement kept (expired ones too, until
        the purge), for audit verify to check each against the log."""
        return [
            StatementRow(str(i), str(d), float(e))
            for i, d, e in self._q(
                "SELECT statement_id, doc, expires_at FROM risk_statements ORDER BY changed"
            )
        ]

    def succession_manifests(self) -> list[str]:
        """The manifests that named a next root (each signed by the root before it), oldest
        first: every bundle carries them, so a kiosk that missed a hand-over follows it."""
        import json

        from kiosk.core.signed import unb64

        out = []
        for _, doc in self._q("SELECT version, doc FROM manifests ORDER BY version"):
            try:
                if "next_root" in json.loads(unb64(json.loads(doc)["payload"])):
                    out.append(str(doc))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def kiosks_seen(self) -> dict[str, KioskSeen]:
        """kiosk id -> when it was last seen and uploaded, its clock skew and latest health."""
        rows = self._qr(
            "SELECT kiosk_id, seen_at, last_upload_at, skew_s, summary, summary_at FROM kiosk_health"
        )
        return {
            str(r[0]): KioskSeen(
                str(r[0]),
                float(r[1]),
                None if r[2] is None else float(r[2]),
                float(r[3]),
                r[4],
                None if r[5] is None else float(r[5]),
            )
            for r in rows
        }

    def kiosk_heard(self, kiosk_id: str) -> KioskHeard:
        """What the server last heard from one kiosk (for the kiosk's own `doctor`): when it
        was last seen and uploaded, when it last reported its health, and what arrived of its
        latest sequence epoch. Two indexed reads, whatever the fleet's size."""
        seen = self._qr(
            self._sql("SELECT seen_at, last_upload_at, summary_at FROM kiosk_health WHERE kiosk_id = ?"),
            [kiosk_id],
        )
        seq = self._qr(
            self._sql(
                "SELECT epoch, received, distinct_seq, high FROM sequence_summary WHERE kiosk_id = ? "
                "ORDER BY epoch DESC LIMIT 1"
            ),
            [kiosk_id],
        )
        out: KioskHeard = {"seen_at": None, "last_upload_at": None, "health_at": None, "epoch": None}
        if seen:
            out["seen_at"] = float(seen[0][0])
            out["last_upload_at"] = None if seen[0][1] is None else float(seen[0][1])
            out["health_at"] = None if seen[0][2] is None else float(seen[0][2])
        if seq:
            epoch, received, distinct, high = (int(x) for x in seq[0])
            out["epoch"], out["received"], out["highest_seq"] = epoch, received, high
            out["missing"] = high - distinct
        return out

    def upload_lags(self, *, since: float) -> list[float]:
        """Per kiosk heard from since then: how long its oldest record not yet acknowledged
        had waited, as its signed health summary says (the server keeps no count or time of
        day of what an upload held)."""
        import json

        out = []
        for (text,) in self._qr(
            self._sql("SELECT summary FROM kiosk_health WHERE summary IS NOT NULL AND summary_at >= ?"),
            [since],
        ):
            try:
                waited = json.loads(text).get("oldest_pending_s")
            except (ValueError, AttributeError):
                continue
            if isinstance(waited, (int, float)) and not isinstance(waited, bool):
                out.append(float(waited))
        return out

    def fleet_history(self, *, since: float) -> list[FleetPoint]:
        return [
            FleetPoint(float(a), str(c))
            for a, c in self._qr(
                self._sql("SELECT at, counts FROM fleet_history WHERE at >= ? ORDER BY at"), [since]
            )
        ]

    def latest_exposure_list(self, *, now: float) -> VersionedDoc | None:
        """The newest exposure list the committee published, unless all of it has expired."""
        rows = self._q(
            self._sql(
                "SELECT version, doc FROM exposure_lists WHERE expires_at > ? ORDER BY version DESC LIMIT 1"
            ),
            [now],
        )
        return VersionedDoc(int(rows[0][0]), str(rows[0][1])) if rows else None

    def tag_key_rows(self, now: float) -> list[TagKeyRow]:
        """(kiosk id, valid_from, valid_to, sealed, doc) of every tag key not over at ``now``
        (the committee re-signs them when its root hands over)."""
        return [
            TagKeyRow(str(k), float(a), float(b), bytes(c), str(d))
            for k, a, b, c, d in self._q(
                self._sql(
                    "SELECT kiosk_id, valid_from, valid_to, sealed, doc FROM tag_keys "
                    "WHERE valid_to > ? AND doc IS NOT NULL ORDER BY kiosk_id, valid_from"
                ),
                [now],
            )
        ]

    def tag_key_docs(self, kiosk_id: str, now: float, *, until: float | None = None) -> list[str]:
        """This kiosk's tag keys in their root-signed form, for its bundle: those not over at
        ``now`` and (with ``until``) starting before it."""
        return [
            r[0]
            for r in self._q(
                self._sql(
                    "SELECT doc FROM tag_keys WHERE kiosk_id = ? AND valid_to > ? AND valid_from < ? "
                    "AND doc IS NOT NULL ORDER BY valid_from"
                ),
                [kiosk_id, now, until if until is not None else float("inf")],
            )
        ]

    def audit_head_doc(self) -> dict[str, Any] | None:
        """The newest signed entry's head, as bundles carry it (kept in meta at each append,
        so the serving role reads it without reading the log)."""
        import json

        rows = self._q("SELECT value FROM meta WHERE key = 'audit_head'")
        return dict(json.loads(rows[0][0])) if rows else None

    def witnessed_heads(self) -> list[WitnessedHead]:
        """(kiosk id, seq, hash, reported at): the highest audit head each kiosk saw."""
        return [
            WitnessedHead(str(k), int(s), str(h), float(t))
            for k, s, h, t in self._q(
                "SELECT kiosk_id, seq, hash, reported_at FROM audit_witness ORDER BY kiosk_id"
            )
        ]

    def audit_length(self) -> int:
        """How many entries the audit log had at its last append (0: never initialised)."""
        rows = self._q("SELECT value FROM meta WHERE key = 'audit_length'")
        return int(rows[0][0]) if rows else 0

    def risk_version(self) -> int:
        return int(self._q("SELECT value FROM meta WHERE key = 'risk_version'")[0][0])

    def epochs(self, kiosk_id: str) -> list[EpochRow]:
        """(epoch, records, lowest seq, highest seq, sequence numbers used twice) per sequence
        epoch of a kiosk, oldest first: more than one epoch means the kiosk's database was
        reset (moved aside) in between; a reused number, that it re-issued one."""
        return [
            EpochRow(*(int(x) for x in r))
            for r in self._q(
                self._sql(
                    "SELECT epoch, count(*), min(seq), max(seq), count(*) - count(DISTINCT seq) FROM records "
                    "WHERE kiosk_id = ? GROUP BY epoch ORDER BY epoch"
                ),
                [kiosk_id],
            )
        ]

    def gaps(self, kiosk_id: str, epoch: int | None = None) -> list[Run]:
        """Runs of sequence numbers missing below the highest one received from a kiosk in
        one epoch (default: its latest): records it made that never arrived (or were set
        aside on it, or purged there before it was ever online). Purged on the server after
        arriving is not missing. From the runs ingest keeps, not a scan of the records."""
        if epoch is None:
            epoch = self._q(
                self._sql("SELECT max(epoch) FROM sequence_summary WHERE kiosk_id = ?"), [kiosk_id]
            )[0][0]
            if epoch is None:
                return []
        return [
            Run(int(lo), int(hi))
            for lo, hi in self._q(
                self._sql(
                    "SELECT low, high FROM sequence_gaps WHERE kiosk_id = ? AND epoch = ? ORDER BY low"
                ),
                [kiosk_id, epoch],
            )
        ]

    def poll_state(self, kiosk_id: str, now: float, until: float) -> PollState | None:
        """Everything a bundle poll's ETag is made of, for this kiosk and the tag keys between
        ``now`` and ``until``, in one query (None: no such kiosk)."""
        docs = (
            "FROM tag_keys t WHERE t.kiosk_id = k.kiosk_id AND t.valid_to > ? AND t.valid_from < ? "
            "AND t.doc IS NOT NULL"
        )
        gaps = "FROM sequence_gaps g WHERE g.kiosk_id = k.kiosk_id AND g.epoch = s.epoch"
        rows = self._q(
            self._sql(
                "SELECT k.public_key, k.revoked_at, (SELECT value FROM meta WHERE key = 'risk_version'), "
                "(SELECT max(version) FROM manifests), (SELECT value FROM meta WHERE key = 'audit_head'), "
                f"s.epoch, s.high, (SELECT count(*) {gaps}), (SELECT min(low) {gaps}), "
                f"(SELECT count(*) {docs}), (SELECT doc {docs} ORDER BY t.valid_from LIMIT 1), "
                f"(SELECT doc {docs} ORDER BY t.valid_from DESC LIMIT 1) "
                "FROM kiosks k LEFT JOIN (SELECT epoch, high FROM sequence_summary WHERE kiosk_id = ? "
                "ORDER BY epoch DESC LIMIT 1) s ON 1 = 1 WHERE k.kiosk_id = ?"
            ),
            [now, until, now, until, now, until, kiosk_id, kiosk_id],
        )
        if not rows:
            return None
        key, revoked, risk, manifest, head, epoch, high, n_gaps, first_gap, n_docs, first, last = rows[0]
        held = ""
        if epoch is not None:  # as stored_summary states it
            confirmed_high, named = confirmed(high, n_gaps, first_gap)
            held = f"{epoch}:{confirmed_high}:{named}"
        return PollState(
            bytes(key),
            revoked,
            int(risk),
            int(manifest) if manifest is not None else None,
            head,
            held,
            (int(n_docs), first or "", last or ""),
        )

    def stored_summary(self, kiosk_id: str) -> StoredSummary | None:
        """What the server holds of this kiosk's latest sequence epoch: the highest number and
        the runs below it that never arrived (at most 100), for its bundle's freshness
        statement: a kiosk deletes an uploaded record only once a bundle says it is held."""
        rows = self._q(
            self._sql(
                "SELECT epoch, high FROM sequence_summary WHERE kiosk_id = ? ORDER BY epoch DESC LIMIT 1"
            ),
            [kiosk_id],
        )
        if not rows:
            return None
        epoch, high = int(rows[0][0]), int(rows[0][1])
        runs = self.gaps(kiosk_id, epoch)
        high, named = confirmed(high, len(runs), runs[0][0] if runs else 0)
        return {"epoch": epoch, "high": high, "gaps": [[lo, hi] for lo, hi in runs[:named]]}

    def sequence_summary(self) -> list[SequenceSummary]:
        """Per kiosk and epoch, what was received: one indexed read of the aggregate that
        ingest keeps, however many records are held (what `status` shows)."""
        return [
            SequenceSummary(*r)
            for r in self._qr(
                "SELECT kiosk_id, epoch, received, distinct_seq, low, high FROM sequence_summary "
                "ORDER BY kiosk_id, epoch"
            )
        ]

    def _keep_sequences(
        self, execute, kiosk_id: str, rows: list[dict], held: dict[int, int], reused: set[tuple[int, int]]
    ) -> None:
        """In the ingest transaction, for the records a batch added (``rows``: their seq and
        epoch): the summary and the runs of missing numbers. ``held``: each epoch's highest
        number before the batch (its summary rows locked); ``reused``: (epoch, seq) pairs of
        these the server already held. ``execute(sql, params)`` runs one statement."""
        untagged: dict[int, int] = {}
        for r in rows:
            if r.get("tag") is None:
                day = int(float(r["captured_at"]) // DAY)
                untagged[day] = untagged.get(day, 0) + 1
        for day, n in sorted(untagged.items()):
            execute(
                self._sql(
                    "INSERT INTO untagged_days (kiosk_id, day, records) VALUES (?, ?, ?) "
                    "ON CONFLICT (kiosk_id, day) DO UPDATE SET "
                    "records = untagged_days.records + excluded.records"
                ),
                [kiosk_id, day, n],
            )
        for epoch, *change in self._summary_changes(rows, reused):
            execute(
                self._sql(
                    "INSERT INTO sequence_summary (kiosk_id, epoch, received, distinct_seq, low, high) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kiosk_id, epoch) DO UPDATE SET "
                    "received = sequence_summary.received + excluded.received, "
                    "distinct_seq = sequence_summary.distinct_seq + excluded.distinct_seq, "
                    "low = CASE WHEN excluded.low < sequence_summary.low THEN excluded.low "
                    "ELSE sequence_summary.low END, "
                    "high = CASE WHEN excluded.high > sequence_summary.high THEN excluded.high "
                    "ELSE sequence_summary.high END"
                ),
                [kiosk_id, epoch, *change],
            )
        self._update_gaps(execute, kiosk_id, rows, held)

    @staticmethod
    def _one_run(rows: list[dict]) -> tuple[int, int, int] | None:
        """(epoch, first, last) when a batch's records are one epoch's consecutive numbers in
        order, as a kiosk sends them: the bookkeeping then needs no loop over the records."""
        if not rows:
            return None
        epochs = [r.get("epoch", 0) for r in rows]
        epoch = epochs[0]
        if epochs.count(epoch) != len(epochs):
            return None
        seqs = [r["seq"] for r in rows]
        first = seqs[0]
        if not isinstance(first, int) or seqs != list(range(first, first + len(seqs))):
            return None
        return int(epoch), first, seqs[-1]

    @staticmethod
    def _summary_changes(rows: list[dict], reused: set[tuple[int, int]]) -> list[tuple]:
        """(epoch, received, new distinct, low, high) for the aggregate, from the records a
        batch adds; ``reused``: (epoch, seq) pairs of these that the server already holds."""
        run = SqlQueries._one_run(rows)
        if run is not None and not reused:
            epoch, first, last = run
            return [(epoch, len(rows), len(rows), first, last)]
        out: dict[int, list] = {}
        seen: set[tuple[int, int]] = set()
        for r in rows:
            epoch, seq = int(r.get("epoch", 0)), int(r["seq"])
            e = out.setdefault(epoch, [0, 0, seq, seq])
            e[0] += 1
            if (epoch, seq) not in seen and (epoch, seq) not in reused:
                e[1] += 1
            seen.add((epoch, seq))
            e[2], e[3] = min(e[2], seq), max(e[3], seq)
        return [(epoch, *v) for epoch, v in out.items()]

    def sequence_gaps(self, kiosk_id: str | None = None) -> list[GapRow]:
        """(kiosk, epoch, low, high) for every run of numbers never received."""
        where, params = (" WHERE kiosk_id = ?", [kiosk_id]) if kiosk_id else ("", [])
        return [
            GapRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]))
            for r in self._qr(
                self._sql(
                    "SELECT kiosk_id, epoch, low, high FROM sequence_gaps"
                    + where
                    + " ORDER BY kiosk_id, epoch, low"
                ),
                params,
            )
        ]

    def _update_gaps(self, execute, kiosk_id: str, rows: list[dict], held: dict[int, int]) -> None:
        """Keep sequence_gaps for the numbers a batch adds (in the ingest transaction, with
        the kiosk's summary row locked): numbers past the highest open new runs between
        them; numbers at or below it close the runs they fall in."""
        run = self._one_run(rows)
        if run is not None and run[1] > held.get(run[0], 0):  # the next numbers, in order
            epoch, first, _ = run
            if first > held.get(epoch, 0) + 1:
                execute(
                    self._sql("INSERT INTO sequence_gaps (kiosk_id, epoch, low, high) VALUES (?, ?, ?, ?)"),
                    [kiosk_id, epoch, held.get(epoch, 0) + 1, first - 1],
                )
            return
        by_epoch: dict[int, set[int]] = {}
        for r in rows:
            by_epoch.setdefault(int(r.get("epoch", 0)), set()).add(int(r["seq"]))
        for epoch, seqs in by_epoch.items():
            high = held.get(epoch, 0)
            new_runs, prev = [], high
            for q in sorted(x for x in seqs if x > high):
                if q > prev + 1:
                    new_runs.append((prev + 1, q - 1))
                prev = q
            late = sorted(x for x in seqs if x <= high)
            if late:
                runs = execute(
                    self._sql(
                        "SELECT low, high FROM sequence_gaps WHERE kiosk_id = ? AND epoch = ? "
                        "AND high >= ? AND low <= ?"
                    ),
                    [kiosk_id, epoch, late[0], late[-1]],
                )
                for low, hi in runs:
                    inside = [q for q in late if low <= q <= hi]
                    if not inside:
                        continue
                    execute(
                        self._sql("DELETE FROM sequence_gaps WHERE kiosk_id = ? AND epoch = ? AND low = ?"),
                        [kiosk_id, epoch, low],
                    )
                    start = low
                    for q in inside:
                        if q > start:
                            new_runs.append((start, q - 1))
                        start = q + 1
                    if start <= hi:
                        new_runs.append((start, hi))
            for low, hi in new_runs:
                execute(
                    self._sql("INSERT INTO sequence_gaps (kiosk_id, epoch, low, high) VALUES (?, ?, ?, ?)"),
                    [kiosk_id, epoch, low, hi],
                )

    @staticmethod
    def _to_probe(rows: list[dict], held: dict[int, int]) -> list[tuple[int, int]]:
        """The (epoch, seq) pairs that could be a reuse: at or below what was received."""
        run = SqlQueries._one_run(rows)
        if run is not None and run[1] > held.get(run[0], 0):
            return []
        return sorted(
            {
                (int(r.get("epoch", 0)), int(r["seq"]))
                for r in rows
                if int(r.get("epoch", 0)) in held and int(r["seq"]) <= held[int(r.get("epoch", 0))]
            }
        )

    def untagged_between(self, from_ts: float, to_ts: float) -> int:
        """Records without a search tag captured on the days the window touches (whole
        days: an upper bound), from the aggregate ingest keeps: time grows with the days,
        not with the records."""
        rows = self._qr(
            self._sql("SELECT sum(records) FROM untagged_days WHERE day >= ? AND day <= ?"),
            [int(from_ts // DAY), int((to_ts - 1e-6) // DAY)],
        )
        return int(rows[0][0] or 0)

    def untagged_by_kiosk(self) -> dict[str, int]:
        """Records held without a search tag, per kiosk (days within the longest retention)."""
        return {
            str(k): int(n)
            for k, n in self._qr("SELECT kiosk_id, sum(records) FROM untagged_days GROUP BY kiosk_id")
        }

    def _hold_clause(self, now: float) -> tuple[str, list]:
        """The purge's exception for open cases: a record a case's trace or opening touched
        (the held table) is kept until the case closes, never past the longest retention."""
        keep = self._sql(
            " AND NOT (captured_at > ? AND EXISTS "
            "(SELECT 1 FROM held h WHERE h.record_id = records.record_id))"
        )
        return keep, [now - HOLD_MAX_S]

    def held_days(self) -> dict[int, bool]:
        """The days (since 1970) of held records, each with whether one of them was sealed with
        an older key than its day's: `keys retire` keeps those days' keys (and, for such a
        record, the keys before it). The server knows no record's key."""
        days: dict[int, bool] = {}
        for at, fallback in self._q("SELECT captured_at, seal_fallback FROM held"):
            day = int(float(at) // DAY)
            days[day] = days.get(day, False) or bool(fallback)
        return days

    def held_rows(self, case_id: str | None = None) -> list[HeldRow]:
        """(case id, record id, capture time) of the records cases hold (one case's, or all)."""
        if case_id is None:
            rows = self._q("SELECT case_id, record_id, captured_at FROM held")
        else:
            rows = self._q(
                self._sql("SELECT case_id, record_id, captured_at FROM held WHERE case_id = ?"), [case_id]
            )
        return [HeldRow(str(c), str(r), float(t)) for c, r, t in rows]

    def held_count(self, case_id: str | None = None) -> int:
        if case_id is None:
            return int(self._q("SELECT count(*) FROM held")[0][0])
        return int(self._q(self._sql("SELECT count(*) FROM held WHERE case_id = ?"), [case_id])[0][0])
