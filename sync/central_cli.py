"""`kiosk-central`: the authority's command line (keys, passes, the central server)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.keys import KeyFileError, init_authority_keys


def cmd_keys_init(args) -> int:
    for path in init_authority_keys(Path(args.dir)):
        print(path)
    return 0


def cmd_issue_pass(args) -> int:
    from kiosk.render import save_pass
    from sync.authority import issue_pass, parse_time

    issued = parse_time(args.issued) if args.issued else None
    expires = parse_time(args.expires) if args.expires else None
    text, pass_id = issue_pass(Path(args.keys), risk=args.risk, issued=issued, expires=expires)
    if args.png or args.svg:
        save_pass(text, png=args.png, svg=args.svg)
    if args.text:
        print(text)
    else:
        # The pass id is the committee's record of this pass: it goes to the authority's
        # operator, never into a kiosk log.
        print(f"pass issued: risk {args.risk}, pass id {pass_id.hex()}"
              + (f", png {args.png}" if args.png else "") + (f", svg {args.svg}" if args.svg else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-central", description="The health committee's side")
    sub = p.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="authority keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="make the issuer, bundle and sealing key pairs")
    init.add_argument("--dir", required=True)
    init.set_defaults(func=cmd_keys_init)

    issue = sub.add_parser("issue-pass", help="issue a signed pass")
    issue.add_argument("--keys", required=True, metavar="DIR")
    issue.add_argument("--risk", required=True, type=int, choices=range(0, 4), metavar="N")
    issue.add_argument("--issued", metavar="ISO8601")
    issue.add_argument("--expires", metavar="ISO8601")
    issue.add_argument("--text", action="store_true", help="print exactly the pass text")
    issue.add_argument("--png", metavar="FILE")
    issue.add_argument("--svg", metavar="FILE")
    issue.set_defaults(func=cmd_issue_pass)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyFileError, ValueError) as e:
        print(f"kiosk-central: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
