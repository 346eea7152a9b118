"""`kiosk-central`: the authority's command line (keys, passes, the central server)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from pathlib import Path

from kiosk.core.keys import KeyFileError, init_authority_keys
from kiosk.core.timing import DAY, utc_z


def cmd_keys_init(args) -> int:
    for path in init_authority_keys(Path(args.dir)):
        print(path)
    return 0


def _day(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def cmd_keys_rotate(args) -> int:
    import time

    from kiosk.core.sealkeys import covered_until
    from sync.central.keyring import public_periods, rotate

    now = time.time()
    made = rotate(Path(args.keys), now=now, ahead_periods=args.ahead)
    if args.data or args.database:
        from sync.central.keyring import distribute_tag_keys
        from sync.central.manifests import publish

        storage = _storage(args)
        try:
            n = distribute_tag_keys(Path(args.keys), storage, now=now)
            version = publish(Path(args.keys), storage, now=now)
        finally:
            storage.close()
        print(f"search-tag keys: {n} new ones sealed to registered kiosks' own keys")
        print(f"manifest version {version} published (the sealing periods kiosks seal to)")
    if made:
        print(
            f"made {len(made)} sealing key pairs: periods {_day(min(k.valid_from for k in made))} "
            f"to {_day(max(k.valid_from for k in made))}, normal and significant"
        )
    else:
        print("no new sealing keys needed")
    until = covered_until(public_periods(Path(args.keys)), now)
    print(
        f"covered until {_day(until) if until else 'NOT covered now'}"
        + ("" if args.data or args.database else "; publish them with --data DIR or --database URL")
    )
    return 0


def cmd_keys_retire(args) -> int:
    import time

    from sync.central.committee.members import log_keys_retired
    from sync.central.keyring import retire

    now = time.time()
    if not (args.data or args.database):
        raise ValueError(
            "keys retire needs the store (--data DIR or --database URL): the records open cases "
            "hold are kept, and every destruction is logged there"
        )
    member, second = _two_member_keys(args.member_key)
    storage = _storage(args)
    try:
        _unlock(args.keys, storage, member, second)  # two members act, before anything is destroyed
        from sync.central.committee.members import state_of
        from sync.central.committee.storecheck import hold_problems

        wrong = hold_problems(state_of(storage), storage, now=now)
        if wrong:  # the holds decide which keys are kept: they must be what the log says
            from sync.central.committee.audit import AuditError

            raise AuditError(f"{wrong[0]}: no key is destroyed until the holds are restored from a backup")
        destroyed, kept = retire(Path(args.keys), now=now, holds=storage.held_kids())
        if destroyed or kept:
            log_keys_retired(storage, key=member, second=second, periods=destroyed, now=now, kept=kept)
    finally:
        storage.close()
    for k in kept:
        print(
            f"kept: period {_day(k.valid_from)} {k.klass} (key {k.kid}): an open case holds records "
            "sealed to it (kept until the case closes, never past 90 days after the period)"
        )
    for k in destroyed:
        print(
            f"destroyed: period {_day(k.valid_from)} {k.klass} (key {k.kid}): its records can "
            "no longer be opened by anyone"
        )
    print(f"{len(destroyed)} private sealing keys destroyed")
    return 0


def cmd_keys_share(args) -> int:
    """Split the committee's wrap key between the active members (2 of n): the first time,
    signed by one member; after a member joins or leaves, two members re-issue it."""
    import time

    from sync.central.committee.custody import issue, wrap_document
    from sync.central.committee.members import log_keys_shared, state_of
    from sync.central.keyring import wrap_clear_keys

    now = time.time()
    storage = _storage(args)
    try:
        state = state_of(storage)
        members = {m.member_id: m.public_key for m in state.active_members()}
        unlocked, second = None, None
        if wrap_document(Path(args.keys)) is not None:
            signer, second = _two_member_keys(args.member_key)
            unlocked = _unlock(args.keys, storage, signer, second)
        elif not args.member_key or len(args.member_key) > 2:
            raise ValueError("keys share needs --member-key of an active member (it signs the log entry)")
        else:
            signer = _member_key(args.member_key[0])
            second = _member_key(args.member_key[1]) if len(args.member_key) == 2 else None
            state.active_member(signer)
        wrap_id = issue(Path(args.keys), members, now=now, unlocked=unlocked)
        log_keys_shared(
            storage,
            key=signer,
            second=second,
            wrap_id=wrap_id,
            members=sorted(members),
            reissued=bool(unlocked),
            now=now,
        )
    finally:
        storage.close()
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


def cmd_keys_server(args) -> int:
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


def cmd_keys_successor(args) -> int:
    """A root succession on the committee's machine (sync.central.succession)."""
    import time

    from kiosk.core.roots import fingerprint
    from sync.central.succession import make_successor, promote, successor_public

    keys = Path(args.keys)
    if not args.promote:
        pub = make_successor(keys)
        where = f"--data {args.data}" if args.data else "--database URL"
        print(f"successor root {fingerprint(successor_public(keys))} made: {pub} (its private key beside it)")
        print(
            f"next: kiosk-central manifest publish --keys {args.keys} {where} --next-root {pub}; then "
            f"kiosk-central keys successor --keys {args.keys} {where} --promote"
        )
        return 0
    storage = _storage(args) if (args.data or args.database) else None
    try:
        old, new, signed = promote(keys, storage, now=time.time())
        version = None
        if storage is not None:
            from sync.central.manifests import publish

            version = publish(keys, storage, now=time.time())
    finally:
        if storage is not None:
            storage.close()
    print(
        f"root {new} is the root now; the old root {old} is shredded (its public half kept as root-{old}.pub)"
    )
    if storage is not None:
        print(
            f"{signed} search-tag key documents signed again by it; manifest version {version} signed by it"
        )
    else:
        print("give --data or --database to sign the search-tag keys again and publish its first manifest")
    return 0


def cmd_issue_pass(args) -> int:
    from sync.central.issuing import issue_pass, parse_time, save_pass

    issued = parse_time(args.issued) if args.issued else None
    expires = parse_time(args.expires) if args.expires else None
    from kiosk.core.passnumbers import pass_number

    for flag, out in (("--png", args.png), ("--svg", args.svg)):
        if out and not Path(out).parent.is_dir():
            raise ValueError(f"{flag} {out}: the folder {Path(out).parent} does not exist")
        if out and Path(out).is_dir():
            raise ValueError(f"{flag} {out}: a folder: give the image's file name")

    text, pass_id = issue_pass(Path(args.keys), risk=args.risk, issued=issued, expires=expires)
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


def cmd_issue_passes(args) -> int:
    from datetime import datetime

    from kiosk.core.keys import ISSUER_KEY, load_ed25519_private
    from sync.central.issuing import ISSUER_NAME
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
        raise ValueError(f"--expires: 1 to {MAX_VALIDITY_DAYS} days (cards last at most a year), not {days}")
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
        check_url=_with_root(args.check_url, Path(args.keys)),
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


def _with_root(url: str | None, keys: Path) -> str:
    """The check page's address as a card prints it: with the root's fingerprint in its
    fragment (#root=...), which the page compares with the root it was built with (a page
    whose root was swapped says so). The fragment never reaches a server."""
    if not url:
        return ""
    from kiosk.core.keys import ROOT_PUB, load_ed25519_public
    from kiosk.core.roots import fingerprint

    return url if "#" in url else f"{url}#root={fingerprint(load_ed25519_public(keys / ROOT_PUB))}"


def _pass_from(args) -> tuple[str | None, bytes | None]:
    """(pass text, pass id) from what `pass show` was given."""
    from kiosk.core.passnumbers import parse_pass_number
    from sync.central.issuing import read_qr_image

    if args.number:
        return None, parse_pass_number(args.number)
    if args.image:
        texts = read_qr_image(Path(args.image))
        passes = [t for t in texts if t.startswith("VC1:")]
        if not passes:
            raise ValueError(
                f"{args.image}: "
                + (
                    "no QR code found in it (a sharper, larger or straighter photo?)"
                    if not texts
                    else "its QR code is not a pass (it does not start with VC1:)"
                )
            )
        if len(set(passes)) > 1:
            raise ValueError(f"{args.image}: {len(set(passes))} passes in one image: crop it to one")
        return passes[0], None
    return args.text.strip(), None


def cmd_pass_show(args) -> int:
    import csv as csvmod

    from kiosk.core.keys import trusted_issuers
    from kiosk.core.passes import PassError, unverified_claims, verify_pass
    from kiosk.core.passnumbers import pass_number

    if sum(bool(x) for x in (args.text, args.image, args.number)) != 1:
        raise ValueError("pass show takes one of: the pass TEXT, --image FILE or --number N")
    text, pass_id = _pass_from(args)

    if text is not None:
        try:
            claims = unverified_claims(text)
        except PassError as e:
            raise ValueError(
                f"not a pass ({e.reason.value}): "
                f"{'the image' if args.image else 'the text'} holds no readable pass"
            ) from None
        signature = "not checked (give --keys DIR to check it)"
        if args.keys:
            files = sorted(Path(args.keys).glob("issuer*.pub"))
            if not files:
                raise ValueError(f"--keys {args.keys}: no issuer*.pub in it (the authority's keys folder?)")
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
            raise ValueError(f"--manifest {manifest}: not a manifest.csv written by issue-passes") from None
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


def _storage(args, *, create: bool = False, readonly: bool = False):
    """The store a command names. Only `init` (``create``) makes one, and only its own folder
    (the folder above must exist): any other command given a folder or database that holds no
    store refuses, naming the path and `init` (a mistyped --data must not become a silent new,
    empty world). ``readonly``: the commands that only look open it read-only (nothing written,
    nothing migrated; a user who may only read the store can run them)."""
    from sync.central.storage.interface import ServerRetention, open_storage

    data, database = getattr(args, "data", None), getattr(args, "database", None)
    if data is not None:
        folder = Path(data)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--data {data}: not a folder (a store is a folder holding central.db)")
        if create and not folder.exists():
            if not folder.parent.is_dir():
                raise ValueError(
                    f"--data {data}: the folder {folder.parent} does not exist (init makes the store's "
                    "own folder, never the folders above it: check the path)"
                )
            folder.mkdir(mode=0o750)
        db = folder / "central.db"
        if db.exists() and not db.is_file():
            raise ValueError(
                f"--data {data}: {db} is not a file (a folder where the store's database belongs)"
            )
        if not create and not db.exists():
            raise ValueError(
                f"--data {data}: no store here (no central.db): check the path, or create one with "
                f"`kiosk-central init --data {data}`"
            )
    elif database is not None and not create:
        _require_schema(database)

    retention = ServerRetention(
        normal_days=getattr(args, "normal_days", 28), significant_days=getattr(args, "significant_days", 90)
    )
    return open_storage(
        data=data,
        database=database,
        retention=retention,
        read_database=getattr(args, "read_database", None),
        readonly=readonly,
    )


class StoreAccessError(Exception):
    """The store exists but this user may not read or write it (exit 5)."""


def store_fault(e: BaseException, args) -> tuple[str, str, int] | None:
    """A fault of the store itself, in one line naming it and what to do (never a traceback,
    never "internal error"): damaged (2), not this user's to read or write, busy (5)."""
    import sqlite3

    from sync.central.storage.sqlite_backend import StoreVersionError

    data = getattr(args, "data", None)
    where = f"--data {data}: central.db" if data else "the store"
    if isinstance(e, StoreVersionError):
        return "error", str(e), 2
    if isinstance(e, StoreAccessError):
        return "permission denied", str(e), 5
    if isinstance(e, sqlite3.Error):
        text = str(e)
        if "not a database" in text or "malformed" in text or "disk image" in text:
            return (
                "error",
                f"{where} is damaged ({text}): restore it from the last backup (nothing here re-creates "
                "it over the damaged file)",
                2,
            )
        if "readonly" in text or "unable to open" in text or "permission" in text.lower():
            import getpass

            return (
                "permission denied",
                f"{where}: {text} as user {getpass.getuser()}: run this as the store's owner (the "
                "server's user: sudo -u kiosk-central ...), or give this user read access to central.db "
                "and its -wal and -shm files (status, report, reads, case list and audit only read)",
                5,
            )
        if "locked" in text or "busy" in text:
            return "busy", f"{where}: {text}: another command holds it: try again in a moment", 5
        return "database error", f"{where}: {text}", 5
    try:
        import psycopg
    except ImportError:
        return None
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        first = str(e).strip().splitlines()[0]
        return (
            "permission denied",
            f"the database role may not do this ({first}): run it with a login in the right role "
            "(README: database roles)",
            5,
        )
    if isinstance(e, psycopg.errors.ReadOnlySqlTransaction):
        return "error", f"this command tried to write through a read-only session ({e}): a bug", 70
    if isinstance(e, psycopg.Error):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return "database error", f"the PostgreSQL database: {first}", 5
    return None


def _require_schema(url: str) -> None:
    """A PostgreSQL database `init` (or a server) set up; else refuse, naming `init`."""
    import psycopg

    from sync.central.storage.pg_backend import _safe

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            held = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot use the PostgreSQL database ({_safe(url)}): {first}") from None
    if not held or held[0] is None:
        raise ValueError(
            f"--database {_safe(url)}: no store in this database: check the URL, or create one with "
            "`kiosk-central init --database URL`"
        )


def cmd_purge(args) -> int:
    import time

    storage = _storage(args)
    try:
        result = storage.purge(now=time.time())
    finally:
        storage.close()
    print(result.summary())
    return 0


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return n


def _positive(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return n


def cmd_serve(args) -> int:
    from kiosk.core.logs import setup_logging
    from sync.central.server.webapp import serve

    setup_logging("INFO")
    if not args.keys and not args.data:
        print("kiosk-central: serve --database needs --keys DIR", file=sys.stderr)
        return 2
    keys = Path(args.keys) if args.keys else Path(args.data) / "keys"
    serve(
        lambda: _storage(args),
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


def cmd_register(args) -> int:
    import time

    from kiosk.core.keys import load_ed25519_public, load_x25519_public, raw_public

    storage = _storage(args)
    try:
        if args.revoke:
            if not storage.revoke_kiosk(args.revoke, now=time.time()):
                raise ValueError(
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
            raise ValueError("--keys seals search-tag keys to the kiosk's --tag-key: give its tag.pub too")
        now = time.time()
        kiosk_id = storage.register_kiosk(venue=args.venue, public_key=raw, now=now, tag_public=tag)
        print(kiosk_id)
        if args.keys:
            from sync.central.keyring import distribute_tag_keys

            n = distribute_tag_keys(Path(args.keys), storage, now=now)
            print(f"search-tag keys: {n} sealed to this kiosk; it holds them after its first `kiosk sync`")
        else:
            print(
                "kiosk-central: warning: no search-tag keys for this kiosk yet (no --keys DIR): its "
                "check-ins "
                "cannot be traced until `kiosk-central keys rotate --keys DIR --data ...` seals them; "
                "register with --tag-key and --keys to seal them now",
                file=sys.stderr,
            )
    finally:
        storage.close()
    return 0


def _pass_id(text: str) -> bytes | None:
    """--pass-id as issue-pass printed it; None (after saying why) if it is not one."""
    from kiosk.core.passes import PASS_ID_BYTES

    try:
        pass_id = bytes.fromhex(text)
    except ValueError:
        pass_id = b""
    if len(pass_id) != PASS_ID_BYTES:
        print(
            f"kiosk-central: --pass-id: expected {2 * PASS_ID_BYTES} hex digits (the id issue-pass printed)",
            file=sys.stderr,
        )
        return None
    return pass_id


def cmd_set_risk(args) -> int:
    import time

    from sync.central.committee.members import change_risk
    from sync.central.keyring import audit_hash_key
    from sync.central.manifests import deny_level

    pass_id = _pass_id(args.pass_id)
    if pass_id is None:
        return 2
    keys = args.member_key or []
    if len(keys) > 2:
        raise ValueError("--member-key: once (below the deny level), or twice (a refusal takes two members)")
    member = _member_key(keys[0])
    second = _member_key(keys[1]) if len(keys) == 2 else None
    if second is not None and second.public_key() == member.public_key():
        raise ValueError(f"both --member-key files hold the same member's key: a refusal {TWO_MEMBERS}")
    storage = _storage(args)
    now = time.time()
    expires = now + args.expires_days * DAY
    try:
        version = change_risk(
            storage,
            key=member,
            case_id=args.case,
            pass_ids=[pass_id],
            level=args.level,
            expires_at=expires,
            hash_key=audit_hash_key(Path(args.keys), now=now),
            second=second,
            deny_level=deny_level(Path(args.keys)),
            now=now,
        )  # needs an open case; a refusal, two independent members
    finally:
        storage.close()
    print(f"risk list version {version}: level {args.level} set, expires in {args.expires_days:g} days")
    return 0


def cmd_exposures_publish(args) -> int:
    import time

    from kiosk.core.keys import ROOT_PUB, load_ed25519_public, raw_public
    from sync.central.committee.exposures import publish_list

    now = time.time()
    member = _member_key(args.member_key)
    root_pub = load_ed25519_public(Path(args.keys) / ROOT_PUB)

    def write(published) -> None:  # the site first: a publish completes or changes nothing
        if args.site:
            from sync.central.checkpage import write_site
            from sync.central.succession import first_root

            succession = storage.succession_manifests()
            write_site(  # built with the first root, following its hand-overs (old cards stay good)
                Path(args.site),
                root_public=raw_public(first_root(Path(args.keys), succession)),
                manifest_doc=published.manifest_doc,
                exposures_doc=published.doc,
                succession=succession,
            )

    if args.site:
        from sync.central.checkpage import check_site_folder

        check_site_folder(Path(args.site))
    storage = _storage(args)
    try:
        published = publish_list(storage, key=member, root=root_pub, now=now, before_keep=write)
    finally:
        storage.close()
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


def status_lines(storage, *, now: float | None = None, thresholds=None) -> list[str]:
    """What `status` prints (sync.central.fleet): a line per kiosk, those needing attention
    first with the reasons, then a summary; from a row per kiosk, never from the records."""
    import time

    from sync.central.fleet import Thresholds, fleet, lines

    now = time.time() if now is None else now
    return lines(fleet(storage, now=now, thresholds=thresholds or Thresholds()), now=now)


def cmd_status(args) -> int:
    import json
    import time

    from sync.central.fleet import Thresholds, as_json, fleet, lines

    now = time.time()
    thresholds = Thresholds(silent_h=args.silent_hours, stale_bundle_h=args.stale_bundle_hours)
    storage = _storage(args, readonly=True)
    try:
        kiosks = fleet(storage, now=now, thresholds=thresholds)
    finally:
        storage.close()
    if args.json:
        print(json.dumps(as_json(kiosks, now=now), indent=1))
    else:
        for line in lines(kiosks, now=now):
            print(line)
    return 0


def cmd_report(args) -> int:
    import time

    from sync.central.report import render, report_data

    out = Path(args.html)
    if args.html.endswith(("/", "\\")) or out.is_dir():
        raise ValueError(
            f"--html {args.html}: a folder: give the page's file name (e.g. {out / 'fleet.html'})"
        )
    if not out.parent.is_dir():
        raise ValueError(f"--html {args.html}: the folder {out.parent} does not exist")
    if out.exists() and not out.is_file():
        raise ValueError(f"--html {args.html}: not a file")
    now = time.time()
    storage = _storage(args, readonly=True)
    try:
        data = report_data(storage, now=now, days=args.days)
    finally:
        storage.close()
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


def cmd_open_records(args) -> int:
    import json
    import time

    from sync.central.committee.reading import committee_keys, open_records
    from sync.central.keyring import audit_hash_key, tag_keys

    pass_id = None
    if args.pass_id:
        pass_id = _pass_id(args.pass_id)
        if pass_id is None:
            return 2
    member, second = _two_member_keys(args.member_key)
    storage = _storage(args)
    try:
        now = time.time()
        keys = committee_keys(Path(args.keys), _unlock(args.keys, storage, member, second))
        reading = open_records(
            storage,
            keys,
            case_id=args.case,
            member_key=member,
            second_key=second,
            kiosk_id=args.kiosk,
            from_ts=_ts(args.start),
            to_ts=_ts(args.end),
            pass_id=pass_id,
            tag_keys=tag_keys(Path(args.keys)),
            hash_key=audit_hash_key(Path(args.keys), now=now),
            now=now,
        )
    finally:
        storage.close()
    if args.csv:  # for a call centre: a header, then one row a record
        import csv

        from kiosk.core.console import csv_cell

        out = csv.writer(sys.stdout, lineterminator="\n")
        columns = [
            "captured_at",
            "venue",
            "kiosk_id",
            "pass_id",
            "risk_level",
            "decision",
            "reason",
            "record_id",
        ]
        out.writerow(columns)
        for rec in reading.records:  # no cell a spreadsheet would take for a formula
            out.writerow([csv_cell(rec[c]) for c in columns])
    else:
        for rec in reading.records:
            print(json.dumps(rec))
    print(
        f"reading {reading.read_id} logged for case {args.case}: {len(reading.records)} records "
        f"shown, {reading.unopenable} sealed to keys no longer held",
        file=sys.stderr,
    )
    for line in reading.flagged:
        print(f"FLAGGED {line}", file=sys.stderr)
    if reading.unsearched:
        print(
            f"{reading.unsearched} records in the window carry no search tag and could not be searched "
            "for this pass (kiosks that had no tag keys then); open the window without --pass-id to "
            "read them",
            file=sys.stderr,
        )
    return 0


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _ts(text: str | None) -> float | None:
    from sync.central.issuing import parse_time

    return parse_time(text).timestamp() if text else None


def _member_key(path: str):
    from kiosk.core.keys import load_ed25519_private

    return load_ed25519_private(path)


TWO_MEMBERS = (
    "needs two committee members acting together: give --member-key twice, one key file of "
    "each (the committee's keys are split between members; one alone opens nothing)"
)


def _two_member_keys(paths: list[str] | None):
    if not paths or len(paths) != 2:
        raise ValueError(f"this command {TWO_MEMBERS}")
    first, second = _member_key(paths[0]), _member_key(paths[1])
    if first.public_key() == second.public_key():
        raise ValueError(f"both --member-key files hold the same member's key: this command {TWO_MEMBERS}")
    return first, second


def _unlock(keys: str, storage, first, second):
    """The committee's wrap key, rebuilt in memory from the two members' shares (both must
    be active members in the verified audit log)."""
    from sync.central.committee.custody import unlock
    from sync.central.committee.members import state_of

    state = state_of(storage)
    state.active_member(first)
    state.active_member(second)
    return unlock(Path(keys), [first, second], active={m.member_id for m in state.active_members()})


def cmd_db_roles(args) -> int:
    from sync.central.storage.pg_backend import PgStorage
    from sync.central.storage.roles import GRANTS, apply

    PgStorage(args.database).close()  # the tables exist (migrations) before grants
    for role in apply(args.database):
        print(f"{role}: " + "; ".join(GRANTS[role]))
    return 0


def cmd_trace(args) -> int:
    import json
    import time

    from sync.central.committee.reading import committee_keys
    from sync.central.committee.trace import trace
    from sync.central.keyring import audit_hash_key, tag_keys
    from sync.central.manifests import deny_level

    pass_id = _pass_id(args.pass_id)
    if pass_id is None:
        return 2
    member, second = _two_member_keys(args.member_key)
    storage = _storage(args)
    try:
        now = time.time()
        result = trace(
            storage,
            committee_keys(Path(args.keys), _unlock(args.keys, storage, member, second)),
            tag_keys(Path(args.keys)),
            member_key=member,
            second_key=second,
            case_id=args.case,
            pass_id=pass_id,
            from_ts=_ts(args.start),
            to_ts=_ts(args.end),
            overlap_s=args.overlap * 60,
            raise_level=args.raise_risk,
            risk_days=args.risk_days,
            hash_key=audit_hash_key(Path(args.keys), now=now),
            deny_level=deny_level(Path(args.keys)),
            now=now,
        )
    finally:
        storage.close()
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    out = result.to_json()
    if args.csv:  # for a call centre: one row per exposed pass and visit it shared
        import csv

        from kiosk.core.console import csv_cell

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["exposed_pass_id", "venue", "kiosk_id", "visit_at", "check_ins", "check_in_times"])
        for v in out["visits"]:
            for e in v["exposed"]:
                w.writerow(
                    [
                        csv_cell(x)
                        for x in (
                            e["pass_id"],
                            v["venue"],
                            v["kiosk_id"],
                            v["at"],
                            e["count"],
                            " ".join(e["times"]),
                        )
                    ]
                )
        return 0
    print(
        f"case {args.case}: the pass checked in {_times(len(result.visits))} "
        f"({out['from']} to {out['to']}); {result.decrypted} records opened"
    )
    for v in out["visits"]:
        print(
            f"  {v['at']}  {v['venue']} ({v['kiosk_id']}): {len(v['exposed'])} other passes "
            f"within {args.overlap:g} minutes"
        )
        for e in v["exposed"]:
            print(f"      {e['pass_id']}  {e['count']} check-in(s): {', '.join(e['times'])}")
    for line in result.flagged:
        print(f"  FLAGGED {line}")
    if result.untagged:
        print(
            f"  {result.untagged} records in the window carry no search tag and were not searched "
            "(kiosks without tag keys)"
        )
    if result.raised:
        print(
            f"  raised {result.raised} passes to level {args.raise_risk} on the risk list, for "
            f"{args.risk_days:g} days, tied to case {args.case}"
        )
    return 0


# -- committee members, cases, the audit log --------------------------------------------------------
def cmd_keys_init_member(args) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.core.keys import public_pem, write_private, write_public
    from sync.central.committee.audit import member_id

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    if (d / "member.key").exists():
        raise ValueError(f"{d / 'member.key'}: already exists; not overwriting it")
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


def cmd_init(args) -> int:
    """Create the authority's store; with --name and --member-key (or the older --public-key),
    its first founder signs in too. The committee acts once a second founder has signed in
    with their own key (`member found`)."""
    import time

    from kiosk.core.keys import load_ed25519_public
    from sync.central.committee.members import add_member, found_member

    if args.name and not (args.member_key or args.public_key):
        raise ValueError("the first founder signs in with --name and --member-key (their own key file)")
    if (args.member_key or args.public_key) and not args.name:
        raise ValueError("the first founder needs --name too")
    key = _member_key(args.member_key) if args.member_key else None  # read before any store is made
    public = load_ed25519_public(args.public_key) if args.public_key else None
    if key is not None and public is not None:
        if public.public_bytes_raw() != key.public_key().public_bytes_raw():
            raise ValueError(f"--public-key {args.public_key} is not the public half of --member-key")
    where = f"--data {args.data}" if args.data else "--database URL"
    storage = _storage(args, create=True)
    try:
        if storage.audit_length() > 0 or storage.audit_entries():
            raise ValueError("this store is initialised already (its audit log has entries)")
        if key is not None:
            mid = found_member(storage, name=args.name, key=key, now=time.time())
        elif public is not None:  # the older form: the first member named, unsigned (bootstrap)
            mid = add_member(
                storage,
                name=args.name,
                public_key=public,
                key=None,
                now=time.time(),
                bootstrap=True,
            )
        else:
            print(
                "store initialised; no founder yet: the committee is founded by two people, each "
                f"signing in with their own key: kiosk-central member found {where} --name NAME "
                "--member-key FILE (one each)"
            )
            return 0
    finally:
        storage.close()
    print(
        f"store initialised; first founder {mid} ({args.name}); the committee acts once a second "
        f"founder signs in with their own key: kiosk-central member found {where} --name NAME "
        "--member-key FILE"
    )
    return 0


def cmd_member_found(args) -> int:
    import time

    from sync.central.committee.members import found_member, state_of

    key = _member_key(args.member_key)
    storage = _storage(args)
    try:
        mid = found_member(storage, name=args.name, key=key, now=time.time())
        state = state_of(storage)
    finally:
        storage.close()
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


def cmd_member_approve(args) -> int:
    import time

    from sync.central.committee.members import approve_member, revoke_member

    storage = _storage(args)
    try:
        act = approve_member if args.member_command == "approve" else revoke_member
        print(act(storage, key=_member_key(args.member_key), member=args.member, now=time.time()))
    finally:
        storage.close()
    print("run `kiosk-central manifest publish` so kiosks follow the committee's members")
    return 0


def cmd_manifest_publish(args) -> int:
    import time

    from sync.central.manifests import publish

    storage = _storage(args)
    try:
        version = publish(
            Path(args.keys),
            storage,
            now=time.time(),
            deny_level=args.deny_level,
            next_root=Path(args.next_root) if args.next_root else None,
        )
    finally:
        storage.close()
    print(f"manifest version {version} signed by the root and published: kiosks take it at their next sync")
    return 0


def cmd_member_add(args) -> int:
    import time

    from kiosk.core.keys import load_ed25519_public
    from sync.central.committee.members import add_member

    storage = _storage(args)
    try:
        mid = add_member(
            storage,
            name=args.name,
            public_key=load_ed25519_public(args.public_key),
            key=_member_key(args.member_key) if args.member_key else None,
            now=time.time(),
        )
        from sync.central.committee.members import state_of

        pending = not state_of(storage).members[mid].approved
    finally:
        storage.close()
    if pending:
        print(f"member {mid} ({args.name}) added, pending: a second member runs `member approve`")
    else:
        print(f"member {mid} ({args.name}) added")
    return 0


def cmd_case(args) -> int:
    import time

    from sync.central.committee import members as committee

    storage = _storage(args, readonly=args.case_command == "list")
    now = time.time()
    try:
        if args.case_command == "list":
            state = committee.state_of(storage)
            for c in state.cases.values():
                names = {m.member_id: m.name for m in state.members.values()}
                print(
                    f"{c.case_id}  {c.state}  {_day(c.from_ts or 0)} to {_day(c.to_ts or 0)}  opened by "
                    f"{names.get(c.opened_by, c.opened_by)}"
                    + (f", approved by {names.get(c.approved_by, c.approved_by)}" if c.approved_by else "")
                    + f"  {c.reason}"
                )
            if not state.cases:
                print("no cases yet (a member opens one: kiosk-central case open ...)")
            return 0
        key = _member_key(args.member_key)
        if args.case_command == "open":
            end = _ts(args.end) or now
            start = _ts(args.start) or end - 14 * DAY
            committee.open_case(
                storage, key=key, case_id=args.id, reason=args.reason, from_ts=start, to_ts=end, now=now
            )
            print(
                f"case {args.id} opened ({_day(start)} to {_day(end)}); it needs a second "
                "member's approval: kiosk-central case approve"
            )
        elif args.case_command == "approve":
            committee.approve_case(storage, key=key, case_id=args.id, now=now)
            print(f"case {args.id} approved")
        else:
            committee.close_case(storage, key=key, case_id=args.id, now=now)
            print(f"case {args.id} closed")
    finally:
        storage.close()
    return 0


def cmd_audit(args) -> int:
    import json
    from datetime import datetime

    from sync.central.committee.audit import AuditError, Entry
    from sync.central.committee.members import state_of

    storage = _storage(args, readonly=True)
    try:
        if args.audit_command == "show":
            entries = [Entry.parse(*row) for row in storage.audit_entries()]
            # Members by name (from the log's own additions), times as ISO 8601 in UTC.
            names = {
                str(e.detail["member_id"]): str(e.detail["name"]) for e in entries if e.action == "member_add"
            }

            def iso(x: object) -> object:
                if isinstance(x, int | float) and not isinstance(x, bool):
                    return datetime.fromtimestamp(float(x), UTC).isoformat(timespec="seconds")
                return x

            for e in entries:
                when = datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds")
                detail = {
                    k: iso(v) if k in ("from", "to", "expires") else names.get(v, v) if k == "with" else v
                    for k, v in e.detail.items()
                    if k != "with_signature"
                }
                print(
                    f"{e.seq:5d}  {when}  {names.get(e.member, e.member):20s}  {e.action:13s}  "
                    f"{json.dumps(detail, sort_keys=True, ensure_ascii=False)}  {e.hash}"
                )
            return 0
        head = getattr(args, "head", None)
        if head is not None and len(head) != 64:
            raise ValueError(
                f"--head {head}: {len(head)} of a head's 64 hex digits (a shortened hash): give the whole "
                "head, as `kiosk-central audit head` prints it"
            )
        try:
            state = state_of(storage, head=getattr(args, "head", None))
            if args.audit_command == "verify":
                import time

                from sync.central.committee.storecheck import store_problems
                from sync.central.committee.witness import check_extends, check_reported

                entries = [Entry.parse(*row) for row in storage.audit_entries()]
                check_extends(_store_name(args), entries)
                problems = check_reported(entries, storage.witnessed_heads())
                problems += store_problems(state, storage, now=time.time())  # changes made around the log
                if problems:
                    raise AuditError(
                        "; ".join(problems[:5])
                        + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
                    )
        except AuditError as e:
            print(f"kiosk-central: audit log does NOT verify: {e}", file=sys.stderr)
            return 1
    finally:
        storage.close()
    if args.audit_command == "head":
        print(f"{state.count} {state.head}")
    else:
        print(
            f"audit log verifies: {state.count} entries, every link and signature, head "
            f"{state.head}"
            + (f"; contains the published head {args.head[:16]}..." if args.head else "")
            + "; it extends every head kiosks reported, and the store holds what it says "
            "(manifests, risk statements, the exposure list, the cases' holds)"
        )
    return 0


def cmd_reads(args) -> int:
    from datetime import datetime

    storage = _storage(args, readonly=True)
    try:
        reads = storage.reads()
        if not reads:
            print("no readings and no traces yet: no sealed record has been opened")
        for r in reads:

            def iso(ts):
                return (
                    datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else "-"
                )

            print(
                f"{r['read_id']}  {iso(r['read_at'])}  {r['reader']}  case {r['case_id']}  "
                f"kiosk {r['kiosk_id'] or 'all'}  {r['records']} records  ({r.get('kind', 'read')}, "
                f"window {iso(r['from_ts'])} to {iso(r['to_ts'])})"
            )
    finally:
        storage.close()
    return 0


def _positive_float_s(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, above 0 and at most 3600")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of hours, like 6 or 0.5")
    return value


def _where(p, *, required: bool = True, data_help: str = "the server's SQLite database lives here") -> None:
    """--data DIR (SQLite in that folder: a pilot) or --database URL (PostgreSQL)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--data", metavar="DIR", help=data_help)
    g.add_argument(
        "--database", metavar="URL", help="PostgreSQL, e.g. postgresql://user@host/db (instead of --data)"
    )


def _read_replica(p) -> None:
    p.add_argument(
        "--read-database",
        metavar="URL",
        help="a PostgreSQL streaming replica of --database: reads of records and aggregates go there "
        "(the audit log, and what this command writes, stay on --database)",
    )


def _retention_args(p) -> None:
    def days(limit):
        def parse(text):
            n = int(text)
            if not 1 <= n <= limit:
                raise argparse.ArgumentTypeError(f"must be 1..{limit} (the public rules)")
            return n

        return parse

    p.add_argument(
        "--normal-days",
        type=days(28),
        default=28,
        metavar="N",
        help="days a normal record is kept after capture (default and most 28)",
    )
    p.add_argument(
        "--significant-days",
        type=days(90),
        default=90,
        metavar="N",
        help="days a significant record is kept (default and most 90)",
    )


def entry_days(text: str) -> float:
    """How long a risk entry lasts: above 0 and at most 90 days (the longest retention)."""
    import math

    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, not {text!r}") from None
    if not math.isfinite(n) or not 0 < n <= 90:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 90 days, not {text}")
    return n


def build_parser() -> argparse.ArgumentParser:
    from kiosk.core.console import version

    p = argparse.ArgumentParser(prog="kiosk-central", description="The health committee's side")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="authority keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="make the root, issuer and the server's two key pairs")
    init.add_argument("--dir", required=True)
    init.set_defaults(func=cmd_keys_init)
    rot = keys_sub.add_parser("rotate", help="make per-period sealing key pairs ahead (crypto-shredding)")
    rot.add_argument("--keys", required=True, metavar="DIR")
    rot.add_argument(
        "--ahead",
        type=int,
        default=56,
        metavar="N",
        help="periods (days) ahead to cover (default 56: eight weeks offline)",
    )
    _where(
        rot,
        required=False,
        data_help="also seal the search-tag keys to every registered kiosk (the server hands them out)",
    )
    rot.set_defaults(func=cmd_keys_rotate)
    ret = keys_sub.add_parser("retire", help="destroy private sealing keys past their retention")
    ret.add_argument("--keys", required=True, metavar="DIR")
    _where(ret, required=False, data_help="log the retirement in the audit log there")
    ret.add_argument(
        "--member-key",
        action="append",
        metavar="FILE",
        help="twice: the two members acting together (both are logged)",
    )
    ret.set_defaults(func=cmd_keys_retire)
    share = keys_sub.add_parser(
        "share",
        help="split the committee's wrap key between the active members (2 of n); "
        "re-issue after a member leaves",
    )
    share.add_argument("--keys", required=True, metavar="DIR")
    _where(share)
    share.add_argument(
        "--member-key",
        action="append",
        metavar="FILE",
        help="the member signing the log entry; to re-issue, twice: two members holding shares "
        "of the current key",
    )
    share.set_defaults(func=cmd_keys_share)
    succ = keys_sub.add_parser(
        "successor",
        help="a root succession: make the successor (then `manifest publish --next-root`), then "
        "--promote it (the old root shredded, the tag keys signed again)",
    )
    succ.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder")
    succ.add_argument("--promote", action="store_true", help="the successor becomes the root")
    _where(succ, required=False, data_help="with --promote: sign the tag keys again, publish a manifest")
    succ.set_defaults(func=cmd_keys_successor)
    ks = keys_sub.add_parser(
        "server",
        help="make the central server's keys folder from the authority's: bundle.key, receipt.key "
        "and root.pub only (never a private root, issuer or member key)",
    )
    ks.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder")
    ks.add_argument("--out", required=True, metavar="DIR", help="the server's keys folder to make")
    ks.set_defaults(func=cmd_keys_server)
    im = keys_sub.add_parser("init-member", help="an Ed25519 key for one committee member")
    im.add_argument("--dir", required=True)
    im.set_defaults(func=cmd_keys_init_member)

    member = sub.add_parser("member", help="committee members")
    member_sub = member.add_subparsers(dest="member_command", required=True)
    madd = member_sub.add_parser(
        "add",
        help="register a member's public key (the first one "
        "without --member-key; later ones signed by a member)",
    )
    _where(madd)
    madd.add_argument("--name", required=True)
    madd.add_argument("--public-key", required=True, metavar="FILE")
    madd.add_argument("--member-key", metavar="FILE", help="the adding member's key")
    madd.set_defaults(func=cmd_member_add)
    mfound = member_sub.add_parser(
        "found",
        help="a founder signs in with their own key (the committee is founded by two, before "
        "anything else; either founder approves the other's case)",
    )
    _where(mfound)
    mfound.add_argument("--name", required=True)
    mfound.add_argument("--member-key", required=True, metavar="FILE", help="your own member key")
    mfound.set_defaults(func=cmd_member_found)
    for name, what in (
        ("approve", "approve a pending addition, or confirm a revocation (a second member)"),
        ("revoke", "revoke a member (confirmed by a second member once two are active)"),
    ):
        m = member_sub.add_parser(name, help=what)
        _where(m)
        m.add_argument("--member", required=True, metavar="ID|NAME", help="the member concerned")
        m.add_argument("--member-key", required=True, metavar="FILE", help="your member key")
        m.set_defaults(func=cmd_member_approve)

    ini = sub.add_parser(
        "init",
        help="create the authority's store (the only command that does); with --name and "
        "--member-key its first founder signs in too",
    )
    _where(ini)
    ini.add_argument("--name", help="the first founder's name")
    ini.add_argument(
        "--member-key", metavar="FILE", help="the first founder's own member.key: they sign their entry"
    )
    ini.add_argument(
        "--public-key",
        metavar="FILE",
        help="older form: the first founder's member.pub, unsigned (--member-key is better)",
    )
    ini.set_defaults(func=cmd_init)

    man = sub.add_parser("manifest", help="what kiosks trust, signed by the offline root key")
    man_sub = man.add_subparsers(dest="manifest_command", required=True)
    pub = man_sub.add_parser(
        "publish", help="sign the next manifest (issuer keys, sealing periods, policy, members, server keys)"
    )
    _where(pub)
    pub.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys folder (root.key)")
    pub.add_argument(
        "--deny-level",
        type=int,
        choices=range(1, 4),
        metavar="N",
        help="refuse entry from this level (default: as before; 3 at first)",
    )
    pub.add_argument("--next-root", metavar="FILE", help="a successor root's public key kiosks pin next")
    pub.set_defaults(func=cmd_manifest_publish)

    case = sub.add_parser("case", help="outbreak cases: open, approve (a second member), close, list")
    case_sub = case.add_subparsers(dest="case_command", required=True)
    for name, what in (
        ("open", "open a case (usable once a second member approves it)"),
        ("approve", "approve another member's case"),
        ("close", "close a case"),
    ):
        c = case_sub.add_parser(name, help=what)
        _where(c)
        c.add_argument("--member-key", required=True, metavar="FILE")
        c.add_argument("--id", required=True, metavar="CASE")
        if name == "open":
            c.add_argument("--reason", required=True)
            c.add_argument("--from", dest="start", metavar="ISO8601", help="default: 14 days before --to")
            c.add_argument("--to", dest="end", metavar="ISO8601", help="default: now")
        c.set_defaults(func=cmd_case)
    cl = case_sub.add_parser("list", help="every case and its state")
    _where(cl)
    cl.set_defaults(func=cmd_case)

    audit = sub.add_parser("audit", help="the committee's hash-chained, signed audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    for name, what in (
        ("show", "every entry"),
        ("head", "count and hash of the head, to publish"),
        ("verify", "check every link and signature; non-zero on any change"),
    ):
        a = audit_sub.add_parser(name, help=what)
        _where(a)
        if name == "verify":
            a.add_argument("--head", metavar="HASH", help="a head published earlier: must be in the log")
        a.set_defaults(func=cmd_audit)

    issue = sub.add_parser("issue-pass", help="issue a signed pass")
    issue.add_argument("--keys", required=True, metavar="DIR")
    issue.add_argument("--risk", required=True, type=int, choices=range(0, 4), metavar="N")
    issue.add_argument("--issued", metavar="ISO8601")
    issue.add_argument("--expires", metavar="ISO8601")
    issue.add_argument("--text", action="store_true", help="print exactly the pass text")
    issue.add_argument("--png", metavar="FILE")
    issue.add_argument("--svg", metavar="FILE")
    issue.set_defaults(func=cmd_issue_pass)

    exposures = sub.add_parser("exposures", help="the exposure list visitors check on their phones (/check)")
    exposures_sub = exposures.add_subparsers(dest="exposures_command", required=True)
    publish_list = exposures_sub.add_parser(
        "publish",
        help="sign the list of passes at level 1 or more now (keyed hashes, levels, advice, expiries only)",
    )
    _where(publish_list)
    publish_list.add_argument("--keys", required=True, metavar="DIR", help="the authority's keys (root.pub)")
    publish_list.add_argument("--member-key", required=True, metavar="FILE", help="your member key: it signs")
    publish_list.add_argument(
        "--site", metavar="DIR", help="also write the /check page with the list into DIR, for any web host"
    )
    publish_list.set_defaults(func=cmd_exposures_publish)

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
    bulk.set_defaults(func=cmd_issue_passes)

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
    show.set_defaults(func=cmd_pass_show)

    serve = sub.add_parser("serve", help="run the central server (OpenAPI at /openapi.json)")
    _where(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080, help="0 to 65535 (default 8080)")
    serve.add_argument(
        "--keys",
        metavar="DIR",
        help="the server's keys folder, made by `kiosk-central keys server`: bundle.key, receipt.key "
        "and root.pub (default DATA/keys)",
    )
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="where /metrics listens, apart from kiosks (default 127.0.0.1: loopback only)",
    )
    serve.add_argument(
        "--metrics-port",
        type=_port,
        default=9464,
        metavar="PORT",
        help="its port (default 9464; with --workers N, the first free of PORT..PORT+N-1 each; 0: none)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="server processes sharing the port (default 1)",
    )
    serve.add_argument(
        "--ingest-slots",
        type=_positive,
        default=2,
        metavar="N",
        help="batches each process stores at once; more uploads wait without "
        "holding a thread, so bundle polls stay fast (default 2)",
    )
    _retention_args(serve)
    serve.add_argument(
        "--header-timeout",
        type=_positive_float_s,
        default=None,
        metavar="S",
        help="a request's headers complete within S seconds of the connection (default 10; nginx cuts "
        "slow clients too)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="... and this private key (PEM)")
    serve.set_defaults(func=cmd_serve)

    reg = sub.add_parser("register-kiosk", help="register a kiosk's device key; prints its kiosk id")
    _where(reg)
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
    reg.set_defaults(func=cmd_register)

    risk = sub.add_parser("set-risk", help="set a pass's level on the risk list kiosks download")
    _where(risk)
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
    risk.set_defaults(func=cmd_set_risk)

    rd = sub.add_parser(
        "open-records", help="the committee opens check-ins for an outbreak case (logged); JSON lines"
    )
    _where(rd)
    _read_replica(rd)
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
    rd.set_defaults(func=cmd_open_records)

    tr = sub.add_parser(
        "trace",
        help="contact tracing for an approved case: the pass's check-ins "
        "by search tag, the passes present around them",
    )
    _where(tr)
    _read_replica(tr)
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
    tr.set_defaults(func=cmd_trace)

    dbr = sub.add_parser(
        "db-roles",
        help="PostgreSQL: create and grant the ingest, purge and committee roles (run as the database owner)",
    )
    dbr.add_argument("--database", required=True, metavar="URL")
    dbr.set_defaults(func=cmd_db_roles)

    reads = sub.add_parser("reads", help="the audit log of every opening of check-ins")
    _where(reads)
    _read_replica(reads)
    reads.set_defaults(func=cmd_reads)

    purge = sub.add_parser(
        "purge",
        help="delete records past the server's retention, old batch "
        "receipts and expired risk entries (daily timer)",
    )
    _where(purge)
    _retention_args(purge)
    purge.set_defaults(func=cmd_purge)

    status = sub.add_parser(
        "status",
        help="the fleet at a glance: a line per kiosk (last seen, upload, pending, bundle, clock, "
        "disk, fault, records, missing numbers), those needing attention first, and a summary",
    )
    _where(status)
    _read_replica(status)
    status.add_argument("--json", action="store_true", help="the same as JSON, for other tools")
    status.add_argument(
        "--silent-hours", type=_positive_float, default=6.0, metavar="H", help="silent after H hours (6)"
    )
    status.add_argument(
        "--stale-bundle-hours",
        type=_positive_float,
        default=26.0,
        metavar="H",
        help="a bundle older than H hours is stale (26)",
    )
    status.set_defaults(func=cmd_status)

    report = sub.add_parser(
        "report",
        help="one self-contained HTML page: the fleet over time, last seen, upload lag, bundle age, "
        "gaps, cases",
    )
    _where(report)
    _read_replica(report)
    report.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    report.add_argument(
        "--days", type=int, default=28, choices=range(1, 401), metavar="DAYS", help="how far back (28)"
    )
    report.set_defaults(func=cmd_report)
    return p


# Commands that act on the committee's log: each checks that the log still extends the head
# this machine verified last (a deleted or rewritten tail is refused), and remembers the new one.
WITNESSED = {
    "cmd_init",
    "cmd_member_add",
    "cmd_member_found",
    "cmd_member_approve",
    "cmd_case",
    "cmd_set_risk",
    "cmd_trace",
    "cmd_open_records",
    "cmd_audit",
    "cmd_manifest_publish",
    "cmd_keys_retire",
    "cmd_keys_share",
    "cmd_reads",
    "cmd_exposures_publish",
}


def _store_name(args) -> str:
    import re

    if getattr(args, "database", None):
        return "postgresql:" + re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", args.database)
    return "sqlite:" + str(Path(args.data).resolve())


def witnessed(func):
    """Run a committee command between the two witness steps (sync.central.committee.witness)."""

    def run(args) -> int:
        if not (getattr(args, "data", None) or getattr(args, "database", None)):
            return func(args)
        from sync.central.committee.audit import Entry
        from sync.central.committee.witness import check_extends, remember

        store = _store_name(args)
        looks = func.__name__ in ("cmd_reads", "cmd_audit") or getattr(args, "case_command", "") == "list"
        # audit verify reports it as a failed verification; init makes the store
        if func.__name__ not in ("cmd_audit", "cmd_init"):
            from sync.central.committee.audit import AuditError
            from sync.central.committee.witness import check_reported

            storage = _storage(args, readonly=looks)
            try:
                entries = [Entry.parse(*row) for row in storage.audit_entries()]
                check_extends(store, entries)
                seen = check_reported(entries, storage.witnessed_heads())  # what kiosks saw
                if seen:
                    raise AuditError(
                        f"tampering: {seen[0]}: the log's tail was deleted or rewritten; every command "
                        "refuses until it is restored from a backup"
                    )
            finally:
                storage.close()
        code = func(args)
        if code != 0:
            return code
        storage = _storage(args, readonly=True)
        try:
            rows = storage.audit_entries()
            if rows:
                last = Entry.parse(*rows[-1])
                remember(store, last.seq, last.hash)
        finally:
            storage.close()
        return code

    return run


def _check_keys_folder(args) -> None:
    """--keys names the authority's keys folder (what `keys init` made: root.pub is always in
    it), never a typo that a command would fill or read nothing from. `serve --keys` is the
    server's own folder, checked by serve."""
    keys = getattr(args, "keys", None)
    if not keys or args.command == "serve":
        return
    from kiosk.core.keys import BUNDLE_KEY, ISSUER_PUB, ROOT_PUB

    folder = Path(keys)
    if not folder.is_dir():
        raise ValueError(
            f"--keys {keys}: no such folder (the authority's keys folder, made by "
            f"`kiosk-central keys init --dir {keys}`)"
        )
    if not (folder / ROOT_PUB).is_file():
        raise ValueError(
            f"--keys {keys}: not the authority's keys folder (no {ROOT_PUB} in it; "
            "`kiosk-central keys init --dir DIR` makes one)"
        )
    if not (folder / ISSUER_PUB).is_file() and (folder / BUNDLE_KEY).is_file():
        raise ValueError(
            f"--keys {keys}: the server's keys folder (made by `keys server`), not the authority's: "
            "give the authority's keys folder (the one `kiosk-central keys init` made)"
        )


def main(argv=None) -> int:
    from kiosk.core.console import SafeText

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeText(out), SafeText(err)  # nobody's text steers the terminal
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv=None) -> int:
    from kiosk.core.console import fail, run_main

    args = build_parser().parse_args(argv)
    if getattr(args.func, "__name__", "") in WITNESSED:
        args.func = witnessed(args.func)

    def func(a):
        try:
            _check_keys_folder(a)
            return args.func(a)
        except (KeyFileError, ValueError, FileNotFoundError) as e:
            if isinstance(e, OSError) and e.strerror:  # one line, never a raw "[Errno 2] ..."
                return fail("kiosk-central", "error", f"{e.filename}: {e.strerror}", 2)
            return fail("kiosk-central", "error", e, 2)
        except Exception as e:
            from sync.central.committee.audit import AuditError
            from sync.central.committee.custody import CustodyError

            if isinstance(e, AuditError | CustodyError):
                return fail("kiosk-central", "refused", e, 3)
            raise

    return run_main("kiosk-central", func, args, translate=lambda e: store_fault(e, args))


if __name__ == "__main__":
    sys.exit(main())
