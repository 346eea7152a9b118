"""`kiosk-central release publish`: sign a release of the kiosk software for the fleet, with
its rollout (offline, with the root key); `release status`: what is published."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sync.central.cli.common import Witness, command, session, where


@command(witness=Witness.NONE)
def release_publish(args: argparse.Namespace) -> int:
    from sync.central.tufrepo import publish

    with session(args) as s:
        done = publish(
            Path(args.keys),
            s.storage,
            Path(args.release),
            now=time.time(),
            percent=args.percent,
            kiosks=tuple(args.kiosk or ()),
        )
    who = f"{done.rollout.percent}% of the fleet" + (
        f" and {len(done.rollout.kiosks)} named kiosks" if done.rollout.kiosks else ""
    )
    print(
        f"release {done.version} published: {done.files} files, targets version {done.targets_version} "
        f"(TUF root version {done.root_version}), for {who}"
    )
    print(
        "# kiosks install it at their next update check; widen it by publishing again with a larger --percent"
    )
    return 0


@command(witness=Witness.NONE)
def release_status(args: argparse.Namespace) -> int:
    from tuf.api.metadata import Metadata, Targets

    from kiosk.core.releasefiles import RELEASE_FILE, read_release

    with session(args, readonly=True) as s:
        doc = s.storage.update_doc("targets.json")
        data = s.storage.update_target(RELEASE_FILE)
    if doc is None or data is None:
        print("no release published")
        return 0
    targets = Metadata[Targets].from_bytes(doc.encode()).signed
    release = read_release(data)
    print(
        f"release {release.version}: targets version {targets.version}, signed until "
        f"{targets.expires:%Y-%m-%d %H:%M} UTC, for {release.rollout.percent}% of the fleet"
        + (f" and kiosks {', '.join(release.rollout.kiosks)}" if release.rollout.kiosks else "")
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    rel = sub.add_parser(
        "release", help="releases of the kiosk software: signed offline, relayed by the server"
    )
    rel_sub = rel.add_subparsers(dest="release_command", required=True)
    pub = rel_sub.add_parser(
        "publish",
        help="sign a release folder (scripts/release --out DIR) for the fleet with the root key (offline)",
    )
    pub.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder (root.key)")
    where(pub)
    pub.add_argument(
        "--percent",
        type=int,
        default=100,
        choices=range(0, 101),
        metavar="N",
        help="roll out to this share of the fleet (0-100; default 100); publish again to widen",
    )
    pub.add_argument(
        "--kiosk",
        action="append",
        metavar="ID",
        help="a named kiosk that installs it whatever the share (repeat)",
    )
    pub.add_argument("release", metavar="DIR", help="the release folder")
    pub.set_defaults(func=release_publish)
    st = rel_sub.add_parser("status", help="the release published, its rollout and its signature's expiry")
    where(st)
    st.set_defaults(func=release_status)
