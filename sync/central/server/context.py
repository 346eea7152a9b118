"""What every route needs, made once per app and handed in (FastAPI dependency): the storage,
the authority's keys, the clock, the metrics and the ingest gate."""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from kiosk.core.keys import raw_public
from sync.central.server.authority_keys import Authority
from sync.central.server.metrics import Metrics
from sync.central.storage.interface import Storage

POLL_LANE_THREADS = 4
INGEST_LANE_THREADS = 8  # at most ingest_slots of them are busy at once (the gate)
INGEST_NICE = 10
_WRITER_LOCK = threading.Lock()


def _lower_priority() -> None:
    """This thread's scheduling priority lowered (Linux: niceness is per thread)."""
    import os

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INGEST_NICE)
    except (OSError, AttributeError):  # not Linux, or not allowed: the same priority as the rest
        pass


@dataclass(frozen=True)
class ServerContext:
    storage: Storage
    authority: Authority
    clock: Callable[[], float]
    metrics: Metrics
    # Batches parsed and stored at once by this process: more uploads wait their turn without
    # holding a thread, so bundle polls and health checks are never queued behind a burst.
    ingest_gate: asyncio.Semaphore
    keys_fingerprint: str
    _succession: dict[int, list[str]] = field(default_factory=dict)  # by the newest manifest version
    _manifest: dict[int, tuple[int, str] | None] = field(default_factory=dict)  # newest -> served

    def manifest(self) -> tuple[int, str] | None:
        """The manifest to relay: the newest the root (and its successors) signed. One written
        into the store around the committee (a junk or forged one) is skipped and said, so it
        cannot stop every kiosk's bundle; `audit verify` names it too."""
        import logging

        from kiosk.core.manifest import ManifestError
        from kiosk.core.roots import RootHistory

        latest = self.storage.latest_manifest()
        if latest is None or self.authority.root_public is None:
            return latest
        if latest[0] in self._manifest:
            return self._manifest[latest[0]]
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        history = RootHistory.pinned(Ed25519PublicKey.from_public_bytes(self.authority.root_public))
        history = history.extend(self.storage.succession_manifests())
        chosen = None
        for version, doc in reversed(self.storage.manifest_docs()):
            try:
                history.verify(doc)
            except ManifestError as e:
                logging.getLogger("kiosk-central").error(
                    "manifest version %d in the store does not verify (%s): not relayed; "
                    "`kiosk-central audit verify` names what was written around the committee",
                    version,
                    e,
                )
                self.metrics.rejected.labels(reason="bad_manifest").inc()
                continue
            chosen = (version, doc)
            break
        self._manifest.clear()
        self._manifest[latest[0]] = chosen
        return chosen

    def manifest_of(self, newest: int | None) -> tuple[int, str] | None:
        """The manifest to relay when ``newest`` is the newest version stored: from memory
        once it was checked (a poll reads only the version)."""
        if newest is None:
            return None
        if newest in self._manifest:
            return self._manifest[newest]
        return self.manifest()

    # Batches are parsed and stored on threads of their own, niced: when the machine is busy,
    # the event loop and the polls get the CPU first (uploads may wait; polls must not).
    ingest_lane: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            INGEST_LANE_THREADS, thread_name_prefix="ingest", initializer=_lower_priority
        )
    )
    # Polls run on threads of their own (the poll lane), never queued behind uploads.
    poll_lane: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(POLL_LANE_THREADS, thread_name_prefix="poll")
    )
    _writes: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _writer: list[threading.Thread] = field(default_factory=list)

    def later(self, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Run ``fn`` on the writer thread, after the answer: what a poll tells of the kiosk
        (seen, its health, the audit head it saw) is written without the poll waiting on it."""
        if not self._writer:
            with _WRITER_LOCK:
                if not self._writer:
                    t = threading.Thread(target=self._write_loop, name="seen-writer", daemon=True)
                    t.start()
                    self._writer.append(t)
        self._writes.put((fn, args, kwargs))

    def _write_loop(self) -> None:
        import logging

        while True:
            item = self._writes.get()
            if item is None:
                return
            fn, args, kwargs = item
            try:
                fn(*args, **kwargs)
            except Exception as e:  # a database gone for a moment: the next poll says it again
                logging.getLogger("kiosk-central").warning("a poll's report not written: %s", e)

    def flush(self, timeout_s: float = 5.0) -> None:
        """Write what is waiting, then stop the writer (at shutdown)."""
        if self._writer:
            self._writes.put(None)
            self._writer[0].join(timeout_s)
            self._writer.clear()
        self.poll_lane.shutdown(wait=False)
        self.ingest_lane.shutdown(wait=False)

    _probe: dict[str, object] = field(default_factory=dict)

    def probe(self):
        """A future for one small read of the database, on a thread of its own; the running
        one if a probe is still waiting (a database that hangs costs one thread, not many)."""
        import concurrent.futures

        running = self._probe.get("future")
        if running is not None and not running.done():  # type: ignore[attr-defined]
            return running
        pool = self._probe.get("pool")
        if pool is None:
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="healthz")
            self._probe["pool"] = pool
        future = pool.submit(self.storage.risk_version)  # type: ignore[attr-defined]
        self._probe["future"] = future
        return future

    def succession(self, manifest_version: int) -> list[str]:
        """The hand-over manifests bundles carry, read again only when a newer manifest is."""
        held = self._succession.get(manifest_version)
        if held is None:
            held = self.storage.succession_manifests()
            self._succession.clear()
            self._succession[manifest_version] = held
        return held

    @classmethod
    def make(
        cls, storage: Storage, authority: Authority, *, clock: Callable[[], float], ingest_slots: int
    ) -> ServerContext:
        fingerprint = hashlib.sha256(
            raw_public(authority.bundle_key.public_key()) + raw_public(authority.receipt_key.public_key())
        ).hexdigest()[:16]
        return cls(
            storage, authority, clock, Metrics(storage, clock), asyncio.Semaphore(ingest_slots), fingerprint
        )


def server_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(server_context)]
