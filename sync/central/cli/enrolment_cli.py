"""`kiosk-central enrolment issue|list`: one-time, expiring tokens a kiosk enrols with in
one step (the committee makes them with the root key; the server cannot)."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from kiosk.core.faults import UsageError
from kiosk.core.timing import DAY
from sync.central.cli.common import Witness, command, session, when, where


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


@command(witness=Witness.NONE)
def enrolment_issue(args: argparse.Namespace) -> int:
    from sync.central.tokenissuing import DEFAULT_DAYS, issue, write_card

    now = time.time()
    expires = when(args.expires) if args.expires else now + DEFAULT_DAYS * DAY
    assert expires is not None
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"--out {args.out}: name a .png or .svg file (the token's QR code)")
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: the folder {out.parent} does not exist")
    with session(args) as s:
        issued = issue(Path(args.keys), s.storage, venue=args.venue, expires_at=expires, now=now)
    write_card(issued, out)
    print(issued.code.text)
    print(
        f"# enrolment token for venue {issued.token.venue}: kiosk {issued.token.kiosk_id}, one use, "
        f"until {_stamp(issued.token.expires_at)}; its QR code is in {out}",
    )
    print(
        f"# {issued.tag_keys} days of search-tag keys sealed with it"
        + ("" if issued.tag_keys else ": none held now (run `kiosk-central keys rotate` first)")
        + "; on the kiosk: kiosk enrol --config FILE CODE"
    )
    return 0


@command(witness=Witness.NONE)
def enrolment_list(args: argparse.Namespace) -> int:
    now = time.time()
    with session(args, readonly=True) as s:
        tokens = s.storage.enrolment_tokens()
    for t in tokens:
        state = (
            f"used {_stamp(t.used_at)}"
            if t.used_at is not None
            else f"outstanding until {_stamp(t.expires_at)}"
            if t.expires_at > now
            else f"expired {_stamp(t.expires_at)} unused"
        )
        print(f"{t.kiosk_id}  {t.venue}  issued {_stamp(t.issued_at)}  {state}")
    if not tokens:
        print("no enrolment tokens")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    en = sub.add_parser("enrolment", help="one-time tokens a kiosk enrols with in one step")
    en_sub = en.add_subparsers(dest="enrolment_command", required=True)
    iss = en_sub.add_parser(
        "issue",
        help="make a one-time, expiring token for a venue (signed by the root: on the committee's "
        "machine); prints its short code and writes its QR code",
    )
    iss.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder (root.key)")
    where(iss)
    iss.add_argument("--venue", required=True, metavar="NAME", help="the venue's id ([kiosk] venue_id)")
    iss.add_argument(
        "--expires", metavar="T", help="until when it can be used (ISO 8601, UTC; default: 14 days)"
    )
    iss.add_argument("--out", required=True, metavar="FILE", help="the token's QR code (.png or .svg)")
    iss.set_defaults(func=enrolment_issue)
    ls = en_sub.add_parser("list", help="the tokens made: outstanding, used, expired")
    where(ls)
    ls.set_defaults(func=enrolment_list)
