"""`kiosk-central init`, `member ...`, `manifest publish`: the authority's store, the committee's
members (founded by two, added by one and approved by another), and the root's manifests."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kiosk.core.faults import UsageError
from sync.central.cli.common import Witness, command, member_key, session, where


@command(witness=Witness.RECORDS)
def init(args: argparse.Namespace) -> int:
    """Create the authority's store; with --name and --member-key (or the older --public-key),
    its first founder signs in too. The committee acts once a second founder has signed in
    with their own key (`member found`)."""
    from kiosk.core.keys import load_ed25519_public
    from sync.central.committee.audit import State
    from sync.central.committee.members import add_member, found_member

    if args.name and not (args.member_key or args.public_key):
        raise UsageError("the first founder signs in with --name and --member-key (their own key file)")
    if (args.member_key or args.public_key) and not args.name:
        raise UsageError("the first founder needs --name too")
    key = member_key(args.member_key) if args.member_key else None  # read before any store is made
    public = load_ed25519_public(args.public_key) if args.public_key else None
    if key is not None and public is not None:
        if public.public_bytes_raw() != key.public_key().public_bytes_raw():
            raise UsageError(f"--public-key {args.public_key} is not the public half of --member-key")
    place = f"--data {args.data}" if args.data else "--database URL"
    with session(args, create=True) as s:
        if s.storage.audit_length() > 0 or s.storage.audit_entries():
            raise UsageError("this store is initialised already (its audit log has entries)")
        s.verified = State()  # an empty log: what the founder's entry extends
        if key is not None:
            mid = found_member(s.storage, name=args.name, key=key, now=time.time(), state=s.verified)
        elif public is not None:  # the older form: the first member named, unsigned (bootstrap)
            mid = add_member(
                s.storage,
                name=args.name,
                public_key=public,
                key=None,
                now=time.time(),
                bootstrap=True,
                state=s.verified,
            )
        else:
            print(
                "store initialised; no founder yet: the committee is founded by two people, each "
                f"signing in with their own key: kiosk-central member found {place} --name NAME "
                "--member-key FILE (one each)"
            )
            return 0
    print(
        f"store initialised; first founder {mid} ({args.name}); the committee acts once a second "
        f"founder signs in with their own key: kiosk-central member found {place} --name NAME "
        "--member-key FILE"
    )
    return 0


@command(witness=Witness.CHECKS)
def member_found(args: argparse.Namespace) -> int:
    from sync.central.committee.members import found_member

    key = member_key(args.member_key)
    with session(args) as s:
        mid = found_member(s.storage, name=args.name, key=key, now=time.time(), state=s.state)
        state = s.state
    if state.founded:
        others = ", ".join(state.name_of(m) for m in state.founders if m != mid)
        print(
            f"founder {mid} ({args.name}) signed in: the committee is founded by {others} and "
            f"{args.name}; next, one of you splits the committee's keys: kiosk-central keys share"
        )
    else:
        print(
            f"founder {mid} ({args.name}) signed in; the committee acts once a second founder signs in "
            "with their own key (kiosk-central member found ... --member-key FILE)"
        )
    return 0


@command(witness=Witness.CHECKS)
def member_add(args: argparse.Namespace) -> int:
    from kiosk.core.keys import load_ed25519_public
    from sync.central.committee.members import add_member

    with session(args) as s:
        mid = add_member(
            s.storage,
            name=args.name,
            public_key=load_ed25519_public(args.public_key),
            key=member_key(args.member_key) if args.member_key else None,
            now=time.time(),
            state=s.state,
        )
        pending = not s.state.members[mid].approved
    if pending:
        print(f"member {mid} ({args.name}) added, pending: a second member runs `member approve`")
    else:
        print(f"member {mid} ({args.name}) added")
    return 0


@command(witness=Witness.CHECKS)
def member_approve(args: argparse.Namespace) -> int:
    """`member approve` and `member revoke`."""
    from sync.central.committee.members import approve_member, revoke_member

    act = approve_member if args.member_command == "approve" else revoke_member
    with session(args) as s:
        print(
            act(
                s.storage, key=member_key(args.member_key), member=args.member, now=time.time(), state=s.state
            )
        )
    print("run `kiosk-central manifest publish` so kiosks follow the committee's members")
    return 0


@command(witness=Witness.CHECKS)
def manifest_publish(args: argparse.Namespace) -> int:
    from sync.central.manifests import publish

    with session(args) as s:
        version = publish(
            Path(args.keys),
            s.storage,
            now=time.time(),
            deny_level=args.deny_level,
            next_root=Path(args.next_root) if args.next_root else None,
            state=s.state,
        )
    print(f"manifest version {version} signed by the root and published: kiosks take it at their next sync")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    ini = sub.add_parser(
        "init",
        help="create the authority's store (the only command that does); with --name and "
        "--member-key its first founder signs in too",
    )
    where(ini)
    ini.add_argument("--name", help="the first founder's name")
    ini.add_argument(
        "--member-key", metavar="FILE", help="the first founder's own member.key: they sign their entry"
    )
    ini.add_argument(
        "--public-key",
        metavar="FILE",
        help="older form: the first founder's member.pub, unsigned (--member-key is better)",
    )
    ini.set_defaults(func=init)

    member = sub.add_parser("member", help="committee members")
    member_sub = member.add_subparsers(dest="member_command", required=True)
    madd = member_sub.add_parser(
        "add",
        help="register a member's public key (the first one "
        "without --member-key; later ones signed by a member)",
    )
    where(madd)
    madd.add_argument("--name", required=True)
    madd.add_argument("--public-key", required=True, metavar="FILE")
    madd.add_argument("--member-key", metavar="FILE", help="the adding member's key")
    madd.set_defaults(func=member_add)
    mfound = member_sub.add_parser(
        "found",
        help="a founder signs in with their own key (the committee is founded by two, before "
        "anything else; either founder approves the other's case)",
    )
    where(mfound)
    mfound.add_argument("--name", required=True)
    mfound.add_argument("--member-key", required=True, metavar="FILE", help="your own member key")
    mfound.set_defaults(func=member_found)
    for name, what in (
        ("approve", "approve a pending addition, or confirm a revocation (a second member)"),
        ("revoke", "revoke a member (confirmed by a second member once two are active)"),
    ):
        m = member_sub.add_parser(name, help=what)
        where(m)
        m.add_argument("--member", required=True, metavar="ID|NAME", help="the member concerned")
        m.add_argument("--member-key", required=True, metavar="FILE", help="your member key")
        m.set_defaults(func=member_approve)

    man = sub.add_parser("manifest", help="what kiosks trust, signed by the offline root key")
    man_sub = man.add_subparsers(dest="manifest_command", required=True)
    pub = man_sub.add_parser(
        "publish", help="sign the next manifest (issuer keys, sealing periods, policy, members, server keys)"
    )
    where(pub)
    pub.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder (root.key)")
    pub.add_argument(
        "--deny-level",
        type=int,
        choices=range(1, 4),
        metavar="N",
        help="refuse entry from this level (default: as before; 3 at first)",
    )
    pub.add_argument("--next-root", metavar="FILE", help="a successor root's public key kiosks pin next")
    pub.set_defaults(func=manifest_publish)
