"""What every route needs, made once per app and handed in (FastAPI dependency): the storage,
the authority's keys, the clock, the metrics and the ingest gate."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from kiosk.core.keys import raw_public
from sync.central.server.authority_keys import Authority
from sync.central.server.metrics import Metrics
from sync.central.storage.interface import Storage


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
