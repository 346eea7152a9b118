"""The authority's storage interface, by concern: what the server, the committee's commands
and the tools ask of the store, in five parts (kiosks and their tag keys, records, the
committee's log, the documents relayed to kiosks, the fleet's health), each a Protocol a
caller can ask for alone; :class:`Storage` is all five, which both backends (SQLite for a
pilot, PostgreSQL for a country) provide. Rows come back typed (:mod:`rows`). Opening a
store is :mod:`sync.central.storage.opening`'s. Records stay sealed: the server never holds
the committee's private key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.core.retention import NORMAL_DAYS, SIGNIFICANT_DAYS
from kiosk.core.timing import DAY
from sync.central.storage.rows import (
    AuditRow,
    Enrolled,
    EnrolmentToken,
    EpochRow,
    FleetPoint,
    GapRow,
    HeldRow,
    IngestResult,
    KioskHeard,
    KioskInfo,
    KioskSeen,
    KioskTagKey,
    PollState,
    PurgeResult,
    ReadRow,
    RecordRow,
    Run,
    SequenceSummary,
    StatementRow,
    StoredSummary,
    TagKeyDoc,
    TagKeyRow,
    VersionedDoc,
    WitnessedHead,
)

# One entry of the log as ``audit_append`` builds it: (seq, previous hash) -> (entry, hash, signature).
EntryBuilder = Callable[[int, str], tuple[str, str, str | None]]


@dataclass(frozen=True)
class ServerRetention:
    """What the server keeps, and for how long, whatever a kiosk says. It does not know a
    record's class (issue 33): every record's row goes ``significant_days`` after its capture
    (a normal one is unreadable from ``normal_days`` on: `keys retire` destroys its key);
    ``normal_days`` bounds the bookkeeping (upload receipts). A capture time further in the
    future than ``future_skew_s`` or older than the longest retention is refused."""

    normal_days: int = NORMAL_DAYS
    significant_days: int = SIGNIFICANT_DAYS
    future_skew_s: int = 3600

    @property
    def record_max_s(self) -> float:
        """How long after its capture any record's row is kept."""
        return float(self.significant_days * DAY)

    def capture_problem(self, captured_at: float, *, now: float) -> str | None:
        if captured_at > now + self.future_skew_s:
            return (
                f"capture time {captured_at:.0f} is more than {self.future_skew_s} s ahead of "
                "the server's clock (the kiosk's clock is wrong)"
            )
        if captured_at <= now - self.significant_days * DAY:
            return (
                f"capture time {captured_at:.0f} is older than the longest retention "
                f"({self.significant_days} days): it must already be deleted"
            )
        return None


class RecordIdConflict(Exception):
    """Record ids already held for another kiosk: refused, never taken as duplicates (a
    kiosk uploading another's ids would otherwise make the victim mark its records synced)."""

    def __init__(self, record_ids: list[str]):
        super().__init__(f"{len(record_ids)} record ids are held for another kiosk")
        self.record_ids = record_ids


class KioskRegistry(Protocol):
    """The kiosks the authority registered, and the search-tag keys sealed to each."""

    def register_kiosk(
        self, *, venue: str, public_key: bytes, now: float, tag_public: bytes | None = None
    ) -> str: ...
    def revoke_kiosk(self, kiosk_id: str, *, now: float) -> bool: ...
    def kiosk(self, kiosk_id: str) -> KioskInfo | None: ...
    def kiosks(self) -> list[KioskInfo]: ...
    def put_tag_keys(self, rows: Sequence[TagKeyRow]) -> int: ...
    def tag_key_rows(self, now: float) -> list[TagKeyRow]: ...
    def replace_tag_key_docs(self, rows: Sequence[TagKeyDoc]) -> int: ...
    def tag_keys_for(self, kiosk_id: str, now: float) -> list[KioskTagKey]: ...
    def tag_key_docs(self, kiosk_id: str, now: float, *, until: float | None = None) -> list[str]: ...
    def drop_spent_tag_keys(self, *, now: float) -> int:
        """Delete the tag keys of days already over (serve, every minute)."""
        ...

    def put_enrolment_token(self, token: EnrolmentToken, tag_keys: Sequence[TagKeyRow]) -> None: ...
    def enrolment_token(self, token: str) -> EnrolmentToken | None: ...
    def enrolment_tokens(self) -> list[EnrolmentToken]: ...
    def enrol_kiosk(self, token: str, *, public_key: bytes, tag_public: bytes, now: float) -> Enrolled: ...


class RecordStore(Protocol):
    """The sealed check-ins, what arrived of each kiosk's numbers, and their deletion."""

    retention: ServerRetention

    def ingest(
        self, kiosk_id: str, batch_id: str, records: list[dict[str, Any]], *, now: float
    ) -> IngestResult: ...
    def record_ids(self, kiosk_id: str | None = None) -> list[str]: ...
    def records_between(
        self, kiosk_id: str | None, from_ts: float | None, to_ts: float | None
    ) -> list[RecordRow]: ...
    def records_by_tags(
        self, tags: Mapping[tuple[float, float], Sequence[str]], from_ts: float, to_ts: float
    ) -> list[RecordRow]:
        """The records carrying one of each day's tags ((valid_from, valid_to) -> tags) within
        that day and the window, in time order."""
        ...

    def gaps(self, kiosk_id: str, epoch: int | None = None) -> list[Run]: ...
    def epochs(self, kiosk_id: str) -> list[EpochRow]: ...
    def sequence_summary(self) -> list[SequenceSummary]: ...
    def stored_summary(self, kiosk_id: str) -> StoredSummary | None: ...
    def poll_state(self, kiosk_id: str, now: float, until: float) -> PollState | None: ...
    def sequence_gaps(self, kiosk_id: str | None = None) -> list[GapRow]: ...
    def untagged_between(self, from_ts: float, to_ts: float) -> int: ...
    def untagged_by_kiosk(self) -> dict[str, int]: ...
    def purge(self, *, now: float) -> PurgeResult: ...
    def ensure_partitions(self, *, now: float) -> int: ...


class CommitteeLog(Protocol):
    """The committee's hash-chained log, what kiosks saw of it, and what it opened: the
    readings and the records an open case holds."""

    def audit_entries(self) -> list[AuditRow]: ...
    def audit_append(self, build: EntryBuilder) -> AuditRow: ...
    def audit_append_statement(
        self, build: EntryBuilder, statement_id: str, doc: str, *, expires_at: float
    ) -> int: ...
    def audit_length(self) -> int: ...
    def audit_head_doc(self) -> dict[str, Any] | None: ...
    def report_head(self, kiosk_id: str, seq: int, hash_: str, *, now: float) -> None: ...
    def witnessed_heads(self) -> list[WitnessedHead]: ...
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
    ) -> int: ...
    def reads(self) -> list[ReadRow]: ...
    def hold_records(self, case_id: str, rows: Sequence[RecordRow]) -> None: ...
    def release_holds(self, case_id: str) -> int: ...
    def held_days(self) -> dict[int, bool]: ...
    def held_count(self, case_id: str | None = None) -> int: ...
    def held_rows(self, case_id: str | None = None) -> list[HeldRow]: ...


class RelayedDocuments(Protocol):
    """What the server relays and cannot change: the root's manifests, the members' risk
    statements (the risk list), the committee's exposure lists."""

    def put_manifest(self, version: int, doc: str, *, now: float) -> None:
        """Keep a root-signed manifest (the committee's machine publishes it); refuses a
        version not newer than the newest held."""
        ...

    def latest_manifest(self) -> VersionedDoc | None: ...
    def manifest_docs(self) -> list[VersionedDoc]: ...
    def succession_manifests(self) -> list[str]:
        """The manifests that named a next root, oldest first (carried in every bundle)."""
        ...

    def add_statement(self, statement_id: str, doc: str, *, expires_at: float, now: float) -> int:
        """Keep a member-signed risk statement; returns the risk list's new version."""
        ...

    def statements(self, *, now: float, since: int | None = None) -> tuple[int, list[str]] | None:
        """(version, statement docs): those not expired, or those changed after ``since``
        (None when ``since`` is older than what is kept: the kiosk gets the whole list)."""
        ...

    def statement_rows(self) -> list[StatementRow]: ...
    def risk_version(self) -> int: ...
    def put_update(
        self, roots: Sequence[tuple[str, str]], targets: str, files: dict[str, bytes], *, now: float
    ) -> None:
        """A release the committee signed (TUF root versions to add, the new targets, the
        files they list): the files of an earlier release go, in the same transaction."""
        ...

    def update_doc(self, name: str) -> str | None: ...
    def update_root_version(self) -> int: ...
    def update_target(self, path: str) -> bytes | None: ...
    def put_exposure_list(self, version: int, doc: str, *, expires_at: float, now: float) -> None:
        """Keep a member-signed exposure list (older ones go); refuses one not newer."""
        ...

    def latest_exposure_list(self, *, now: float) -> VersionedDoc | None: ...


class FleetHealth(Protocol):
    """When each kiosk was last heard from, what it said of itself, and the fleet over time."""

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
        """A kiosk's authenticated request: when, its clock's distance from ours, the health
        summary it signed (None: keep the last one) made at ``summary_at`` (default ``now``;
        kept only if later than the one held: a replayed older one changes nothing), and
        whether it uploaded."""
        ...

    def kiosks_seen(self) -> dict[str, KioskSeen]: ...
    def kiosk_heard(self, kiosk_id: str) -> KioskHeard:
        """What was last heard from one kiosk: seen, uploaded, health, its latest epoch."""
        ...

    def add_fleet_snapshot(self, at: float, counts: str) -> None: ...
    def fleet_history(self, *, since: float) -> list[FleetPoint]: ...
    def upload_lags(self, *, since: float) -> list[float]: ...


class Storage(KioskRegistry, RecordStore, CommitteeLog, RelayedDocuments, FleetHealth, Protocol):
    """The whole store, as `serve` and the commands open it."""

    def close(self) -> None: ...
