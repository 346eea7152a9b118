"""The central server as an app (FastAPI) and a process (uvicorn): receives kiosks' sealed
check-ins, serves their signed bundle. Routes live in ``routes_*``; the wire is described in
:mod:`kiosk.core.protocol`, storage in :mod:`sync.central.storage.interface`.

Every rejection is a 4xx with ``{"error": code, "detail": text}`` and stores nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kiosk.core import protocol
from kiosk.core.faults import Fault
from sync.central.server import (
    routes_bundle,
    routes_check,
    routes_enrol,
    routes_ops,
    routes_updates,
    routes_upload,
)
from sync.central.server.authority_keys import Authority
from sync.central.server.context import ServerContext
from sync.central.server.models import ApiError, ErrorBody
from sync.central.storage.interface import Storage

log = logging.getLogger("kiosk-central")

INGEST_SLOTS = 2


def create_app(
    storage: Storage,
    authority: Authority,
    *,
    clock: Callable[[], float] = time.time,
    purge_every_s: float | None = 3600.0,
    close_on_shutdown: bool = False,
    ingest_slots: int = INGEST_SLOTS,
    fleet_every_s: float | None = 60.0,
) -> FastAPI:
    """The app over one storage; ``ingest_slots``: batches parsed and stored at once."""
    ctx = ServerContext.make(storage, authority, clock=clock, ingest_slots=ingest_slots)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if purge_every_s:
            threading.Thread(
                target=_purge_hourly, args=(storage, clock, stop, purge_every_s), name="purge", daemon=True
            ).start()
        if fleet_every_s:
            threading.Thread(
                target=_fleet_refresh, args=(ctx, stop, fleet_every_s), name="fleet", daemon=True
            ).start()
        yield
        stop.set()
        ctx.flush()  # what polls told of the kiosks, then the storage
        if close_on_shutdown:
            # Here, not after uvicorn returns: uvicorn re-raises SIGTERM once it has shut
            # down, so code after it never runs. Closing checkpoints and removes the WAL.
            storage.close()
            log.info("storage closed")

    app = FastAPI(
        title="Venue check-in central server",
        version="1",
        description="Receives kiosks' sealed check-ins; serves their signed bundle.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx

    # Answers go gzip to whoever accepts it (the kiosk's requests does): a whole risk list of
    # a million entries is 47 MiB of JSON, 21 MiB on the wire. Not an upload's answer: its
    # padding is random (it would not shrink), it is sent at every round of every kiosk, and
    # compressing it cost the ingest a third of the server's CPU (issue 34).
    app.add_middleware(CompressAnswers, skip=(protocol.UPLOAD_PATH,))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        ctx.metrics.rejected.labels(reason=exc.code).inc()
        if exc.status >= 400:
            log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.code)
        return JSONResponse({"error": exc.code, "detail": exc.detail, **exc.extra}, status_code=exc.status)

    for routes in (routes_upload, routes_bundle, routes_ops, routes_check, routes_enrol, routes_updates):
        app.include_router(routes.router)

    # Keep the batch's and ErrorBody's schemas in the components so the $refs resolve.
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain_openapi()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            ref = "#/components/schemas/{model}"
            schemas.update(routes_upload.BATCH_COMPONENTS)  # the batch's records
            schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template=ref)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class CompressAnswers:
    """Starlette's GZipMiddleware for every answer but those of the ``skip`` paths."""

    def __init__(self, app, *, skip: tuple[str, ...]) -> None:
        from starlette.middleware.gzip import GZipMiddleware

        self.app, self.skip = app, skip
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.skip:
            await self.app(scope, receive, send)
        else:
            await self.gzip(scope, receive, send)


def _fleet_refresh(ctx: ServerContext, stop: threading.Event, every_s: float) -> None:
    """The fleet's aggregate for /metrics, once a minute; its state kept once an hour; and
    the search-tag keys of a day that is over deleted within the minute."""
    last_hour = last_day = None
    while not stop.is_set():
        hour = int(ctx.clock() // 3600)
        if hour // 24 != last_day:  # a day is over (or the server just started): its keys go
            try:
                ctx.storage.drop_spent_tag_keys(now=ctx.clock())
                last_day = hour // 24
            except Exception as e:  # tried again next minute; the daily purge deletes them too
                log.warning("spent tag keys not deleted: %s", type(e).__name__)
        try:
            ctx.metrics.refresh_fleet(ctx.storage, snapshot=hour != last_hour)
            last_hour = hour
        except Exception as e:  # keep serving; the next minute tries again
            log.warning("fleet state not computed: %s", type(e).__name__)
        stop.wait(every_s)


def _purge_hourly(
    storage: Storage, clock: Callable[[], float], stop: threading.Event, every_s: float
) -> None:
    while not stop.is_set():
        try:
            storage.ensure_partitions(now=clock())  # PostgreSQL: days ahead
            result = storage.purge(now=clock())
            if result.records or result.batches or result.risk_entries:
                log.info("purge: %s", result.summary())
        except Exception as e:  # keep serving; the next hour tries again
            if "permission denied" in str(e).lower():
                log.warning(
                    "this server's database role may not delete: purging is "
                    "left to `kiosk-central purge` (the purge role's timer)"
                )
                return
            log.error("purge failed: %s", e)
        stop.wait(every_s)


WORKER_ENV = "KIOSK_CENTRAL_WORKER"  # JSON: what each worker process opens

# uvicorn's own limits (nginx in front holds the slow clients: config/nginx/): connections
# served at once (more get a 503 at once), idle keep-alive, the largest header block.
UVICORN_LIMITS: dict[str, Any] = {
    "limit_concurrency": 1000,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": 16 * 1024,
    "backlog": 2048,
    # a request's headers complete within 10 s of the connection (or the last answer)
    "http": "sync.central.server.headertimeout:HeadersOnTime",
}


def worker_app():
    """The app of one worker process (``serve --workers N``): its own storage connection(s),
    from the settings `serve` put in the environment."""
    import json
    import os

    from sync.central.storage.interface import ServerRetention
    from sync.central.storage.opening import open_storage

    spec = json.loads(os.environ[WORKER_ENV])
    from sync.central.server import headertimeout

    headertimeout.HEADER_TIMEOUT_S = float(spec.get("header_timeout") or headertimeout.HEADER_TIMEOUT_S)
    retention = ServerRetention(spec["normal_days"], spec["significant_days"])
    storage = open_storage(data=spec.get("data"), database=spec.get("database"), retention=retention)
    app = create_app(
        storage,
        Authority.from_dir(Path(spec["keys"])),
        close_on_shutdown=True,
        ingest_slots=spec.get("ingest_slots", INGEST_SLOTS),
    )
    host, port = spec.get("metrics") or ("127.0.0.1", 0)
    if port:
        from sync.central.server.metrics import start_listener

        start_listener(app.state.ctx.metrics, host=host, port=port, tries=int(spec.get("workers", 1)))
    return app


def serve(
    open_storage,
    keys_dir: Path,
    *,
    where,
    host: str,
    port: int,
    access_log: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    workers: int = 1,
    worker_spec: dict | None = None,
    ingest_slots: int = INGEST_SLOTS,
    metrics: tuple[str, int] = ("127.0.0.1", 0),
    header_timeout_s: float | None = None,
) -> None:
    """``open_storage()``: the storage to serve from (SQLite or PostgreSQL), opened once the
    port is bound; ``where`` names it in the log. ``workers`` > 1: that many processes share
    the socket, each with its own storage opened from ``worker_spec`` (stateless: any
    number of them, on any number of machines, may share one PostgreSQL)."""
    import uvicorn

    authority = server_authority(keys_dir)
    if tls_cert or tls_key:
        check_tls(tls_cert, tls_key)
    if header_timeout_s is not None:
        from sync.central.server import headertimeout

        headertimeout.HEADER_TIMEOUT_S = header_timeout_s
    # Bind first: a busy port is one line and a non-zero exit, never "serving on" first.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror} (another server running? choose --port)"
        ) from None
    try:
        storage = open_storage()  # checks the database and migrates it, once
    except BaseException:
        sock.close()
        raise
    if workers > 1:
        import json
        import os

        from uvicorn.supervisors import Multiprocess

        storage.close()
        os.environ[WORKER_ENV] = json.dumps(
            {
                **(worker_spec or {}),
                "keys": str(keys_dir),
                "ingest_slots": ingest_slots,
                "metrics": list(metrics),
                "workers": workers,
                "header_timeout": header_timeout_s,
            }
        )
        config = uvicorn.Config(
            "sync.central.server.webapp:worker_app",
            factory=True,
            workers=workers,
            log_level="info",
            access_log=access_log,
            timeout_graceful_shutdown=5,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            **UVICORN_LIMITS,
        )
        log.info(
            "serving on %s://%s:%d (data %s) with %d workers",
            "https" if tls_cert else "http",
            host,
            sock.getsockname()[1],
            where,
            workers,
        )
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
        return
    app = create_app(storage, authority, close_on_shutdown=True, ingest_slots=ingest_slots)
    if metrics[1]:
        from sync.central.server.metrics import start_listener

        try:
            port_m = start_listener(app.state.ctx.metrics, host=metrics[0], port=metrics[1])
        except OSError:
            sock.close()
            storage.close()
            raise ServeError(
                f"cannot listen for metrics on {metrics[0]}:{metrics[1]} (another server there? choose "
                "--metrics-port, or 0 for none)"
            ) from None
        log.info("metrics on http://%s:%d/metrics", metrics[0], port_m)
    config = uvicorn.Config(
        app,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=5,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        **UVICORN_LIMITS,
    )
    log.info(
        "serving on %s://%s:%d (data %s)", "https" if tls_cert else "http", host, sock.getsockname()[1], where
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def server_authority(keys_dir: Path) -> Authority:
    """The server's own keys, from its keys folder (made by `kiosk-central keys server`), or a
    ServeError naming what is wrong: no such folder, a file missing, a private key it must
    never hold beside them."""
    from kiosk.core.keys import KeyFileError
    from sync.central.keyring import SERVER_FILES, SERVER_FOLDER_HELP, private_keys_in

    keys_dir = Path(keys_dir)
    if not keys_dir.is_dir():
        raise ServeError(f"--keys {keys_dir}: no such folder ({SERVER_FOLDER_HELP})")
    held = private_keys_in(keys_dir)
    if held:
        raise ServeError(
            f"{held[0]}: a private key in the server's keys folder; the server must "
            "never hold the root's, an issuer's, the committee's or a member's private key: move "
            f"it off this machine ({SERVER_FOLDER_HELP})"
        )
    missing = [n for n in SERVER_FILES if not (keys_dir / n).is_file()]
    if missing:
        raise ServeError(f"--keys {keys_dir}: no {', '.join(missing)} in it ({SERVER_FOLDER_HELP})")
    try:
        return Authority.from_dir(keys_dir)
    except KeyFileError as e:
        raise ServeError(f"--keys {keys_dir}: {e} ({SERVER_FOLDER_HELP})") from None


def check_tls(cert: str | None, key: str | None) -> None:
    """Both files there, readable, and a certificate with its own private key: checked before
    the port is bound or anything says "serving"."""
    import ssl

    if not (cert and key):
        raise ServeError("--tls-cert and --tls-key go together: give both (PEM files)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ServeError(f"{flag} {path}: no such file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except PermissionError:
        raise ServeError(f"--tls-cert {cert} / --tls-key {key}: not readable by this user") from None
    except (ssl.SSLError, OSError) as e:
        raise ServeError(
            f"--tls-cert {cert} and --tls-key {key}: not a PEM certificate and its own private key "
            f"({getattr(e, 'reason', None) or type(e).__name__})"
        ) from None


class ServeError(Fault):
    """The server cannot start (the port is taken)."""

    label = "error"
    exit_code = 2
