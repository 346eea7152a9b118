"""`kiosk-central register-kiosk`, `status`, `report`, `purge`: the kiosks the authority runs,
how they are, and what the store keeps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kiosk.core.faults import UsageError
from sync.central.cli.common import Witness, command, hours, read_replica, retention_args, session, where


@command(witness=Witness.NONE)
def register_kiosk(args: argparse.Namespace) -> int:
    from kiosk.core.keys import load_ed25519_public, load_x25519_public, raw_public
    from sync.central.keyring import distribute_tag_keys

    with session(args) as s:
        if args.revoke:
            if not s.storage.revoke_kiosk(args.revoke, now=time.time()):
                raise UsageError(
                    f"--revoke {args.revoke}: no active kiosk with this id (see `kiosk-central status`)"
                )
            print(f"revoked {args.revoke}")
            return 0
        if not (args.venue and args.public_key):
            print(
                "kiosk-central: register-kiosk needs --venue and --public-key (or --revoke ID)",
                file=sys.stderr,
            )
            return 2
        raw = raw_public(load_ed25519_public(args.public_key))
        tag = raw_public(load_x25519_public(args.tag_key)) if args.tag_key else None
        if args.keys and not tag:
            raise UsageError("--keys seals search-tag keys to the kiosk's --tag-key: give its tag.pub too")
        now = time.time()
        kiosk_id = s.storage.register_kiosk(venue=args.venue, public_key=raw, now=now, tag_public=tag)
        print(kiosk_id)
        if args.keys:
            n = distribute_tag_keys(Path(args.keys), s.storage, now=now)
            print(f"search-tag keys: {n} sealed to this kiosk; it holds them after its first `kiosk sync`")
        else:
            print(
                "kiosk-central: warning: no search-tag keys for this kiosk yet (no --keys DIR): its "
                "check-ins "
                "cannot be traced until `kiosk-central keys rotate --keys DIR --data ...` seals them; "
                "register with --tag-key and --keys to seal them now",
                file=sys.stderr,
            )
    return 0


@command(witness=Witness.NONE)
def status(args: argparse.Namespace) -> int:
    from sync.central.fleet import Thresholds, as_json, fleet, lines
    from sync.central.tokenissuing import counts

    now = time.time()
    thresholds = Thresholds(silent_h=args.silent_hours, stale_bundle_h=args.stale_bundle_hours)
    with session(args, readonly=True) as s:
        kiosks = fleet(s.storage, now=now, thresholds=thresholds)
        tokens = counts(s.storage, now=now)
    if args.json:
        print(json.dumps(as_json(kiosks, now=now) | {"enrolment": tokens}, indent=1))
        return 0
    for line in lines(kiosks, now=now):
        print(line)
    if any(tokens.values()):
        print(
            f"enrolment tokens: {tokens['used']} kiosks enrolled, {tokens['outstanding']} tokens "
            f"outstanding, {tokens['expired']} expired unused (kiosk-central enrolment list)"
        )
    return 0


@command(witness=Witness.NONE)
def report(args: argparse.Namespace) -> int:
    from sync.central.report import render, report_data

    out = Path(args.html)
    if args.html.endswith(("/", "\\")) or out.is_dir():
        raise UsageError(
            f"--html {args.html}: a folder: give the page's file name (e.g. {out / 'fleet.html'})"
        )
    if not out.parent.is_dir():
        raise UsageError(f"--html {args.html}: the folder {out.parent} does not exist")
    if out.exists() and not out.is_file():
        raise UsageError(f"--html {args.html}: not a file")
    now = time.time()
    with session(args, readonly=True) as s:
        data = report_data(s.storage, now=now, days=args.days)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    kiosks = data["kiosks"]
    print(
        f"report written to {out}: {len(kiosks)} kiosks, "
        f"{sum(1 for k in kiosks if k.state == 'attention')} need attention; open it in any browser "
        "(one file, nothing fetched)"
    )
    return 0


@command(witness=Witness.NONE)
def purge(args: argparse.Namespace) -> int:
    with session(args) as s:
        result = s.storage.purge(now=time.time())
    print(result.summary())
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("register-kiosk", help="register a kiosk's device key; prints its kiosk id")
    where(reg)
    reg.add_argument("--venue", metavar="NAME")
    reg.add_argument("--public-key", metavar="FILE", help="the PEM `kiosk keys init` printed")
    reg.add_argument("--revoke", metavar="ID", help="revoke this kiosk instead")
    reg.add_argument(
        "--tag-key",
        metavar="FILE",
        help="the kiosk's tag.pub (X25519): it receives the search-tag keys sealed to it",
    )
    reg.add_argument(
        "--keys",
        metavar="DIR",
        help="the committee's keys folder: seal this kiosk's search-tag keys now "
        "(traceable from its first check-in)",
    )
    reg.set_defaults(func=register_kiosk)

    pg = sub.add_parser(
        "purge",
        help="delete records past the server's retention, old batch "
        "receipts and expired risk entries (daily timer)",
    )
    where(pg)
    retention_args(pg)
    pg.set_defaults(func=purge)

    st = sub.add_parser(
        "status",
        help="the fleet at a glance: a line per kiosk (last seen, upload, pending, bundle, clock, "
        "disk, fault, records, missing numbers), those needing attention first, and a summary",
    )
    where(st)
    read_replica(st)
    st.add_argument("--json", action="store_true", help="the same as JSON, for other tools")
    st.add_argument("--silent-hours", type=hours, default=6.0, metavar="H", help="silent after H hours (6)")
    st.add_argument(
        "--stale-bundle-hours",
        type=hours,
        default=26.0,
        metavar="H",
        help="a bundle older than H hours is stale (26)",
    )
    st.set_defaults(func=status)

    rp = sub.add_parser(
        "report",
        help="one self-contained HTML page: the fleet over time, last seen, upload lag, bundle age, "
        "gaps, cases",
    )
    where(rp)
    read_replica(rp)
    rp.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    rp.add_argument(
        "--days", type=int, default=28, choices=range(1, 401), metavar="DAYS", help="how far back (28)"
    )
    rp.set_defaults(func=report)
