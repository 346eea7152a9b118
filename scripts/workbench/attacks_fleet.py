"""Attacks on how kiosks join the fleet (enrolment tokens), tried for real against the
attack world's `kiosk-central serve` (scripts/workbench/attacks.py): whoever runs the server
holds the token documents and its own keys, never the root key nor a token's code."""

from __future__ import annotations

import time
from typing import Any

import requests

from kiosk.core import enrolment, protocol
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
    from sync.central.enrolment import issue

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
