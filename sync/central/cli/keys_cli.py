"""`kiosk-central keys ...`: the authority's keys on the committee's machine (the root, the
issuer, the server's two keys, the period keys, the committee's wrap key and its shares, a
root's successor, a member's key)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kiosk.core.faults import UsageError
from sync.central.cli.common import (
    Witness,
    command,
    day,
    member_key,
    session,
    two_member_keys,
    where,
)


@command(witness=Witness.NONE)
def keys_init(args: argparse.Namespace) -> int:
    from kiosk.core.keys import init_authority_keys

    for path in init_authority_keys(Path(args.dir)):
        print(path)
    return 0


@command(witness=Witness.NONE)
def keys_rotate(args: argparse.Namespace) -> int:
    from kiosk.core.sealkeys import covered_until
    from sync.central.keyring import distribute_tag_keys, public_periods, rotate
    from sync.central.manifests import publish

    now = time.time()
    made = rotate(Path(args.keys), now=now, ahead_periods=args.ahead)
    if args.data or args.database:
        with session(args) as s:
            n = distribute_tag_keys(Path(args.keys), s.storage, now=now)
            version = publish(Path(args.keys), s.storage, now=now)
        print(f"search-tag keys: {n} new ones sealed to registered kiosks' own keys")
        print(f"manifest version {version} published (the sealing periods kiosks seal to)")
    if made:
        print(
            f"made {len(made)} sealing key pairs: periods {day(min(k.valid_from for k in made))} "
            f"to {day(max(k.valid_from for k in made))}, normal and significant"
        )
    else:
        print("no new sealing keys needed")
    until = covered_until(public_periods(Path(args.keys)), now)
    print(
        f"covered until {day(until) if until else 'NOT covered now'}"
        + ("" if args.data or args.database else "; publish them with --data DIR or --database URL")
    )
    return 0


@command(witness=Witness.CHECKS)
def keys_retire(args: argparse.Namespace) -> int:
    from sync.central.committee.audit import AuditError
    from sync.central.committee.members import log_keys_retired, unlock_committee
    from sync.central.committee.storecheck import hold_problems
    from sync.central.keyring import retire

    now = time.time()
    if not (args.data or args.database):
        raise UsageError(
            "keys retire needs the store (--data DIR or --database URL): the records open cases "
            "hold are kept, and every destruction is logged there"
        )
    member, second = two_member_keys(args.member_key)
    with session(args) as s:
        unlock_committee(args.keys, s.state, member, second)  # two members act, before anything is destroyed
        wrong = hold_problems(s.state, s.storage, now=now)
        if wrong:  # the holds decide which keys are kept: they must be what the log says
            raise AuditError(f"{wrong[0]}: no key is destroyed until the holds are restored from a backup")
        destroyed, kept = retire(Path(args.keys), now=now, holds=s.storage.held_days())
        if destroyed or kept:
            log_keys_retired(
                s.storage, key=member, second=second, periods=destroyed, now=now, kept=kept, state=s.state
            )
    for k in kept:
        print(
            f"kept: period {day(k.valid_from)} {k.klass} (key {k.kid}): an open case holds records "
            "it may have sealed, of its day (kept until the case closes, never past 90 days after "
            "the period)"
        )
    for k in destroyed:
        print(
            f"destroyed: period {day(k.valid_from)} {k.klass} (key {k.kid}): its records can "
            "no longer be opened by anyone"
        )
    print(f"{len(destroyed)} private sealing keys destroyed")
    return 0


@command(witness=Witness.CHECKS)
def keys_share(args: argparse.Namespace) -> int:
    """Split the committee's wrap key between the active members (2 of n): the first time,
    signed by one member; after a member joins or leaves, two members re-issue it."""
    from sync.central.committee.custody import issue, wrap_document
    from sync.central.committee.members import log_keys_shared, unlock_committee
    from sync.central.keyring import wrap_clear_keys

    now = time.time()
    with session(args) as s:
        state = s.state
        members = {m.member_id: m.public_key for m in state.active_members()}
        unlocked, second = None, None
        if wrap_document(Path(args.keys)) is not None:
            signer, second = two_member_keys(args.member_key)
            unlocked = unlock_committee(args.keys, state, signer, second)
        elif not args.member_key or len(args.member_key) > 2:
            raise UsageError("keys share needs --member-key of an active member (it signs the log entry)")
        else:
            signer = member_key(args.member_key[0])
            second = member_key(args.member_key[1]) if len(args.member_key) == 2 else None
            state.active_member(signer)
        wrap_id = issue(Path(args.keys), members, now=now, unlocked=unlocked)
        log_keys_shared(
            s.storage,
            key=signer,
            second=second,
            wrap_id=wrap_id,
            members=sorted(members),
            reissued=bool(unlocked),
            now=now,
            state=state,
        )
    moved = wrap_clear_keys(Path(args.keys))
    names = ", ".join(sorted(state.name_of(m) for m in members))
    print(
        f"committee wrap key {wrap_id}: one share each for {len(members)} members ({names}); any two "
        "together open records, one alone opens nothing"
        + ("; the earlier shares are destroyed" if unlocked else "")
    )
    if moved:
        print(f"{moved} period keys kept in clear until now are sealed to it and their clear files shredded")
    return 0


@command(witness=Witness.NONE)
def keys_server(args: argparse.Namespace) -> int:
    """The central server's keys folder from the authority's: bundle.key, receipt.key and
    root.pub, nothing else (sync.central.keyring.SERVER_FILES)."""
    from sync.central.keyring import SERVER_FILES, server_keys_folder

    out = server_keys_folder(Path(args.keys), Path(args.out))
    for name in SERVER_FILES:
        print(out / name)
    print(
        f"the server's keys folder: copy {out} to the server and run "
        f"`kiosk-central serve ... --keys {args.out}` there; the authority's folder ({args.keys}) "
        "stays on the committee's machine",
        file=sys.stderr,
    )
    return 0


@command(witness=Witness.NONE)
def keys_successor(args: argparse.Namespace) -> int:
    """A root succession on the committee's machine (sync.central.succession)."""
    from kiosk.core.roots import fingerprint
    from sync.central.manifests import publish
    from sync.central.succession import make_successor, promote, successor_public

    keys = Path(args.keys)
    if not args.promote:
        pub = make_successor(keys)
        place = f"--data {args.data}" if args.data else "--database URL"
        print(f"successor root {fingerprint(successor_public(keys))} made: {pub} (its private key beside it)")
        print(
            f"next: kiosk-central manifest publish --keys {args.keys} {place} --next-root {pub}; then "
            f"kiosk-central keys successor --keys {args.keys} {place} --promote"
        )
        return 0
    version = None
    if args.data or args.database:
        with session(args) as s:
            old, new, signed = promote(keys, s.storage, now=time.time())
            version = publish(keys, s.storage, now=time.time())
    else:
        old, new, signed = promote(keys, None, now=time.time())
    print(
        f"root {new} is the root now; the old root {old} is shredded (its public half kept as root-{old}.pub)"
    )
    if version is not None:
        print(
            f"{signed} search-tag key documents signed again by it; manifest version {version} signed by it"
        )
    else:
        print("give --data or --database to sign the search-tag keys again and publish its first manifest")
    return 0


@command(witness=Witness.NONE)
def keys_init_member(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.keys import public_pem, write_private, write_public
    from sync.central.committee.audit import member_id

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    if (d / "member.key").exists():
        raise UsageError(f"{d / 'member.key'}: already exists; not overwriting it")
    key = Ed25519PrivateKey.generate()
    write_private(d / "member.key", key)
    write_public(d / "member.pub", key.public_key())
    print(
        f"# {d / 'member.key'} (0600) is yours alone; member id {member_id(key.public_key())}: a founder "
        f"signs in with `kiosk-central member found --name NAME --member-key {d / 'member.key'}`, a later "
        f"member is added by a member with `kiosk-central member add --public-key {d / 'member.pub'}`",
        file=sys.stderr,
    )
    sys.stdout.write(public_pem(key.public_key()).decode())
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="authority keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="make the root, issuer and the server's two key pairs")
    init.add_argument("--dir", required=True)
    init.set_defaults(func=keys_init)
    rot = keys_sub.add_parser("rotate", help="make per-period sealing key pairs ahead (crypto-shredding)")
    rot.add_argument("--keys", required=True, metavar="DIR")
    rot.add_argument(
        "--ahead",
        type=int,
        default=56,
        metavar="N",
        help="periods (days) ahead to cover (default 56: eight weeks offline)",
    )
    where(
        rot,
        required=False,
        data_help="also seal the search-tag keys to every registered kiosk (the server hands them out)",
    )
    rot.set_defaults(func=keys_rotate)
    ret = keys_sub.add_parser("retire", help="destroy private sealing keys past their retention")
    ret.add_argument("--keys", required=True, metavar="DIR")
    where(ret, required=False, data_help="log the retirement in the audit log there")
    ret.add_argument(
        "--member-key",
        action="append",
        metavar="FILE",
        help="twice: the two members acting together (both are logged)",
    )
    ret.set_defaults(func=keys_retire)
    share = keys_sub.add_parser(
        "share",
        help="split the committee's wrap key between the active members (2 of n); "
        "re-issue after a member leaves",
    )
    share.add_argument("--keys", required=True, metavar="DIR")
    where(share)
    share.add_argument(
        "--member-key",
        action="append",
        metavar="FILE",
        help="the member signing the log entry; to re-issue, twice: two members holding shares "
        "of the current key",
    )
    share.set_defaults(func=keys_share)
    succ = keys_sub.add_parser(
        "successor",
        help="a root succession: make the successor (then `manifest publish --next-root`), then "
        "--promote it (the old root shredded, the tag keys signed again)",
    )
    succ.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder")
    succ.add_argument("--promote", action="store_true", help="the successor becomes the root")
    where(succ, required=False, data_help="with --promote: sign the tag keys again, publish a manifest")
    succ.set_defaults(func=keys_successor)
    ks = keys_sub.add_parser(
        "server",
        help="make the central server's keys folder from the authority's: bundle.key, receipt.key "
        "and root.pub only (never a private root, issuer or member key)",
    )
    ks.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder")
    ks.add_argument("--out", required=True, metavar="DIR", help="the server's keys folder to make")
    ks.set_defaults(func=keys_server)
    im = keys_sub.add_parser("init-member", help="an Ed25519 key for one committee member")
    im.add_argument("--dir", required=True)
    im.set_defaults(func=keys_init_member)
