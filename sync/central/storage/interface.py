"""The authority's storage interface: every method the server, the committee's commands and
the tools call is named here, and both backends (SQLite for a pilot, PostgreSQL for a country)
provide all of them. Records stay sealed: the server never holds the committee's private key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.core.retention import NORMAL_DAYS, SIGNIFICANT_DAYS
from kiosk.core.timing import DAY


@dataclass(frozen=True)
class ServerRetention:
    """What the server keeps, and for how long, whatever a kiosk says: a record's deletion
    time is its capture time plus its class's days; a capture time further in the future
    than ``future_skew_s`` or older than the longest retention is refused."""

    normal_days: int = NORMAL_DAYS
    significant_days: int = SIGNIFICANT_DAYS
    future_skew_s: int = 3600

    def days(self, retention: str) -> int:
        return self.significant_days if retention == "significant" else self.normal_days

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


@dataclass(frozen=True)
class PurgeResult:
    normal: int = 0
    significant: int = 0
    batches: int = 0
    risk_entries: int = 0

    @property
    def records(self) -> int:
        return self.normal + self.significant

    def summary(self) -> str:
        return (
            f"purged {self.records} records ({self.normal} normal, {self.significant} "
            f"significant), {self.batches} batches, {self.risk_entries} expired risk entries"
        )


@dataclass(frozen=True)
class KioskInfo:
    kiosk_id: str
    venue: str
    public_key: bytes
    registered_at: float
    revoked_at: float | None
    tag_public: bytes | None = None


class RecordIdConflict(Exception):
    """Record ids already held for another kiosk: refused, never taken as duplicates (a
    kiosk uploading another's ids would otherwise make the victim mark its records synced)."""

    def __init__(self, record_ids: list[str]):
        super().__init__(f"{len(record_ids)} record ids are held for another kiosk")
        self.record_ids = record_ids


@dataclass(frozen=True)
class IngestResult:
    accepted: list[str]
    duplicates: list[str]


class Storage(Protocol):
    retention: ServerRetention

    def register_kiosk(
        self, *, venue: str, public_key: bytes, now: float, tag_public: bytes | None = None
    ) -> str: ...
    def put_tag_keys(self, rows: list[tuple[str, float, float, bytes, str]]) -> int: ...
    def tag_key_rows(self, now: float) -> list[tuple[str, float, float, bytes, str]]: ...
    def replace_tag_key_docs(self, rows: list[tuple[str, float, str]]) -> int: ...
    def kiosk_contacts(self) -> list[tuple[str, float, float | None]]: ...
    def tag_keys_for(self, kiosk_id: str, now: float) -> list[tuple[float, float, bytes]]: ...
    def records_by_tags(self, tags: list[str], from_ts: float, to_ts: float) -> list[dict[str, Any]]: ...
    def revoke_kiosk(self, kiosk_id: str, *, now: float) -> bool: ...
    def kiosk(self, kiosk_id: str) -> KioskInfo | None: ...
    def kiosks(self) -> list[KioskInfo]: ...
    def ingest(
        self, kiosk_id: str, batch_id: str, records: list[dict[str, Any]], *, now: float
    ) -> IngestResult: ...
    def put_manifest(self, version: int, doc: str, *, now: float) -> None:
        """Keep a root-signed manifest (the committee's machine publishes it); refuses a
        version not newer than the newest held."""
        ...

    def latest_manifest(self) -> tuple[int, str] | None: ...
    def manifest_docs(self) -> list[tuple[int, str]]: ...
    def statement_rows(self) -> list[tuple[str, str, float]]: ...
    def succession_manifests(self) -> list[str]:
        """The manifests that named a next root, oldest first (carried in every bundle)."""
        ...

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

    def kiosks_seen(self) -> dict[str, Any]: ...
    def kiosk_heard(self, kiosk_id: str) -> dict[str, Any]:
        """What was last heard from one kiosk: seen, uploaded, health, its latest epoch."""
        ...

    def add_fleet_snapshot(self, at: float, counts: str) -> None: ...
    def fleet_history(self, *, since: float) -> list[tuple[float, str]]: ...
    def upload_lags(self, *, since: float) -> list[float]: ...
    def put_exposure_list(self, version: int, doc: str, *, expires_at: float, now: float) -> None:
        """Keep a member-signed exposure list (older ones go); refuses one not newer."""
        ...

    def latest_exposure_list(self, *, now: float) -> tuple[int, str] | None: ...
    def add_statement(self, statement_id: str, doc: str, *, expires_at: float, now: float) -> int:
        """Keep a member-signed risk statement; returns the risk list's new version."""
        ...

    def statements(self, *, now: float, since: int | None = None) -> tuple[int, list[str]] | None:
        """(version, statement docs): those not expired, or those changed after ``since``
        (None when ``since`` is older than what is kept: the kiosk gets the whole list)."""
        ...

    def risk_version(self) -> int: ...
    def audit_length(self) -> int: ...
    def tag_key_docs(self, kiosk_id: str, now: float, *, until: float | None = None) -> list[str]: ...
    def audit_head_doc(self) -> dict[str, Any] | None: ...
    def report_head(self, kiosk_id: str, seq: int, hash_: str, *, now: float) -> None: ...
    def witnessed_heads(self) -> list[tuple[str, int, str, float]]: ...
    def record_ids(self, kiosk_id: str | None = None) -> list[str]: ...
    def gaps(self, kiosk_id: str, epoch: int | None = None) -> list[tuple[int, int]]: ...
    def epochs(self, kiosk_id: str) -> list[tuple[int, int, int, int, int]]: ...
    def records_between(
        self, kiosk_id: str | None, from_ts: float | None, to_ts: float | None
    ) -> list[dict[str, Any]]: ...
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
    def reads(self) -> list[dict[str, Any]]: ...
    def audit_entries(self) -> list[tuple[str, str, str | None]]: ...
    def audit_append(self, build: Callable[[int, str | None], Any]) -> tuple[str, str, str | None]: ...

    def audit_append_statement(
        self, build: Any, statement_id: str, doc: str, *, expires_at: float
    ) -> int: ...
    def purge(self, *, now: float) -> PurgeResult: ...

    def hold_records(self, case_id: str, rows: Sequence[dict[str, Any]]) -> None: ...

    def release_holds(self, case_id: str) -> int: ...

    def held_kids(self) -> set[str]: ...

    def held_count(self, case_id: str | None = None) -> int: ...
    def held_rows(self, case_id: str | None = None) -> list[tuple[str, str, float]]: ...
    def sequence_summary(self) -> list[SequenceSummary]: ...
    def stored_summary(self, kiosk_id: str) -> dict[str, Any] | None: ...
    def sequence_gaps(self, kiosk_id: str | None = None) -> list[tuple[str, int, int, int]]: ...
    def untagged_between(self, from_ts: float, to_ts: float) -> int: ...

    def untagged_by_kiosk(self) -> dict[str, int]: ...
    def ensure_partitions(self, *, now: float) -> int: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class SequenceSummary:
    kiosk_id: str
    epoch: int
    received: int  # records received (purged ones included; duplicates not)
    distinct_seq: int  # distinct sequence numbers among them
    low: int
    high: int

    @property
    def missing(self) -> int:
        """Numbers below the highest that never arrived."""
        return self.high - self.distinct_seq

    @property
    def reused(self) -> int:
        """Numbers that arrived on more than one record."""
        return self.received - self.distinct_seq
