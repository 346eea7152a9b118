"""`kiosk enrol`: a kiosk joins the fleet in one step with a token the committee made, against
a real `kiosk-central serve` on loopback, every command its own process as a user runs it."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from kiosk.core import enroltokens as enrolment
from sync.central.keyring import server_keys_folder
from testkit import run_bin as run
from workbench.world import kiosk_config_text

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")


@pytest.fixture
def authority_copy(tmp_path, authority):
    a = Path(shutil.copytree(authority, tmp_path / "authority"))
    (a / "manifest-state.json").unlink(missing_ok=True)
    return a


def _kiosk(tmp_path: Path, authority: Path, name: str, venue: str, url: str) -> Path:
    folder = tmp_path / name
    cfg = folder / "kiosk.toml"
    text = kiosk_config_text(
        authority,
        folder / "kiosk.db",
        keys=[f'root_key = "{authority / "root.pub"}"'],
        sync=[f'server_url = "{url}"', 'kiosk_id = ""                # written by `kiosk enrol`'],
    )
    cfg.write_text(text.replace('venue_id = "venue-test"', f'venue_id = "{venue}"'))
    return cfg


def _issue(authority: Path, data: Path, venue: str, out: Path, *extra: str) -> str:
    p = run(
        "kiosk-central", "enrolment", "issue", "--keys", authority, "--data", data, "--venue", venue,
        "--out", out, *extra,
    )  # fmt: skip
    code = p.stdout.splitlines()[0]
    assert CODE.match(code), p.stdout
    assert f"enrolment token for venue {venue}" in p.stdout
    return code


def test_a_kiosk_enrols_in_one_step_and_a_token_serves_once(tmp_path, authority_copy):
    from workbench.localserver import LocalServer

    a, data = authority_copy, tmp_path / "central"
    run("kiosk-central", "init", "--data", data)
    run("kiosk-central", "manifest", "publish", "--keys", a, "--data", data)
    code = _issue(a, data, "cafe-1", tmp_path / "token.png")
    assert (tmp_path / "token.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the QR code says the same code, read back by the real decoder
    import cv2
    import zxingcpp

    [read] = zxingcpp.read_barcodes(cv2.imread(str(tmp_path / "token.png")))
    assert read.text == enrolment.QR_PREFIX + code

    status = run("kiosk-central", "status", "--data", data).stdout
    assert "enrolment tokens: 0 kiosks enrolled, 1 tokens outstanding" in status

    with LocalServer(data, server_keys_folder(a, tmp_path / "server-keys")) as server:
        cfg = _kiosk(tmp_path, a, "kiosk1", "cafe-1", server.url)
        typed = code.lower().replace("-", " ").replace("0", "O")  # as a person might type it
        done = run("kiosk", "enrol", "--config", cfg, typed)
        kiosk_id = re.search(r"enrolled: kiosk (k-[0-9a-f]{16}), venue cafe-1", done.stdout)
        assert kiosk_id, done.stdout
        assert re.search(r"first sync: .*search-tag keys for [1-9]\d* days", done.stdout), done.stdout
        text = cfg.read_text()
        assert f'kiosk_id = "{kiosk_id[1]}"                # written by `kiosk enrol`' in text
        assert (cfg.parent / "device.key").exists() and (cfg.parent / "enrol-tag.key").exists()

        # its check-ins carry a search tag from the first one: the tag keys sealed with the token
        from kiosk import config as config_mod
        from kiosk.compose import follow_bundle_keys, open_store, trust_provider

        c = config_mod.load(cfg)
        store = open_store(c)
        try:
            provider = trust_provider(c, store=store)
            follow_bundle_keys(store, provider)
            provider()  # the held bundle, as the door reads it
            assert store.tagger is not None
            assert store.tagger.tag_for(b"\x01" * 16, time.time()) is not None
        finally:
            store.close()
        assert run("kiosk", "doctor", "--config", cfg, "--no-camera", check=False).returncode in (0, 1)

        # the same kiosk again: enrolled already (its config says so)
        again = run("kiosk", "enrol", "--config", cfg, code, check=False)
        assert again.returncode == 2 and "enrolled already, as " + kiosk_id[1] in again.stderr
        # another kiosk with the used code: refused, one line, nothing registered
        other = _kiosk(tmp_path, a, "kiosk2", "cafe-1", server.url)
        used = run("kiosk", "enrol", "--config", other, code, check=False)
        assert used.returncode == 1, used
        assert used.stderr.strip() == (
            "kiosk: refused: this enrolment token was used already (one kiosk, once): ask for a new one"
        )
        assert 'kiosk_id = ""' in other.read_text()
        # another venue's token: refused before anything is registered
        code2 = _issue(a, data, "bakery-9", tmp_path / "token2.svg")
        wrong = run("kiosk", "enrol", "--config", other, code2, check=False)
        assert wrong.returncode == 1 and "this token is for venue 'bakery-9'" in wrong.stderr
        assert "venue_id is 'cafe-1'" in wrong.stderr
        # a mistyped code: caught offline by its check character
        typo = code2[:-1] + ("0" if code2[-1] != "0" else "1")
        bad = run("kiosk", "enrol", "--config", other, typo, check=False)
        assert bad.returncode == 2 and "mistyped" in bad.stderr
        # a code nobody issued (valid check character): the server knows no such token
        stray = enrolment.new_code().text
        unknown = run("kiosk", "enrol", "--config", other, stray, check=False)
        assert unknown.returncode == 1 and "no enrolment token with this code" in unknown.stderr

    status = run("kiosk-central", "status", "--data", data).stdout
    assert kiosk_id[1] in status and "cafe-1" in status
    assert "enrolment tokens: 1 kiosks enrolled, 1 tokens outstanding, 0 expired unused" in status
    listed = run("kiosk-central", "enrolment", "list", "--data", data).stdout
    assert re.search(rf"{kiosk_id[1]}  cafe-1  issued .* used ", listed)
    assert "bakery-9" in listed and "outstanding until" in listed
    assert code not in listed and code not in (data / "central.db").read_bytes().decode("latin-1")


def test_an_expired_or_forged_token_is_refused(tmp_path, authority_copy):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync.central.storage.opening import open_storage
    from sync.central.storage.rows import EnrolmentToken
    from sync.central.tokenissuing import issue
    from workbench.localserver import LocalServer

    a, data = authority_copy, tmp_path / "central"
    run("kiosk-central", "init", "--data", data)
    run("kiosk-central", "manifest", "publish", "--keys", a, "--data", data)
    storage = open_storage(data=str(data))
    try:
        past = time.time() - 3 * 86400
        expired = issue(a, storage, venue="cafe-1", expires_at=past + 86400, now=past)
        # a token the server's own thief made: signed by a key that is not the root
        forger = Ed25519PrivateKey.generate()
        code = enrolment.new_code()
        token, doc = enrolment.make_token(
            code, kiosk_id="k-" + "f" * 16, venue="cafe-1", issued_at=time.time(),
            expires_at=time.time() + 86400, root=forger,
        )  # fmt: skip
        storage.put_enrolment_token(
            EnrolmentToken(
                token.lookup, token.kiosk_id, "cafe-1", time.time(), token.expires_at, doc.decode(), None
            ),
            [],
        )
    finally:
        storage.close()
    with LocalServer(data, server_keys_folder(a, tmp_path / "server-keys")) as server:
        cfg = _kiosk(tmp_path, a, "kiosk1", "cafe-1", server.url)
        old = run("kiosk", "enrol", "--config", cfg, expired.code.text, check=False)
        assert old.returncode == 1 and old.stderr.strip() == (
            "kiosk: refused: this enrolment token has expired: ask the committee for a new one"
        )
        forged = run("kiosk", "enrol", "--config", cfg, code.text, check=False)
        assert forged.returncode == 1 and "no enrolment token with this code" in forged.stderr
    # the server's thief goes further: its keys folder names the forger as the root; the
    # kiosk checks against the root its installer carried, and refuses
    rogue = tmp_path / "rogue-keys"
    server_keys_folder(a, rogue)
    from kiosk.core.keys import write_public

    (rogue / "root.pub").chmod(0o644)
    write_public(rogue / "root.pub", forger.public_key())
    with LocalServer(data, rogue) as server:
        cfg = _kiosk(tmp_path, a, "kiosk2", "cafe-1", server.url)
        forged = run("kiosk", "enrol", "--config", cfg, code.text, check=False)
        assert forged.returncode == 1, forged
        assert "not signed by the authority's root this kiosk carries" in forged.stderr
        assert 'kiosk_id = ""' in cfg.read_text()
    assert run("kiosk-central", "status", "--data", data).stdout.count("k-ffff") == 0


def test_code_typing_rules():
    code = enrolment.new_code()
    assert CODE.match(code.text)
    assert enrolment.parse_code(" " + code.text.lower().replace("-", "") + " ") == code
    assert enrolment.parse_code(enrolment.QR_PREFIX + code.text) == code
    with pytest.raises(enrolment.CodeError, match="4 groups of 5"):
        enrolment.parse_code(code.text[:-2])
    with pytest.raises(enrolment.CodeError, match="characters no enrolment code has"):
        enrolment.parse_code(code.text[:-1] + "!")
    assert code.lookup != enrolment.new_code().lookup and len(code.lookup) == 32


def test_a_kiosk_reads_its_token_with_its_own_camera(tmp_path, authority_copy):
    """The token's QR code (as `enrolment issue --out` wrote it), photographed by the kiosk's
    camera (a picture here), read by its own decoder."""
    import cv2
    import numpy as np

    from workbench.localserver import LocalServer
    from workbench.render import camera_frame

    a, data = authority_copy, tmp_path / "central"
    run("kiosk-central", "init", "--data", data)
    run("kiosk-central", "manifest", "publish", "--keys", a, "--data", data)
    code = _issue(a, data, "cafe-1", tmp_path / "token.png")
    shown = tmp_path / "frames"
    shown.mkdir()
    cv2.imwrite(str(shown / "token.png"), camera_frame(enrolment.QR_PREFIX + code, np.random.default_rng(5)))
    with LocalServer(data, server_keys_folder(a, tmp_path / "server-keys")) as server:
        cfg = _kiosk(tmp_path, a, "kiosk1", "cafe-1", server.url)
        cfg.write_text(cfg.read_text() + f'[camera]\nsource = "images"\nimages = ["{shown}"]\n')
        done = run("kiosk", "enrol", "--config", cfg, "--camera")
        assert "enrolled: kiosk k-" in done.stdout
        both = run("kiosk", "enrol", "--config", cfg, code, "--camera", check=False)
        assert both.returncode == 2 and "one of them" in both.stderr
    blank = _kiosk(tmp_path, a, "kiosk2", "cafe-1", "http://127.0.0.1:9")
    empty = tmp_path / "nothing"
    empty.mkdir()
    cv2.imwrite(str(empty / "wall.png"), np.full((480, 640), 128, np.uint8))
    blank.write_text(blank.read_text() + f'[camera]\nsource = "images"\nimages = ["{empty}"]\n')
    none = run("kiosk", "enrol", "--config", blank, "--camera", check=False)
    assert none.returncode == 1 and "no enrolment code seen by the camera" in none.stderr


def test_a_kiosk_drops_a_days_tag_key_when_the_day_is_over_offline_too(tmp_path, authority_copy):
    from kiosk import config as config_mod
    from kiosk.core.bundle import Bundle
    from kiosk.uploader import uploader_from_config
    from workbench.localserver import LocalServer

    a, data = authority_copy, tmp_path / "central"
    run("kiosk-central", "init", "--data", data)
    run("kiosk-central", "manifest", "publish", "--keys", a, "--data", data)
    code = _issue(a, data, "cafe-1", tmp_path / "token.png")
    with LocalServer(data, server_keys_folder(a, tmp_path / "server-keys")) as server:
        cfg = _kiosk(tmp_path, a, "kiosk1", "cafe-1", server.url)
        run("kiosk", "enrol", "--config", cfg, code)
    up = uploader_from_config(config_mod.load(cfg))  # the server is gone: offline
    try:
        held: Bundle | None = up._held_bundle()
        assert held is not None and held.tag_keys
        tomorrow = min(k.valid_to for k in held.tag_keys) + 1  # the first day is over
        up.clock = lambda: tomorrow
        assert not up.round().ok  # no server; the day's key goes anyway
        after = up._held_bundle()
        assert after is not None and all(k.valid_to > tomorrow for k in after.tag_keys)
        assert len(after.tag_keys) == len(held.tag_keys) - 1
    finally:
        up.store.close()
