"""`kiosk-central issue-pass`, `issue-passes`, `pass show`: passes, one at a time or in bulk
(cards to print, images for phones, the issuing office's manifest), and reading one back."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from kiosk.core.faults import UsageError
from kiosk.core.timing import utc_z
from sync.central.cli.common import Witness, command


@command(witness=Witness.NONE)
def issue_pass(args: argparse.Namespace) -> int:
    from kiosk.core.passnumbers import pass_number
    from sync.central.issuing import issue_pass as issue
    from sync.central.issuing import parse_time, save_pass

    issued = parse_time(args.issued) if args.issued else None
    expires = parse_time(args.expires) if args.expires else None
    for flag, out in (("--png", args.png), ("--svg", args.svg)):
        if out and not Path(out).parent.is_dir():
            raise UsageError(f"{flag} {out}: the folder {Path(out).parent} does not exist")
        if out and Path(out).is_dir():
            raise UsageError(f"{flag} {out}: a folder: give the image's file name")
    text, pass_id = issue(Path(args.keys), risk=args.risk, issued=issued, expires=expires)
    if args.png or args.svg:
        save_pass(text, png=args.png, svg=args.svg)
    if args.text:
        print(text)
    else:
        # The pass id is the committee's record of this pass: it goes to the authority's
        # operator, never into a kiosk log.
        print(
            f"pass issued: risk {args.risk}, number {pass_number(pass_id)}, pass id {pass_id.hex()}"
            + (f", png {args.png}" if args.png else "")
            + (f", svg {args.svg}" if args.svg else "")
        )
    return 0


@command(witness=Witness.NONE)
def issue_passes(args: argparse.Namespace) -> int:
    from kiosk.core.keys import ISSUER_KEY, load_ed25519_private
    from sync.central.issuing import ISSUER_NAME, card_check_url
    from sync.central.passcards import (
        DEFAULT_CARD_DAYS,
        MAX_VALIDITY_DAYS,
        counted_requests,
        csv_requests,
        issue_batch,
    )

    issued = datetime.now(UTC).replace(microsecond=0)
    days = DEFAULT_CARD_DAYS if args.expires is None else args.expires
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise UsageError(f"--expires: 1 to {MAX_VALIDITY_DAYS} days (cards last at most a year), not {days}")
    if args.csv:
        requests = csv_requests(
            Path(args.csv), issued=issued, days=days, risk=args.risk, reference=args.reference_column
        )
    else:
        requests = counted_requests(args.count, issued=issued, days=days, risk=args.risk)
    key = load_ed25519_private(Path(args.keys) / ISSUER_KEY)
    result = issue_batch(
        requests,
        Path(args.out),
        key=key,
        issuer=ISSUER_NAME,
        issued=issued,
        images=args.images,
        check_url=card_check_url(args.check_url, Path(args.keys)),
        authority=args.authority or "",
        contact=args.contact or "",
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    total = result.sign_s + result.cards_s + result.images_s
    print(
        f"{result.count:,} passes issued into {result.out}: "
        + (result.files[0] if len(result.files) == 1 else f"{result.files[0]} to {result.files[-1]}")
        + f" ({result.pages:,} A4 pages, "
        f"{result.count / max(result.cards_s, 1e-9):,.0f} cards a second), "
        + (f"{args.images.upper()} images in images/, " if args.images != "none" else "")
        + f"manifest.csv ({result.count / max(total, 1e-9):,.0f} passes a second in all)"
    )
    print(
        "manifest.csv links each reference to its pass id: it stays with the issuing office "
        "(mode 0600), never on the central server"
    )
    if not (args.authority and args.contact):
        print(
            "kiosk-central: warning: the cards carry no "
            + " and no ".join(
                w for w, v in (("authority name", args.authority), ("contact", args.contact)) if not v
            )
            + ": the privacy notice promises both on every pass (--authority NAME --contact TEXT)",
            file=sys.stderr,
        )
    return 0


@command(witness=Witness.NONE)
def pass_show(args: argparse.Namespace) -> int:
    import csv as csvmod

    from kiosk.core.keys import trusted_issuers
    from kiosk.core.passes import PassError, unverified_claims, verify_pass
    from kiosk.core.passnumbers import pass_number
    from sync.central.issuing import pass_from

    if sum(bool(x) for x in (args.text, args.image, args.number)) != 1:
        raise UsageError("pass show takes one of: the pass TEXT, --image FILE or --number N")
    text, pass_id = pass_from(text=args.text, image=args.image, number=args.number)

    if text is not None:
        try:
            claims = unverified_claims(text)
        except PassError as e:
            raise UsageError(
                f"not a pass ({e.reason.value}): "
                f"{'the image' if args.image else 'the text'} holds no readable pass"
            ) from None
        signature = "not checked (give --keys DIR to check it)"
        if args.keys:
            files = sorted(Path(args.keys).glob("issuer*.pub"))
            if not files:
                raise UsageError(f"--keys {args.keys}: no issuer*.pub in it (the authority's keys folder?)")
            try:
                verify_pass(text, trusted_issuers(files))
                signature = f"valid (issuer key {claims.kid.hex()})"
            except PassError as e:
                print(f"number:    {pass_number(claims.pass_id)}")
                print(f"pass id:   {claims.pass_id.hex()}")
                print(
                    f"kiosk-central: refused: this pass does not verify ({e.reason.value}): "
                    f"forged, altered, or not signed by an issuer key in {args.keys}",
                    file=sys.stderr,
                )
                return 1
        print(f"number:    {pass_number(claims.pass_id)}")
        print(f"pass id:   {claims.pass_id.hex()}")
        print(f"issuer:    {claims.issuer} (key {claims.kid.hex()})")
        print(f"issued:    {utc_z(claims.issued_at)}")
        print(f"expires:   {utc_z(claims.expires_at)}")
        print(f"risk:      {claims.risk_level} (as issued; the committee's risk list may raise it)")
        print(f"signature: {signature}")
        return 0
    assert pass_id is not None
    print(f"number:    {pass_number(pass_id)}")
    print(f"pass id:   {pass_id.hex()}")
    for manifest in args.manifest or []:
        try:
            with open(manifest, newline="", encoding="utf-8") as f:
                for row in csvmod.DictReader(f):
                    if row.get("pass_id") == pass_id.hex():
                        print(f"issuer:    {row['issuer']}")
                        print(f"issued:    {row['issued']}")
                        print(f"expires:   {row['expires']}")
                        print(f"risk:      {row['risk']} (as issued; the committee's risk list may raise it)")
                        print(f"reference: {row['reference'] or '-'} (from {manifest})")
                        return 0
        except (KeyError, csvmod.Error, UnicodeDecodeError):
            raise UsageError(f"--manifest {manifest}: not a manifest.csv written by issue-passes") from None
    if args.manifest:
        print(
            f"kiosk-central: not found: no pass with this number in {', '.join(args.manifest)}",
            file=sys.stderr,
        )
        return 1
    print(
        "issuer, issued, expires, risk: not in the number; give --manifest FILE (the issuing "
        "office's manifest.csv), or the card itself (TEXT or --image FILE)"
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    issue = sub.add_parser("issue-pass", help="issue a signed pass")
    issue.add_argument("--keys", required=True, metavar="DIR")
    issue.add_argument("--risk", required=True, type=int, choices=range(0, 4), metavar="N")
    issue.add_argument("--issued", metavar="ISO8601")
    issue.add_argument("--expires", metavar="ISO8601")
    issue.add_argument("--text", action="store_true", help="print exactly the pass text")
    issue.add_argument("--png", metavar="FILE")
    issue.add_argument("--svg", metavar="FILE")
    issue.set_defaults(func=issue_pass)

    bulk = sub.add_parser(
        "issue-passes",
        help="issue passes in bulk: a printable PDF of cards, an image per pass, the office's manifest",
    )
    bulk.add_argument("--keys", required=True, metavar="DIR")
    source = bulk.add_mutually_exclusive_group(required=True)
    source.add_argument("--count", type=int, metavar="N", help="N passes with no reference")
    source.add_argument(
        "--csv", metavar="FILE", help="one pass per row: a 'reference' column, optional 'expires' and 'risk'"
    )
    bulk.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder for the batch")
    bulk.add_argument(
        "--reference-column",
        default="reference",
        metavar="NAME",
        help="the CSV's column holding the office's own reference (default: reference)",
    )
    bulk.add_argument("--expires", type=int, metavar="DAYS", help="days from now, 1 to 366 (default 365)")
    bulk.add_argument("--risk", type=int, default=0, choices=range(0, 4), metavar="N", help="default 0")
    bulk.add_argument(
        "--images", choices=("png", "svg", "none"), default="png", help="one image per pass for phones"
    )
    bulk.add_argument("--check-url", metavar="URL", help="the exposure check page to print on the cards")
    bulk.add_argument(
        "--authority",
        metavar="NAME",
        help="the health authority's name, printed on each card (the privacy notice promises it)",
    )
    bulk.add_argument(
        "--contact",
        metavar="TEXT",
        help="how to reach it (a phone number, an address), printed beside the name on each card",
    )
    bulk.set_defaults(func=issue_passes)

    pass_ = sub.add_parser("pass", help="read a pass: from its text, a photo of it, or its number")
    pass_sub = pass_.add_subparsers(dest="pass_command", required=True)
    show = pass_sub.add_parser("show", help="a pass's number, id, issuer, issued, expiry and risk level")
    show.add_argument("text", nargs="?", metavar="TEXT", help="the pass text (VC1:...)")
    show.add_argument("--image", metavar="FILE", help="a photo or image of the pass's QR code")
    show.add_argument("--number", metavar="N", help="the pass number printed under the QR code")
    show.add_argument("--keys", metavar="DIR", help="check the signature against the issuer keys in DIR")
    show.add_argument(
        "--manifest", action="append", metavar="FILE", help="issue-passes' manifest.csv (for --number)"
    )
    show.set_defaults(func=pass_show)
