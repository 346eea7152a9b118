"""`kiosk-central case ...`, `open-records`, `trace`, `set-risk`, `exposures publish`, `reads`,
`audit ...`: the committee's cases and what two members may read for one, the risk list and
the exposure list, and the log of all of it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kiosk.core.faults import UsageError
from kiosk.core.timing import DAY, utc_z
from sync.central.cli.common import (
    TWO_MEMBERS,
    Witness,
    command,
    day,
    entry_days,
    member_key,
    pass_id_arg,
    read_replica,
    session,
    store_name,
    two_member_keys,
    when,
    where,
)


@command(witness=Witness.CHECKS)
def case(args: argparse.Namespace) -> int:
    """`case open`, `case approve`, `case close` and `case list`."""
    from sync.central.committee import members as committee
    from sync.central.committee.listing import case_lines

    now = time.time()
    with session(args, readonly=args.case_command == "list") as s:
        if args.case_command == "list":
            for line in case_lines(s.state):
                print(line)
            return 0
        key = member_key(args.member_key)
        if args.case_command == "open":
            end = when(args.end) or now
            start = when(args.start) or end - 14 * DAY
            committee.open_case(
                s.storage,
                key=key,
                case_id=args.id,
                reason=args.reason,
                from_ts=start,
                to_ts=end,
                now=now,
                state=s.state,
            )
            print(
                f"case {args.id} opened ({day(start)} to {day(end)}); it needs a second "
                "member's approval: kiosk-central case approve"
            )
        elif args.case_command == "approve":
            committee.approve_case(s.storage, key=key, case_id=args.id, now=now, state=s.state)
            print(f"case {args.id} approved")
        else:
            committee.close_case(s.storage, key=key, case_id=args.id, now=now, state=s.state)
            print(f"case {args.id} closed")
    return 0


@command(witness=Witness.CHECKS)
def open_records(args: argparse.Namespace) -> int:
    from sync.central.committee.listing import reading_notes, write_records_csv
    from sync.central.committee.members import unlock_committee
    from sync.central.committee.reading import open_records as read
    from sync.central.keyring import audit_hash_key, committee_keys, tag_keys

    pass_id = None
    if args.pass_id:
        pass_id = pass_id_arg(args.pass_id)
        if pass_id is None:
            return 2
    member, second = two_member_keys(args.member_key)
    with session(args) as s:
        now = time.time()
        keys = committee_keys(Path(args.keys), unlock_committee(args.keys, s.state, member, second))
        reading = read(
            s.storage,
            keys,
            case_id=args.case,
            member_key=member,
            second_key=second,
            kiosk_id=args.kiosk,
            from_ts=when(args.start),
            to_ts=when(args.end),
            pass_id=pass_id,
            tag_keys=tag_keys(Path(args.keys)),
            hash_key=audit_hash_key(Path(args.keys), now=now),
            now=now,
            state=s.state,
        )
    if args.csv:  # for a call centre: a header, then one row a record
        write_records_csv(reading.records, sys.stdout)
    else:
        for rec in reading.records:
            print(json.dumps(rec))
    for line in reading_notes(reading, args.case):
        print(line, file=sys.stderr)
    return 0


@command(witness=Witness.CHECKS)
def trace(args: argparse.Namespace) -> int:
    from sync.central.committee.listing import trace_lines, write_trace_csv
    from sync.central.committee.members import unlock_committee
    from sync.central.committee.trace import trace as trace_pass
    from sync.central.keyring import audit_hash_key, committee_keys, tag_keys
    from sync.central.manifests import deny_level

    pass_id = pass_id_arg(args.pass_id)
    if pass_id is None:
        return 2
    member, second = two_member_keys(args.member_key)
    with session(args) as s:
        now = time.time()
        result = trace_pass(
            s.storage,
            committee_keys(Path(args.keys), unlock_committee(args.keys, s.state, member, second)),
            tag_keys(Path(args.keys)),
            member_key=member,
            second_key=second,
            case_id=args.case,
            pass_id=pass_id,
            from_ts=when(args.start),
            to_ts=when(args.end),
            overlap_s=args.overlap * 60,
            raise_level=args.raise_risk,
            risk_days=args.risk_days,
            hash_key=audit_hash_key(Path(args.keys), now=now),
            deny_level=deny_level(Path(args.keys)),
            now=now,
            state=s.state,
        )
    if args.json:
        print(json.dumps(result.to_json()))
    elif args.csv:  # for a call centre: one row per exposed pass and visit it shared
        write_trace_csv(result, sys.stdout)
    else:
        for line in trace_lines(
            result, overlap_min=args.overlap, raised_level=args.raise_risk, risk_days=args.risk_days
        ):
            print(line)
    return 0


@command(witness=Witness.CHECKS)
def set_risk(args: argparse.Namespace) -> int:
    from sync.central.committee.members import change_risk, entry_expiry
    from sync.central.keyring import audit_hash_key
    from sync.central.manifests import deny_level

    pass_id = pass_id_arg(args.pass_id)
    if pass_id is None:
        return 2
    keys = args.member_key or []
    if len(keys) > 2:
        raise UsageError("--member-key: once (below the deny level), or twice (a refusal takes two members)")
    member = member_key(keys[0])
    second = member_key(keys[1]) if len(keys) == 2 else None
    if second is not None and second.public_key() == member.public_key():
        raise UsageError(f"both --member-key files hold the same member's key: a refusal {TWO_MEMBERS}")
    now = time.time()
    expires = entry_expiry(args.level, now + args.expires_days * DAY, now=now)
    with session(args) as s:
        version = change_risk(  # needs an open case; a refusal, two independent members
            s.storage,
            key=member,
            case_id=args.case,
            pass_ids=[pass_id],
            level=args.level,
            expires_at=expires,
            hash_key=audit_hash_key(Path(args.keys), now=now),
            second=second,
            deny_level=deny_level(Path(args.keys)),
            now=now,
            state=s.state,
        )
    days = (expires - now) / DAY
    print(
        f"risk list version {version}: level {args.level} set, expires in {days:g} days"
        + (" (a lowering lasts as long as anything it lowers)" if args.level == 0 else "")
    )
    return 0


@command(witness=Witness.CHECKS)
def exposures_publish(args: argparse.Namespace) -> int:
    from kiosk.core.keys import ROOT_PUB, load_ed25519_public, raw_public
    from sync.central.checkpage import check_site_folder, write_site
    from sync.central.committee.exposures import publish_list
    from sync.central.succession import first_root

    now = time.time()
    member = member_key(args.member_key)
    root_pub = load_ed25519_public(Path(args.keys) / ROOT_PUB)
    if args.site:
        check_site_folder(Path(args.site))
    with session(args) as s:

        def write(published) -> None:  # the site first: a publish completes or changes nothing
            if args.site:
                succession = s.storage.succession_manifests()
                write_site(  # built with the first root, following its hand-overs (old cards stay good)
                    Path(args.site),
                    root_public=raw_public(first_root(Path(args.keys), succession)),
                    manifest_doc=published.manifest_doc,
                    exposures_doc=published.doc,
                    succession=succession,
                )

        published = publish_list(
            s.storage, key=member, root=root_pub, now=now, before_keep=write, state=s.state
        )
    version, payload = published.version, published.payload
    counts = {lvl: sum(1 for e in payload["entries"] if e[1] == lvl) for lvl in (1, 2, 3)}
    print(
        f"exposure list version {version} published, signed by {published.member_name}: "
        f"{len(payload['entries'])} passes "
        f"(level 1: {counts[1]}, level 2: {counts[2]}, level 3: {counts[3]}); pages call it out of date "
        f"after {utc_z(payload['valid_until'])}: publish again before then"
    )
    if args.site:
        print(
            f"the check page, its manifest and this list written to {args.site}: "
            "serve that folder from any web host"
        )
    return 0


@command(witness=Witness.CHECKS)
def reads(args: argparse.Namespace) -> int:
    from sync.central.committee.listing import reads_lines

    with session(args, readonly=True) as s:
        for line in reads_lines(s.storage.reads()):
            print(line)
    return 0


@command(witness=Witness.RECORDS)
def audit(args: argparse.Namespace) -> int:
    """`audit show`, `audit head`, `audit verify` (which reports what fails as the log not
    verifying, exit 1, rather than refusing)."""
    from sync.central.committee.audit import AuditError, Entry
    from sync.central.committee.listing import audit_lines
    from sync.central.committee.members import state_of
    from sync.central.committee.verify import verify_store

    head = getattr(args, "head", None)
    with session(args, readonly=True) as s:
        if args.audit_command == "show":
            for line in audit_lines(Entry.parse(*row) for row in s.storage.audit_entries()):
                print(line)
            return 0
        if head is not None and len(head) != 64:
            raise UsageError(
                f"--head {head}: {len(head)} of a head's 64 hex digits (a shortened hash): give the whole "
                "head, as `kiosk-central audit head` prints it"
            )
        try:
            if args.audit_command == "verify":
                s.verified = verify_store(s.storage, store=store_name(args), now=time.time(), head=head).state
            else:
                s.verified = state_of(s.storage)
        except AuditError as e:
            print(f"kiosk-central: audit log does NOT verify: {e}", file=sys.stderr)
            return 1
        state = s.verified
    if args.audit_command == "head":
        print(f"{state.count} {state.head}")
    else:
        print(
            f"audit log verifies: {state.count} entries, every link and signature, head "
            f"{state.head}"
            + (f"; contains the published head {head[:16]}..." if head else "")
            + "; it extends every head kiosks reported, and the store holds what it says "
            "(manifests, risk statements, the exposure list, the cases' holds)"
        )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    cases = sub.add_parser("case", help="outbreak cases: open, approve (a second member), close, list")
    case_sub = cases.add_subparsers(dest="case_command", required=True)
    for name, what in (
        ("open", "open a case (usable once a second member approves it)"),
        ("approve", "approve another member's case"),
        ("close", "close a case"),
    ):
        c = case_sub.add_parser(name, help=what)
        where(c)
        c.add_argument("--member-key", required=True, metavar="FILE")
        c.add_argument("--id", required=True, metavar="CASE")
        if name == "open":
            c.add_argument("--reason", required=True)
            c.add_argument("--from", dest="start", metavar="ISO8601", help="default: 14 days before --to")
            c.add_argument("--to", dest="end", metavar="ISO8601", help="default: now")
        c.set_defaults(func=case)
    cl = case_sub.add_parser("list", help="every case and its state")
    where(cl)
    cl.set_defaults(func=case)

    logs = sub.add_parser("audit", help="the committee's hash-chained, signed audit log")
    audit_sub = logs.add_subparsers(dest="audit_command", required=True)
    for name, what in (
        ("show", "every entry"),
        ("head", "count and hash of the head, to publish"),
        ("verify", "check every link and signature; non-zero on any change"),
    ):
        a = audit_sub.add_parser(name, help=what)
        where(a)
        if name == "verify":
            a.add_argument("--head", metavar="HASH", help="a head published earlier: must be in the log")
        a.set_defaults(func=audit)

    exposures = sub.add_parser("exposures", help="the exposure list visitors check on their phones (/check)")
    exposures_sub = exposures.add_subparsers(dest="exposures_command", required=True)
    publish_list = exposures_sub.add_parser(
        "publish",
        help="sign the list of passes at level 1 or more now (keyed hashes, levels, advice, expiries only)",
    )
    where(publish_list)
    publish_list.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys (root.pub)")
    publish_list.add_argument("--member-key", required=True, metavar="FILE", help="your member key: it signs")
    publish_list.add_argument(
        "--site", metavar="DIR", help="also write the /check page with the list into DIR, for any web host"
    )
    publish_list.set_defaults(func=exposures_publish)

    risk = sub.add_parser("set-risk", help="set a pass's level on the risk list kiosks download")
    where(risk)
    risk.add_argument("--pass-id", required=True, metavar="HEX")
    risk.add_argument("--level", required=True, type=int, choices=range(0, 4), metavar="N")
    risk.add_argument(
        "--expires-days",
        type=entry_days,
        default=14.0,
        metavar="DAYS",
        help="the entry leaves the list after this (default 14)",
    )
    risk.add_argument("--case", required=True, metavar="CASE", help="the approved, open case")
    risk.add_argument(
        "--member-key",
        required=True,
        action="append",
        metavar="FILE",
        help="your member key; at the deny level (a refusal at every door) twice: two independent "
        "members' key files",
    )
    risk.add_argument(
        "--keys",
        required=True,
        metavar="DIR",
        help="the committee's keys (the audit log names the pass by them)",
    )
    risk.set_defaults(func=set_risk)

    rd = sub.add_parser(
        "open-records", help="the committee opens check-ins for an outbreak case (logged); JSON lines"
    )
    where(rd)
    read_replica(rd)
    rd.add_argument("--keys", required=True, metavar="DIR", help="the committee's keys folder")
    rd.add_argument("--case", required=True, metavar="CASE", help="the outbreak case this reading is for")
    rd.add_argument("--kiosk", metavar="ID")
    rd.add_argument("--from", dest="start", metavar="ISO8601")
    rd.add_argument("--to", dest="end", metavar="ISO8601")
    rd.add_argument("--pass-id", metavar="HEX", help="only this pass's check-ins")
    rd.add_argument("--csv", action="store_true", help="CSV with a header instead of JSON lines")
    rd.add_argument(
        "--member-key",
        required=True,
        action="append",
        metavar="FILE",
        help="twice: the key files of the two members acting together",
    )
    rd.set_defaults(func=open_records)

    tr = sub.add_parser(
        "trace",
        help="contact tracing for an approved case: the pass's check-ins "
        "by search tag, the passes present around them",
    )
    where(tr)
    read_replica(tr)
    tr.add_argument("--keys", required=True, metavar="DIR", help="the committee's keys (sealing, tag)")
    tr.add_argument(
        "--member-key",
        required=True,
        action="append",
        metavar="FILE",
        help="twice: the key files of the two members acting together",
    )
    tr.add_argument("--case", required=True, metavar="CASE")
    tr.add_argument("--pass-id", required=True, metavar="HEX", help="the infected visitor's pass")
    tr.add_argument("--from", dest="start", metavar="ISO8601")
    tr.add_argument("--to", dest="end", metavar="ISO8601")
    tr.add_argument(
        "--overlap",
        type=float,
        default=30.0,
        metavar="MINUTES",
        help="either side of each visit (default 30)",
    )
    tr.add_argument(
        "--raise-risk",
        type=int,
        choices=range(0, 4),
        metavar="N",
        help="put the exposed passes on the risk list at level N (tied to the case)",
    )
    tr.add_argument(
        "--risk-days",
        type=entry_days,
        default=14.0,
        metavar="DAYS",
        help="how long a raised entry lasts (default 14)",
    )
    fmt = tr.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument(
        "--csv",
        action="store_true",
        help="the exposed passes as CSV (one row per pass and visit), for a call centre",
    )
    tr.set_defaults(func=trace)

    rs = sub.add_parser("reads", help="the audit log of every opening of check-ins")
    where(rs)
    read_replica(rs)
    rs.set_defaults(func=reads)
