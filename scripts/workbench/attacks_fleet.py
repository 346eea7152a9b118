"""Attacks on how kiosks join the fleet (enrolment tokens), tried for real against the
attack world's `kiosk-central serve` (scripts/workbench/attacks.py): whoever runs the server
holds the token documents and its own keys, never the root key nor a token's code."""

from __future__ import annotations

import time
from typing import Any

import requests

from kiosk.core import enroltokens as enrolment
from kiosk.core import protocol
from kiosk.core.keys import BUNDLE_KEY, load_ed25519_private, raw_public
from kiosk.core.signed import SignedDocError
from workbench.attacks import Row


def _post(w: Any, lookup: str, body: bytes) -> tuple[int, str]:
    r = requests.post(f"{w.server.url}{protocol.ENROL_PATH}/{lookup}", data=body, timeout=10)
    try:
        return r.status_code, str(r.json().get("error", ""))
    except ValueError:
        return r.status_code, r.text[:40]


def _device() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return (
        raw_public(Ed25519PrivateKey.generate().public_key()),
        raw_public(X25519PrivateKey.generate().public_key()),
    )


def server_made_token(w: Any) -> list[Row]:
    """With the server's keys and database: a token of its own, signed with its own key, for
    a kiosk of its choosing (to plant a kiosk, or to enrol one under its control)."""
    from sync.central.storage.rows import EnrolmentToken

    server_key = load_ed25519_private(w.server.keys_dir / BUNDLE_KEY)
    code = enrolment.new_code()
    token, doc = enrolment.make_token(
        code, kiosk_id="k-" + "e" * 16, venue="Market", issued_at=time.time(),
        expires_at=time.time() + 86400, root=server_key,
    )  # fmt: skip
    s = w.storage()
    s.put_enrolment_token(
        EnrolmentToken(
            token.lookup, token.kiosk_id, "Market", time.time(), token.expires_at, doc.decode(), []
        ),
        [],
    )
    s.close()
    device, tag = _device()
    status, error = _post(w, code.lookup, enrolment.request_body(code, device_public=device, tag_public=tag))
    try:
        enrolment.read_token(doc, [w.root])  # what a kiosk checks, with the root it carries
        kiosk_says = "accepted"
    except SignedDocError:
        kiosk_says = "refused (not the root's)"
    s = w.storage()
    planted = s.kiosk(token.kiosk_id)
    s.close()
    return [
        Row(
            "server keys: an enrolment token of its own",
            "refused by server and kiosk; no kiosk",
            f"server HTTP {status} {error}; kiosk {kiosk_says}; registered: {planted is not None}",
            status != 200 and kiosk_says.startswith("refused") and planted is None,
        )
    ]


def token_without_code(w: Any) -> list[Row]:
    """The server holds a real token's document (not its code): it enrols a device of its
    own with it, signing with its own key; then a second device tries the used token."""
    from sync.central.tokenissuing import issue

    s = w.storage()
    issued = issue(w.keys, s, venue="Market", expires_at=time.time() + 86400, now=time.time())
    s.close()
    device, tag = _device()
    thief = enrolment.Code(enrolment.new_code().text)  # any code but the token's
    forged = enrolment.request_body(thief, device_public=device, tag_public=tag)
    forged = forged.replace(thief.lookup.encode(), issued.code.lookup.encode())
    status, error = _post(w, issued.code.lookup, forged)
    # the technician's kiosk uses the token; then another device tries it again
    _post(w, issued.code.lookup, enrolment.request_body(issued.code, device_public=device, tag_public=tag))
    other, other_tag = _device()
    again, again_error = _post(
        w, issued.code.lookup, enrolment.request_body(issued.code, device_public=other, tag_public=other_tag)
    )
    # the server answers a code with another token's document: the kiosk sees it is not its own
    second = enrolment.new_code()
    swapped = not enrolment.belongs_to(issued.token, second)
    return [
        Row(
            "server: a token's document without its code",
            "refused: not signed with the code",
            f"HTTP {status} {error}",
            status == 400,
        ),
        Row(
            "a used token, by a second device",
            "refused: one kiosk, once",
            f"HTTP {again} {again_error}",
            again == 410,
        ),
        Row(
            "server: answers a code with another token's doc",
            "the kiosk refuses it",
            "refused (not the code's keys)" if swapped else "accepted",
            swapped,
        ),
    ]


SCENARIOS = [server_made_token, token_without_code]


# -- releases ---------------------------------------------------------------------------------
def _release_dir(w: Any, version: str) -> Any:
    """A release folder as scripts/release makes it (its wheel's bytes do not matter here:
    what is attacked is whether a kiosk takes the metadata)."""
    import hashlib

    from kiosk.core.releasefiles import RELEASE_FILE, Release

    folder = w.work / f"release-{version}"
    folder.mkdir(exist_ok=True)
    wheel = f"venue_kiosk-{version}-py3-none-any.whl"
    data = f"release {version}".encode()
    (folder / wheel).write_bytes(data)
    release = Release(version, {wheel: hashlib.sha256(data).hexdigest()}, wheel)
    (folder / RELEASE_FILE).write_bytes(release.encode())
    return folder


def _kiosk_config(w: Any) -> Any:
    from kiosk import config as config_mod
    from workbench.world import kiosk_config_text

    path = w.work / "kiosk-update.toml"
    if not path.exists():
        text = kiosk_config_text(
            w.keys,
            w.work / "kiosk.db",
            keys=[f'root_key = "{w.keys / "root.pub"}"'],
            sync=[f'server_url = "{w.server.url}"', f'kiosk_id = "{w.kid}"'],
            update=[f'releases = "{w.work / "releases"}"'],
        )
        path.write_text(text.replace('venue_id = "venue-test"', 'venue_id = "Market"'))
    return config_mod.load(path)


def releases_from_the_server(w: Any) -> list[Row]:
    """The server's thief (its online key, its database) against the kiosks' updates."""
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, TargetFile, Targets

    from kiosk.updater import update
    from sync.central.tufrepo import publish

    cfg = _kiosk_config(w)
    s = w.storage()
    try:
        publish(w.keys, s, _release_dir(w, "9.1.0"), now=time.time(), online_key=None)
    finally:
        s.close()
    seen = update(cfg, check_only=True, current="9.0.0")  # the kiosk trusts targets v1 from now on
    server_key = load_ed25519_private(w.server.keys_dir / BUNDLE_KEY)
    s = w.storage()
    try:
        held_doc = s.update_doc("targets.json")
        held = Metadata[Targets].from_bytes(held_doc.encode())
        own = Targets(version=held.signed.version + 1, expires=held.signed.expires)
        own.targets = {
            "release.json": TargetFile.from_data("release.json", b'{"version": "9.9.9"}', ["sha256"])
        }
        md = Metadata(own)
        md.sign(CryptoSigner(server_key))
        s.put_update([], md.to_bytes().decode(), {}, now=time.time())
    finally:
        s.close()
    forged = update(cfg, check_only=True, current="9.0.0")
    # a stolen kiosk's own keys: none of them signs a release its fellows take
    from kiosk.core.keys import load_ed25519_private as load

    stolen = [
        p for p in w.work.glob("**/*.key") if "committee" not in p.parts and "server-keys" not in p.parts
    ]
    signed_by_kiosk = []
    for path in stolen:
        try:
            key = load(path)
        except Exception:
            continue
        md = Metadata(Targets(version=held.signed.version + 2, expires=held.signed.expires))
        md.sign(CryptoSigner(key))
        s = w.storage()
        try:
            s.put_update([], md.to_bytes().decode(), {}, now=time.time())
        finally:
            s.close()
        signed_by_kiosk.append(update(cfg, check_only=True, current="9.0.0").state)
    # an older release: the committee published 9.1.0 first; now the server puts an older
    # targets version back (what an older copy of its database held)
    s = w.storage()
    try:
        publish(w.keys, s, _release_dir(w, "9.2.0"), now=time.time())
    finally:
        s.close()
    newer = update(cfg, check_only=True, current="9.0.0")
    s = w.storage()
    try:
        s.put_update([], held_doc, {}, now=time.time())  # back to targets v1 (9.1.0)
    finally:
        s.close()
    rolled = update(cfg, check_only=True, current="9.0.0")
    return [
        Row(
            "server keys: a release of its own (targets it signed)",
            "refused by the kiosk; nothing installed",
            forged.line()[:60],
            forged.state == "refused" and seen.state == "available",
        ),
        Row(
            "stolen kiosk: its own keys sign a release",
            "refused by every kiosk",
            f"{len(signed_by_kiosk)} keys tried: {sorted(set(signed_by_kiosk))}",
            bool(signed_by_kiosk) and set(signed_by_kiosk) == {"refused"},
        ),
        Row(
            "server DB: an older targets version put back",
            "refused (rollback): the kiosk keeps 9.2.0",
            f"after 9.2.0 ({newer.state}): {rolled.line()[:50]}",
            newer.state == "available" and newer.version == "9.2.0" and rolled.state == "refused",
        ),
    ]


SCENARIOS.append(releases_from_the_server)
