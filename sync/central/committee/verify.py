"""The committee's log verified against everything that witnesses it: one function for every
command, the server and the tests.

A log verifies when every link and signature holds and every entry keeps the committee's
rules (:mod:`sync.central.committee.audit`), when it still extends the head this machine
verified last and every head a kiosk reported (:mod:`sync.central.committee.witness`), and
when the store holds what the log says (:mod:`sync.central.committee.storecheck`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.central.committee.audit import AuditError, Entry, State
from sync.central.committee.members import read_log
from sync.central.committee.storecheck import store_problems
from sync.central.committee.witness import check_extends, check_reported
from sync.central.storage.interface import CommitteeLog, Storage

SHOWN = 5  # problems named in one message; the rest counted


@dataclass(frozen=True)
class Verified:
    """The log as read once: its entries and their verified state."""

    entries: list[Entry]
    state: State


def witnessed_log(storage: CommitteeLog, *, store: str | None) -> Verified:
    """The verified log, refused (AuditError) if it is shorter than what this machine (for the
    store named ``store``) or any kiosk saw of it: what every command that acts on the log
    checks first."""
    entries, state = read_log(storage)
    if store is not None:
        check_extends(store, entries)
    seen = check_reported(entries, storage.witnessed_heads())
    if seen:
        raise AuditError(
            f"tampering: {seen[0]}: the log's tail was deleted or rewritten; every command refuses until "
            "it is restored from a backup"
        )
    return Verified(entries, state)


def verify_store(storage: Storage, *, store: str | None, now: float, head: str | None = None) -> Verified:
    """Everything `audit verify` checks, or AuditError naming what fails (the first few): the
    log itself (and the published ``head`` in it), the heads this machine and the kiosks
    saw, and that the store holds what the log says."""
    entries, state = read_log(storage, head=head)
    problems = []
    if store is not None:
        check_extends(store, entries)
    problems += check_reported(entries, storage.witnessed_heads())
    problems += store_problems(state, storage, now=now)  # changes made around the log
    if problems:
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise AuditError("; ".join(problems[:SHOWN]) + more)
    return Verified(entries, state)
