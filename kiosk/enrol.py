"""`kiosk enrol`: a kiosk joins the fleet in one step, given an enrolment token's code.

It fetches the token's document from the server, checks that the root it carries (pinned
from its installer, never from the network) signed it, that it is this code's own and for
this kiosk's venue; makes its device and tag keys (or reuses those of an attempt whose answer
was lost); registers them with the code's signature; writes the kiosk id the token gives into
its configuration; keeps the code's tag key for the search-tag keys sealed with the token;
and runs a first sync round (its bundle, its tag keys). The code is kept nowhere."""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from kiosk.config import Config, ConfigError, enrol_key_path
from kiosk.core import enroltokens as enrolment
from kiosk.core import protocol
from kiosk.core.faults import EXIT_CHECK_FAILED, Fault

log = logging.getLogger("kiosk")


class EnrolRefused(Fault):
    """The token cannot enrol this kiosk (used, expired, forged, another venue's): one line, exit 1."""

    label = "refused"
    exit_code = EXIT_CHECK_FAILED


class EnrolUnreachable(Fault):
    """The server did not answer: nothing was changed; run it again when the network is there."""

    label = "network"
    exit_code = EXIT_CHECK_FAILED


@dataclass(frozen=True)
class Enrolment:
    kiosk_id: str
    venue: str
    expires_at: float


def enrol(
    cfg: Config, config_path: Path, code_text: str, *, session: requests.Session | None = None
) -> Enrolment:
    from kiosk.compose import load_root_key

    try:
        code = enrolment.parse_code(code_text)
    except enrolment.CodeError as e:
        raise ConfigError(f"enrolment code: {e}") from None
    if cfg.sync.kiosk_id:
        raise ConfigError(
            f"[sync] kiosk_id: this kiosk is enrolled already, as {cfg.sync.kiosk_id} (a kiosk enrols "
            "once; to give it a new identity, retire it and set it up afresh: see the technician's manual)"
        )
    if not cfg.sync.server_url:
        raise ConfigError(
            '[sync] server_url: not set: enrolment registers with the server (e.g. "https://central.example/")'
        )
    root = load_root_key(cfg)
    if root is None:
        raise ConfigError(
            "[keys] root_key: not set: the token is checked against the authority's root the installer "
            'carried (e.g. root_key = "keys/root.pub")'
        )
    http = _Http(cfg, session or requests.Session())
    answer = http.call("GET", code.lookup)
    try:
        token = enrolment.read_token(str(answer.get("token", "")), [root])
    except Exception:
        raise EnrolRefused(
            "the token is not signed by the authority's root this kiosk carries ([keys] root_key): "
            "a forged token, or the wrong root.pub was installed"
        ) from None
    if not enrolment.belongs_to(token, code):
        raise EnrolRefused("the server answered with another token's document than this code's: not used")
    if token.venue != cfg.kiosk.venue_id:
        raise EnrolRefused(
            f"this token is for venue {token.venue!r}, this kiosk's [kiosk] venue_id is "
            f"{cfg.kiosk.venue_id!r}: use a token for this venue, or correct venue_id"
        )
    now = float(answer.get("server_time") or time.time())
    if token.expires_at <= now and not answer.get("used"):
        raise EnrolRefused("this enrolment token has expired: ask the committee for a new one")
    device, tag = _own_keys(cfg)
    body = enrolment.request_body(code, device_public=device, tag_public=tag)
    done = http.call("POST", code.lookup, body)
    if done.get("kiosk_id") != token.kiosk_id:
        raise EnrolRefused("the server registered another kiosk id than the token gives: not used")
    _keep_enrol_key(cfg, code)
    set_kiosk_id(config_path, token.kiosk_id)
    return Enrolment(token.kiosk_id, token.venue, token.expires_at)


def code_from_camera(
    cfg: Config, *, timeout_s: float = 120.0, clock: Any = time.monotonic, sleep: Any = time.sleep
) -> str:
    """The enrolment code from its QR code shown to the kiosk's own camera (or scanner),
    read by the kiosk's own decoder; EnrolRefused when none is seen within ``timeout_s``."""
    from kiosk.adapters.decoders import make_decoder
    from kiosk.adapters.frames import SCANNER_SOURCES, open_source
    from kiosk.adapters.scanners import ScannedText

    source = open_source(cfg.camera)
    decoder = ScannedText() if cfg.camera.source in SCANNER_SOURCES else make_decoder(cfg.decoder.name)
    deadline = clock() + timeout_s
    try:
        while clock() < deadline:
            frame = source.read()
            if frame is None:
                if cfg.camera.source == "images":
                    break  # the pictures are over
                sleep(0.05)
                continue
            for text in decoder.decode(frame):
                if text.upper().startswith(enrolment.QR_PREFIX):
                    return text
    finally:
        source.close()
    raise EnrolRefused(
        f"no enrolment code seen by the camera within {timeout_s:g} s: show the token's QR code "
        "to it (a hand's width away), or type its code"
    )


class _Http:
    def __init__(self, cfg: Config, session: requests.Session):
        self.base = cfg.sync.server_url.rstrip("/") + protocol.ENROL_PATH + "/"
        self.verify: bool | str = cfg.sync.ca_bundle or cfg.sync.verify_tls
        self.timeout, self.session = cfg.sync.timeout_s, session

    def call(self, method: str, lookup: str, body: bytes | None = None) -> dict[str, Any]:
        from kiosk.uploader import error_code, reason_of

        try:
            resp = self.session.request(
                method,
                self.base + lookup,
                data=body,
                headers={"Content-Type": "application/json"} if body else {},
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as e:
            raise EnrolUnreachable(
                f"TLS: {e.__class__.__name__} from {self.base} "
                "(check [sync] ca_bundle / the server's certificate)"
            ) from None
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidURL,
        ):
            raise ConfigError(
                "[sync] server_url: not a server URL (http:// or https:// and a host)"
            ) from None
        except requests.RequestException as e:
            raise EnrolUnreachable(
                f"{self.base}: no answer ({reason_of(e)}); nothing was changed: "
                "run it again when the network is there"
            ) from None
        if resp.status_code in (404, 409, 410, 400):
            _, detail = error_code(resp)
            raise EnrolRefused(detail or f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            code, detail = error_code(resp)
            raise EnrolUnreachable(
                f"{self.base}: HTTP {resp.status_code} {code} {detail}".rstrip()
                + "; nothing was changed: run it again later"
            )
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EnrolUnreachable(f"{self.base}: not the server's answer (is [sync] server_url right?)")
        return data


def _own_keys(cfg: Config) -> tuple[bytes, bytes]:
    """The kiosk's device and tag keys: made now, or those of an attempt whose answer was
    lost (the server gives the same device the same id)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.core.keys import KeyFileError, load_ed25519_private, load_x25519_private, raw_public

    try:
        device = _kept_or_made(Path(cfg.keys.device_key), load_ed25519_private, Ed25519PrivateKey.generate)
        tag = _kept_or_made(Path(cfg.keys.tag_key), load_x25519_private, X25519PrivateKey.generate)
    except KeyFileError as e:
        raise ConfigError(f"[keys]: {e}") from None
    return raw_public(device.public_key()), raw_public(tag.public_key())


def _kept_or_made(path: Path, load: Any, make: Any) -> Any:
    """The private key at ``path``, or a new one written there (0600) with its .pub beside."""
    from kiosk.core.keys import write_private, write_public

    if path.exists():
        return load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make()
    write_private(path, key)
    write_public(path.with_suffix(".pub"), key.public_key())
    return key


def _keep_enrol_key(cfg: Config, code: enrolment.Code) -> None:
    from kiosk.core.keys import write_private

    path = enrol_key_path(cfg)
    if not path.exists():
        write_private(path, code.seal_key)


def drop_spent_enrol_key(cfg: Config, sealed: list, *, now: float) -> bool:
    """`kiosk purge`: forget the code's tag key once no tag key sealed to it is still to come
    (``sealed``: the SealedTagKeys the kiosk holds). True if it was deleted."""
    from kiosk.core.keys import load_x25519_private
    from kiosk.core.seal import SUITE
    from kiosk.core.sealkeys import tag_key_info

    path = enrol_key_path(cfg)
    if not path.exists():
        return False
    key = load_x25519_private(path)
    for sk in sealed:
        if sk.valid_to > now:
            try:
                SUITE.decrypt(sk.sealed, key, info=tag_key_info(cfg.sync.kiosk_id, sk.valid_from))
                return False
            except Exception:
                continue
    path.unlink()
    return True


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
_KIOSK_ID = re.compile(r"^(\s*kiosk_id\s*=\s*)(\"[^\"]*\"|'[^']*')(.*)$")


def set_kiosk_id(config_path: Path, kiosk_id: str) -> None:
    """Write ``kiosk_id`` into the [sync] section of the configuration file, keeping every
    other line (and the file's mode and owner); atomically."""
    text = config_path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    section, done = None, False
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            if section == "sync" and not done:  # [sync] had no kiosk_id line: add one
                lines.insert(i, f'kiosk_id = "{kiosk_id}"\n')
                done = True
                break
            section = m.group(1).strip()
            continue
        k = _KIOSK_ID.match(line.rstrip("\n"))
        if section == "sync" and k:
            lines[i] = f'{k.group(1)}"{kiosk_id}"{k.group(3)}\n'
            done = True
            break
    if not done:
        if section != "sync":
            lines.append(("" if not lines or lines[-1].endswith("\n") else "\n") + "\n[sync]\n")
        elif lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f'kiosk_id = "{kiosk_id}"\n')
    tmp = config_path.with_name(f".{config_path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    st = config_path.stat()
    os.chmod(tmp, st.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, config_path)
