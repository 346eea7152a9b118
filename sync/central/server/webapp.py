"""The reference central server (FastAPI): receives kiosks' sealed check-ins, serves their
signed bundle. The wire is described in :mod:`sync.protocol`; storage in :mod:`sync.central.storage.sqlite_backend`.

Every rejection is a 4xx with ``{"error": code, "detail": text}`` and stores nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import socket
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from kiosk.core.bundle import bundle_payload, sign_bundle
from kiosk.core.decision import Policy
from kiosk.core.faults import Fault
from kiosk.core.recordids import placed
from kiosk.core.timing import REQUEST_SKEW_S
from kiosk.core.sealkeys import SealedTagKey
from kiosk.core.keys import (BUNDLE_KEY, ISSUER_PUB, SEALING_PUB, load_ed25519_private,
                        load_ed25519_public, load_x25519_public, raw_public, sealing_kid)
from sync import protocol
from sync.central.storage.interface import RecordIdConflict, Storage

log = logging.getLogger("kiosk-central")

TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")      # ASCII digits only: never int('²'), never 5000 digits
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
BASE64_RE = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
KID_RE = r"^[0-9A-Za-z._-]+$"


def _integral(value):
    """JSON has one number type: 7.0 is the integer 7 (as JSON Schema says), 7.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict otherwise: "7" and true are not integers.
JsonInt = Annotated[int, BeforeValidator(_integral)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    record_id: str = Field(pattern=UUID_RE, description="a UUID; a version-7 one must carry the "
                                                        "record's capture time (else 400 malformed)")
    seq: JsonInt = Field(ge=1, lt=2**63)
    epoch: JsonInt = Field(default=0, ge=0, lt=2**63)   # the kiosk database's sequence epoch
    captured_at: float = Field(ge=0, allow_inf_nan=False)
    clock_synced: bool
    retention: Literal["normal", "significant"]
    delete_after: float = Field(ge=0, allow_inf_nan=False)   # the kiosk's say: not used
    seal_kid: str = Field(min_length=1, max_length=64, pattern=KID_RE)
    sealed: str = Field(min_length=4, max_length=8192, pattern=BASE64_RE)
    seal_fallback: bool = False     # no period key covered the capture time on the kiosk
    tag: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")   # search tag, if any


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    batch_id: str = Field(pattern=UUID_RE)
    records: list[Record] = Field(min_length=1, max_length=protocol.MAX_RECORDS)


class Accepted(BaseModel):
    batch_id: str
    accepted: list[str]
    duplicates: list[str]


class ErrorBody(BaseModel):
    """Every 4xx: nothing of the request was stored."""
    error: str = Field(description="a code: malformed, too_large, bad_capture_time, "
                                   "record_id_conflict, bad_signature, unknown_kiosk, revoked, "
                                   "stale_timestamp")
    detail: str
    server_time: int | None = Field(default=None, description="with stale_timestamp")


def _errors(*pairs) -> dict:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {str(s): {"description": d, "content": {"application/json": {"schema": schema}}}
            for s, d in pairs}


AUTH_ERRORS = (("401", "unknown kiosk, bad signature or stale timestamp (then with server_time)"),
               ("403", "kiosk revoked"))


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra):
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


@dataclass(frozen=True)
class Authority:
    """What the server signs bundles with and hands to kiosks."""

    bundle_key: Ed25519PrivateKey
    issuer_keys: tuple[Ed25519PublicKey, ...]
    sealing_keys: tuple[tuple[str, bytes], ...]
    policy: Policy = Policy()
    sealing_periods: tuple = ()          # kiosk.core.sealkeys.PeriodKey, from sealing-periods.json

    def periods_at(self, now: float) -> tuple:
        """The period keys a kiosk needs: every period not yet over."""
        return tuple(k for k in self.sealing_periods if k.valid_to > now)

    @classmethod
    def from_dir(cls, keys_dir: Path, *, policy: Policy = Policy()) -> "Authority":
        keys_dir = Path(keys_dir)
        issuers = tuple(load_ed25519_public(p) for p in sorted(keys_dir.glob("issuer*.pub")))
        if not issuers:
            raise FileNotFoundError(f"{keys_dir / ISSUER_PUB}: no issuer public key")
        sealing = []
        for p in sorted(keys_dir.glob("sealing*.pub")):
            pub = load_x25519_public(p)
            sealing.append((sealing_kid(pub), raw_public(pub)))
        from sync.central.keyring import public_periods
        periods = tuple(public_periods(keys_dir))
        if not sealing and not periods:
            raise FileNotFoundError(f"{keys_dir / SEALING_PUB}: no sealing public key "
                                    "(nor sealing-periods.json)")
        return cls(load_ed25519_private(keys_dir / BUNDLE_KEY), issuers, tuple(sealing), policy,
                   periods)


INGEST_SLOTS = 2


def create_app(storage: Storage, authority: Authority, *, clock=time.time,
               purge_every_s: float | None = 3600.0, close_on_shutdown: bool = False,
               ingest_slots: int = INGEST_SLOTS) -> FastAPI:
    """``ingest_slots``: batches parsed and stored at once by this process. More uploads
    wait their turn without holding a thread, so a burst of reconnecting kiosks never takes
    every thread from the bundle polls and the health checks (which stay fast)."""
    ingest_gate = asyncio.Semaphore(ingest_slots)
    keys_fingerprint = hashlib.sha256(
        b"".join(raw_public(k) for k in authority.issuer_keys)
        + b"".join(raw for _, raw in authority.sealing_keys)
        + b"".join(k.public for k in authority.sealing_periods)
        + repr(authority.policy).encode()).hexdigest()[:16]

    @asynccontextmanager
    async def lifespan(app):
        stop = threading.Event()
        if purge_every_s:
            def purger():
                while not stop.is_set():
                    try:
                        if hasattr(storage, "ensure_partitions"):   # PostgreSQL: days ahead
                            storage.ensure_partitions(now=clock())
                        from sync.central.committee.members import case_holds
                        result = storage.purge(now=clock(), holds=case_holds(storage))
                        if result.records or result.batches or result.risk_entries:
                            log.info("purge: %s", result.summary())
                    except Exception as e:      # keep serving; the next hour tries again
                        if "permission denied" in str(e).lower():
                            log.warning("this server's database role may not delete: purging is "
                                        "left to `kiosk-central purge` (the purge role's timer)")
                            return
                        log.error("purge failed: %s", e)
                    stop.wait(purge_every_s)
            threading.Thread(target=purger, name="purge", daemon=True).start()
        yield
        stop.set()
        if close_on_shutdown:
            # Here, not after uvicorn returns: uvicorn re-raises SIGTERM once it has shut
            # down, so code after it never runs. Closing checkpoints and removes the WAL.
            storage.close()
            log.info("storage closed")

    metrics = Metrics(storage, clock)
    app = FastAPI(title="Venue check-in central server", version="1",
                  description="Receives kiosks' sealed check-ins; serves their signed bundle.",
                  lifespan=lifespan)

    # Answers go gzip to whoever accepts it (the kiosk's requests does): a whole risk list of
    # a million entries is 47 MiB of JSON, 21 MiB on the wire.
    from starlette.middleware.gzip import GZipMiddleware
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        metrics.rejected.labels(reason=exc.code).inc()
        if exc.status >= 400:
            log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.code)
        return JSONResponse({"error": exc.code, "detail": exc.detail, **exc.extra},
                            status_code=exc.status)

    def authenticate(request: Request, body: bytes) -> str:
        h = request.headers
        kiosk_id, ts, sig = h.get("x-kiosk-id"), h.get("x-timestamp"), h.get("x-signature")
        if not (kiosk_id and ts and sig) or not TIMESTAMP_RE.match(ts):
            raise ApiError(401, "bad_signature", "X-Kiosk-Id, X-Timestamp and X-Signature are required")
        kiosk = storage.kiosk(kiosk_id)
        if kiosk is None:
            raise ApiError(401, "unknown_kiosk", "no kiosk registered with this id")
        if kiosk.revoked_at is not None:
            raise ApiError(403, "revoked", "this kiosk's registration was revoked")
        now = clock()
        if abs(now - int(ts)) > REQUEST_SKEW_S:
            raise ApiError(401, protocol.STALE, "request timestamp too far from the server's clock",
                           server_time=int(now))
        if not protocol.verify_request(Ed25519PublicKey.from_public_bytes(kiosk.public_key),
                                       method=request.method, path=request.url.path,
                                       timestamp=ts, signature=sig, body=body):
            raise ApiError(401, "bad_signature", "the signature does not match this kiosk's key")
        return kiosk_id

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > protocol.MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"body over {protocol.MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > protocol.MAX_BODY_BYTES:
                raise ApiError(413, "too_large", f"body over {protocol.MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def parse_batch(request: Request, body: bytes) -> tuple[Batch, list[dict]]:
        if request.headers.get("content-encoding", "").lower() != "gzip":
            raise ApiError(400, "malformed", "the batch must be sent with Content-Encoding: gzip")
        try:
            raw = protocol.decompress_limited(body)
        except ValueError as e:
            code = "too_large" if "too large" in str(e) else "malformed"
            raise ApiError(413 if code == "too_large" else 400, code, str(e)) from None
        except Exception:                      # zlib.error, EOFError: not gzip at all
            raise ApiError(400, "malformed", "the body is not valid gzip") from None
        try:
            batch = Batch.model_validate_json(raw)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            if err["type"] == "too_long" and where == "records":
                raise ApiError(413, "too_large", f"more than {protocol.MAX_RECORDS} records") from None
            raise ApiError(400, "malformed", f"{where}: {err['msg']}"[:300]) from None
        rows = []
        now = clock()
        for i, r in enumerate(batch.records):
            try:
                sealed = base64.b64decode(r.sealed, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "malformed", f"records.{i}.sealed: not base64") from None
            problem = storage.retention.capture_problem(r.captured_at, now=now)
            if problem:
                raise ApiError(400, protocol.BAD_CAPTURE_TIME, f"records.{i}.captured_at: {problem}")
            if placed(r.record_id, r.captured_at) is False:
                raise ApiError(400, "malformed", f"records.{i}.record_id: a time-ordered (v7) id "
                                                 "whose time is not the record's capture time")
            rows.append({**r.model_dump(), "sealed": sealed})
        return batch, rows

    def ingest(request: Request, body: bytes) -> dict:
        kiosk_id = authenticate(request, body)        # before anything is decompressed or parsed
        batch, rows = parse_batch(request, body)
        try:
            result = storage.ingest(kiosk_id, batch.batch_id, rows, now=clock())
        except RecordIdConflict as e:
            raise ApiError(409, protocol.RECORD_ID_CONFLICT,
                           f"{e}: {', '.join(e.record_ids[:5])}") from None
        log.info("batch from %s: %d records, %d accepted, %d duplicates", kiosk_id, len(rows),
                 len(result.accepted), len(result.duplicates))
        metrics.batches.inc()
        metrics.accepted.inc(len(result.accepted))
        metrics.duplicates.inc(len(result.duplicates))
        return {"batch_id": batch.batch_id, "accepted": result.accepted,
                "duplicates": result.duplicates}

    batch_schema = Batch.model_json_schema(ref_template="#/components/schemas/{model}")
    batch_schema.pop("$defs", None)

    @app.post(protocol.UPLOAD_PATH, response_model=Accepted,
              summary="Upload a batch of sealed check-ins (JSON, gzip, signed)",
              openapi_extra={
                  "requestBody": {"required": True, "description": "the batch as JSON, sent with "
                                  "Content-Encoding: gzip (anything else is a 400 malformed)",
                                  "content": {"application/json": {"schema": batch_schema}}},
                  "parameters": [{"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
                                 for n in ("X-Kiosk-Id", "X-Timestamp", "X-Signature")],
                  "responses": _errors(
                      ("400", "malformed batch, or a capture time outside what the server keeps"),
                      *AUTH_ERRORS,
                      ("409", "a record id already held for another kiosk (record_id_conflict)"),
                      ("413", "body or batch too large"))})
    async def upload(request: Request):
        body = await read_body(request)
        async with ingest_gate:
            return await run_in_threadpool(ingest, request, body)

    # Keep the Record schema in the components so the batch schema's $ref resolves.
    app.openapi_schema = None
    _openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = _openapi()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Record"] = Record.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema
    app.openapi = openapi

    def etag_of(kiosk_id: str, version: int, period_tag: str = "") -> str:
        tag = hashlib.sha256(f"{kiosk_id}/{keys_fingerprint}/{period_tag}".encode()).hexdigest()[:12]
        return f'"{version}-{tag}"'

    def bundle_for(kiosk_id: str, if_none_match: str | None, since: str | None = None) -> Response:
        # The common answer, 304, reads one row; the whole risk list only when it changed.
        # The period keys on offer change once a period: their first kid is in the ETag.
        now = clock()
        periods = authority.periods_at(now)
        tag_keys = storage.tag_keys_for(kiosk_id, now)
        period_tag = (periods[0].kid if periods else "") + "/" + ",".join(
            str(int(v)) for v, _, _ in tag_keys[:1] + tag_keys[-1:])
        etag = etag_of(kiosk_id, storage.risk_version(), period_tag)
        if if_none_match == etag:
            metrics.bundles.labels(answer="304").inc()
            return Response(status_code=304, headers={"ETag": etag})
        metrics.bundles.labels(answer="200").inc()
        delta = (storage.risk_delta(int(since)) if since and since.isascii() and since.isdigit()
                 and len(since) < 19 else None)
        if delta is not None:                # only what changed since the kiosk's version
            version, levels = delta
        else:
            version, levels = storage.risk_list()
        payload = bundle_payload(version=version, issued_at=clock(), kiosk_id=kiosk_id,
                                 since=int(since) if delta is not None else None,
                                 issuer_keys=authority.issuer_keys,
                                 sealing_keys=authority.sealing_keys, levels=levels,
                                 policy=authority.policy, sealing_periods=periods,
                                 tag_keys=[SealedTagKey(*k) for k in tag_keys])
        return Response(sign_bundle(payload, authority.bundle_key), media_type="application/json",
                        headers={"ETag": etag_of(kiosk_id, version, period_tag)})

    @app.get(protocol.BUNDLE_PATH, summary="This kiosk's signed bundle (keys, risk list, policy)",
             openapi_extra={"parameters": [
                 {"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
                 for n in ("X-Kiosk-Id", "X-Timestamp", "X-Signature")]},
             responses={304: {"description": "unchanged since the ETag in If-None-Match"},
                        **_errors(*AUTH_ERRORS)})
    def bundle(request: Request):
        kiosk_id = authenticate(request, b"")
        return bundle_for(kiosk_id, request.headers.get("if-none-match"),
                          request.headers.get(protocol.RISK_SINCE_HEADER.lower()))

    @app.get("/healthz", summary="liveness: the server answers and its database does",
             responses={503: {"description": "the database does not answer"}})
    def healthz():
        try:
            storage.risk_version()
        except Exception as e:
            return JSONResponse({"status": "database unavailable", "detail": type(e).__name__},
                                status_code=503)
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics: ingest, rejections by reason, bundles, "
                                 "per-kiosk last upload and lag", response_class=Response)
    def metrics_endpoint():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class Metrics:
    """This process's counters, and the per-kiosk figures read from the database at each
    scrape (so that several server processes report the same)."""

    def __init__(self, storage, clock):
        from prometheus_client import CollectorRegistry, Counter
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        r = self.registry
        self.batches = Counter("kiosk_central_batches", "upload batches stored", registry=r)
        self.accepted = Counter("kiosk_central_records_accepted", "records stored", registry=r)
        self.duplicates = Counter("kiosk_central_records_duplicate", "records sent again", registry=r)
        self.rejected = Counter("kiosk_central_requests_rejected", "4xx answers by reason",
                                ["reason"], registry=r)
        self.bundles = Counter("kiosk_central_bundle_requests", "bundle answers", ["answer"],
                               registry=r)

        class PerKiosk:
            def collect(self):
                last = GaugeMetricFamily("kiosk_central_kiosk_last_upload_timestamp_seconds",
                                         "when each kiosk last uploaded", labels=["kiosk"])
                lag = GaugeMetricFamily("kiosk_central_kiosk_upload_lag_seconds",
                                        "how long its newest uploaded record waited", labels=["kiosk"])
                for kiosk_id, at, waited in storage.kiosk_contacts():
                    last.add_metric([kiosk_id], at)
                    if waited is not None:
                        lag.add_metric([kiosk_id], waited)
                yield last
                yield lag
        r.register(PerKiosk())


WORKER_ENV = "KIOSK_CENTRAL_WORKER"      # JSON: what each worker process opens


def worker_app():
    """The app of one worker process (``serve --workers N``): its own storage connection(s),
    from the settings `serve` put in the environment."""
    import json
    import os

    from sync.central.storage.interface import ServerRetention, open_storage
    spec = json.loads(os.environ[WORKER_ENV])
    retention = ServerRetention(spec["normal_days"], spec["significant_days"])
    storage = open_storage(data=spec.get("data"), database=spec.get("database"),
                           retention=retention)
    return create_app(storage, Authority.from_dir(Path(spec["keys"])), close_on_shutdown=True,
                      ingest_slots=spec.get("ingest_slots", INGEST_SLOTS))


def serve(open_storage, keys_dir: Path, *, where, host: str, port: int, access_log: bool = False,
          tls_cert: str | None = None, tls_key: str | None = None, workers: int = 1,
          worker_spec: dict | None = None, ingest_slots: int = INGEST_SLOTS) -> None:
    """``open_storage()``: the storage to serve from (SQLite or PostgreSQL), opened once the
    port is bound; ``where`` names it in the log. ``workers`` > 1: that many processes share
    the socket, each with its own storage opened from ``worker_spec`` (stateless: any
    number of them, on any number of machines, may share one PostgreSQL)."""
    import uvicorn

    from sync.central.keyring import private_keys_in
    held = private_keys_in(keys_dir)
    if held:
        raise ServeError(f"{held[0]}: a private key in the server's keys folder; the server must "
                         "never hold the issuer's, the committee's or a member's private key: move "
                         "it off this machine (the server needs bundle.key and public files only)")
    authority = Authority.from_dir(keys_dir)
    # Bind first: a busy port is one line and a non-zero exit, never "serving on" first.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror} (another server running? "
                         "choose --port)") from None
    try:
        storage = open_storage()          # checks the database and migrates it, once
    except BaseException:
        sock.close()
        raise
    if workers > 1:
        import json
        import os

        from uvicorn.supervisors import Multiprocess
        storage.close()
        os.environ[WORKER_ENV] = json.dumps({**(worker_spec or {}), "keys": str(keys_dir),
                                             "ingest_slots": ingest_slots})
        config = uvicorn.Config("sync.central.server.webapp:worker_app", factory=True, workers=workers,
                                log_level="info", access_log=access_log, timeout_graceful_shutdown=5,
                                ssl_certfile=tls_cert, ssl_keyfile=tls_key)
        log.info("serving on %s://%s:%d (data %s) with %d workers", "https" if tls_cert else "http",
                 host, sock.getsockname()[1], where, workers)
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
        return
    app = create_app(storage, authority, close_on_shutdown=True, ingest_slots=ingest_slots)
    config = uvicorn.Config(app, log_level="info", access_log=access_log,
                            timeout_graceful_shutdown=5, ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    log.info("serving on %s://%s:%d (data %s)", "https" if tls_cert else "http", host,
             sock.getsockname()[1], where)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


class ServeError(Fault):
    """The server cannot start (the port is taken)."""
    label = "error"
    exit_code = 2
