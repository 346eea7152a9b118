"""`kiosk-central serve`, `db-roles`: the central server, and PostgreSQL's roles for it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sync.central.cli.common import Witness, command, port, positive, retention_args, seconds, store_of, where


@command(witness=Witness.NONE)
def serve(args: argparse.Namespace) -> int:
    from kiosk.core.logs import setup_logging
    from sync.central.server.webapp import serve as run

    setup_logging("INFO")
    if not args.keys and not args.data:
        print("kiosk-central: serve --database needs --keys DIR", file=sys.stderr)
        return 2
    keys = Path(args.keys) if args.keys else Path(args.data) / "keys"
    run(
        lambda: store_of(args),
        keys,
        where=args.database and "PostgreSQL" or args.data,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        workers=args.workers,
        ingest_slots=args.ingest_slots,
        metrics=(args.metrics_host, args.metrics_port),
        header_timeout_s=args.header_timeout,
        worker_spec={
            "data": args.data,
            "database": args.database,
            "normal_days": args.normal_days,
            "significant_days": args.significant_days,
        },
    )
    return 0


@command(witness=Witness.NONE)
def db_roles(args: argparse.Namespace) -> int:
    from sync.central.storage.pg_backend import PgStorage
    from sync.central.storage.roles import GRANTS, apply

    PgStorage(args.database).close()  # the tables exist (migrations) before grants
    for role in apply(args.database):
        print(f"{role}: " + "; ".join(GRANTS[role]))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="run the central server (OpenAPI at /openapi.json)")
    where(sv)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=port, default=8080, help="0 to 65535 (default 8080)")
    sv.add_argument(
        "--keys",
        metavar="DIR",
        help="the server's keys folder, made by `kiosk-central keys server`: bundle.key, receipt.key "
        "and root.pub (default DATA/keys)",
    )
    sv.add_argument("--access-log", action="store_true")
    sv.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="where /metrics listens, apart from kiosks (default 127.0.0.1: loopback only)",
    )
    sv.add_argument(
        "--metrics-port",
        type=port,
        default=9464,
        metavar="PORT",
        help="its port (default 9464; with --workers N, the first free of PORT..PORT+N-1 each; 0: none)",
    )
    sv.add_argument(
        "--workers",
        type=positive,
        default=1,
        metavar="N",
        help="server processes sharing the port (default 1)",
    )
    sv.add_argument(
        "--ingest-slots",
        type=positive,
        default=2,
        metavar="N",
        help="batches each process stores at once; more uploads wait without "
        "holding a thread, so bundle polls stay fast (default 2)",
    )
    retention_args(sv)
    sv.add_argument(
        "--header-timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="a request's headers complete within S seconds of the connection (default 10; nginx cuts "
        "slow clients too)",
    )
    sv.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    sv.add_argument("--tls-key", metavar="FILE", help="... and this private key (PEM)")
    sv.set_defaults(func=serve)

    dbr = sub.add_parser(
        "db-roles",
        help="PostgreSQL: create and grant the ingest, purge and committee roles (run as the database owner)",
    )
    dbr.add_argument("--database", required=True, metavar="URL")
    dbr.set_defaults(func=db_roles)
