"""What the authority's store hands back, as typed records: one for each kind of row, named
for what it holds (NamedTuples where a row is a few values, TypedDicts where it is a record
with many fields), so that callers read ``row.kiosk_id``, never ``row[3]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypedDict


# -- kiosks and their tag keys --------------------------------------------------------------------
@dataclass(frozen=True)
class KioskInfo:
    kiosk_id: str
    venue: str
    public_key: bytes
    registered_at: float
    revoked_at: float | None
    tag_public: bytes | None = None


class TagKeyRow(NamedTuple):
    """One kiosk's search-tag key for a day, sealed to it, with the root-signed document."""

    kiosk_id: str
    valid_from: float
    valid_to: float
    sealed: bytes
    doc: str


@dataclass(frozen=True)
class Enrolled:
    """What an enrolment came to: ``ok`` (the kiosk is registered under ``kiosk_id``; also
    for the same device asking again), or why not: unknown, used, expired, key_in_use."""

    outcome: str
    kiosk_id: str = ""


class EnrolmentToken(NamedTuple):
    """An enrolment token the committee made: its lookup, the kiosk id it gives, the venue,
    its times, the root-signed document; when it was used (None: not yet)."""

    token: str
    kiosk_id: str
    venue: str
    issued_at: float
    expires_at: float
    doc: str
    used_at: float | None


class TagKeyDoc(NamedTuple):
    """A tag key's document signed again (a root succession)."""

    kiosk_id: str
    valid_from: float
    doc: str


class KioskTagKey(NamedTuple):
    """One kiosk's tag key of a period, sealed to it."""

    valid_from: float
    valid_to: float
    sealed: bytes


# -- records ----------------------------------------------------------------------------------------
class RecordRow(TypedDict):
    """A sealed check-in as the server holds it (what the committee opens)."""

    record_id: str
    kiosk_id: str
    seq: int
    captured_at: float
    clock_synced: bool | int
    seal_fallback: bool  # sealed with an older key than its day's (a kiosk offline past its keys)
    sealed: bytes


@dataclass(frozen=True)
class IngestResult:
    accepted: list[str]
    duplicates: list[str]


@dataclass(frozen=True)
class PurgeResult:
    """What a purge deleted. The server cannot tell a normal record from a significant one
    (issue 33), so records are one count."""

    records: int = 0
    batches: int = 0
    risk_entries: int = 0

    def summary(self) -> str:
        return (
            f"purged {self.records} records (past the longest retention from capture), "
            f"{self.batches} batches, {self.risk_entries} expired risk entries"
        )


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


class Run(NamedTuple):
    """A run of sequence numbers that never arrived."""

    low: int
    high: int


class GapRow(NamedTuple):
    kiosk_id: str
    epoch: int
    low: int
    high: int


class EpochRow(NamedTuple):
    """What arrived of one sequence epoch of a kiosk."""

    epoch: int
    records: int
    low: int
    high: int
    reused: int  # numbers used twice


@dataclass(frozen=True)
class PollState:
    """What a kiosk's bundle poll needs to answer 304, read in one round trip: who the kiosk
    is (its key, whether revoked) and every version its bundle's ETag is made of."""

    public_key: bytes
    revoked_at: float | None
    risk_version: int
    manifest_version: int | None  # the newest stored (the served one is the newest that verifies)
    audit_head: str | None  # meta's audit_head (JSON), as bundles carry it
    held: str  # epoch:high:gaps of what the server holds of the kiosk's latest epoch, or ""
    tag_docs: tuple[int, str, str]  # how many of its tag-key docs apply, the first, the last


class StoredSummary(TypedDict):
    """What the server holds of a kiosk's latest epoch, as its bundle states it."""

    epoch: int
    high: int
    gaps: list[list[int]]


# -- the committee's log, its readings and holds ------------------------------------------------------
class AuditRow(NamedTuple):
    entry: str  # canonical JSON
    hash: str
    signature: str | None


class WitnessedHead(NamedTuple):
    """The highest audit head a kiosk reported."""

    kiosk_id: str
    seq: int
    hash: str
    reported_at: float


class ReadRow(TypedDict):
    """One reading (or trace) of records, as the reads table keeps it."""

    read_id: int
    read_at: float
    reader: str
    case_id: str
    kiosk_id: str | None
    from_ts: float | None
    to_ts: float | None
    records: int
    kind: str


class HeldRow(NamedTuple):
    case_id: str
    record_id: str
    captured_at: float


# -- documents relayed: manifests, risk statements, exposure lists ------------------------------------
class VersionedDoc(NamedTuple):
    version: int
    doc: str


class StatementRow(NamedTuple):
    statement_id: str
    doc: str
    expires_at: float


# -- the fleet's health -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KioskSeen:
    kiosk_id: str
    seen_at: float
    last_upload_at: float | None
    skew_s: float
    summary: str | None
    summary_at: float | None


class FleetPoint(NamedTuple):
    at: float
    counts: str  # JSON


class KioskHeard(TypedDict, total=False):
    """What the server last heard from one kiosk (its own doctor asks)."""

    seen_at: float | None
    last_upload_at: float | None
    health_at: float | None
    epoch: int | None
    received: int
    highest_seq: int
    missing: int


def record_row(row: tuple) -> RecordRow:
    """A records row as both backends select it (record_id, kiosk_id, seq, captured_at,
    clock_synced, seal_fallback, sealed)."""
    return {
        "record_id": str(row[0]),
        "kiosk_id": str(row[1]),
        "seq": int(row[2]),
        "captured_at": float(row[3]),
        "clock_synced": int(row[4]),
        "seal_fallback": bool(row[5]),
        "sealed": bytes(row[6]),
    }
