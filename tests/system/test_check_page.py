"""The visitor's exposure check: the /check page in a real headless Chromium (Debian's package,
driven by Playwright: no browser download), served by a real `kiosk-central serve` and by a
plain static web host, against a list the committee published through the command line.

A listed pass shows its advice; an unlisted one "no exposure known"; a forged, expired or
foreign one is refused; the browser's request log shows nothing about any pass leaving the
page. The manual's screenshots are the page as drawn here (a fixed clock and list)."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.core.keys import ISSUER_KEY, ROOT_PUB, load_ed25519_private, load_ed25519_public, raw_public
from kiosk.core.passes import pass_ref
from kiosk.core.passnumbers import pass_number
from kiosk.core.timing import DAY
from sync.central.checkpage import write_site
from sync.central.committee.exposures import list_payload, sign_list
from sync.central.issuing import issue_pass, save_pass
from sync.central.keyring import server_keys_folder
from testkit import ROOT, committee_with_a_case
from testkit import run_bin as run
from workbench.browser import CHROMIUM, CHROMIUM_ARGS, NOT_INSTALLED
from workbench.localserver import LocalServer
from workbench.world import members, publish_manifest, raise_risk, seed_bytes, seeded_ed25519, with_storage

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NOT_INSTALLED)
VIEWPORT = {"width": 420, "height": 760}
SHOTS = {  # what the page draws for each (the manual's screenshots), and the outcome it names
    "exposed": ("docs/check-exposed.png", "exposed level-1"),
    "barred": ("docs/check-level3.png", "exposed level-3"),
    "clear": ("docs/check-clear.png", "clear"),
    "refused": ("docs/check-refused.png", "refused"),
}


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw):
    b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory, authority):
    """A server with a committee, a case, a manifest, passes at each level and a published
    exposure list (`kiosk-central exposures publish --site`)."""
    tmp = tmp_path_factory.mktemp("check")
    data = tmp / "central"
    keys = committee_with_a_case(run, tmp, data, "CASE-1")
    now = time.time()
    issued = datetime.fromtimestamp(now - 3600, UTC)
    passes = {}
    for name, level in (("level1", 0), ("level2", 0), ("level3", 0), ("clear", 0), ("own-level", 2)):
        passes[name] = issue_pass(authority, risk=level, issued=issued)
    passes["expired"] = issue_pass(
        authority,
        risk=0,
        issued=datetime.fromtimestamp(now - 30 * DAY, UTC),
        expires=datetime.fromtimestamp(now - DAY, UTC),
    )
    passes["forged"] = issue_pass(authority, risk=0, issued=issued, signing_key=seeded_ed25519("forger"))
    storage = with_storage(data)
    try:
        publish_manifest(authority, storage, now=now)
        alice, _ = members()
        for name, level in (("level1", 1), ("level2", 2), ("level3", 3)):
            raise_risk(storage, alice, [passes[name][1]], level, now=now, case_id="CASE-1")
    finally:
        storage.close()
    site = tmp / "site"
    p = run(
        "kiosk-central",
        "exposures",
        "publish",
        "--data",
        data,
        "--keys",
        authority,
        "--member-key",
        keys[0],
        "--site",
        site,
    )
    assert "3 passes (level 1: 1, level 2: 1, level 3: 1)" in p.stdout
    server = LocalServer(data, server_keys_folder(authority, tmp / "server-keys")).start()
    try:
        yield {"server": server, "passes": passes, "site": site, "tmp": tmp}
    finally:
        server.stop()


def open_page(browser, url, *, log=None, context_args=None):
    context = browser.new_context(viewport=VIEWPORT, **(context_args or {}))
    page = context.new_page()
    if log is not None:  # the page's requests and its service worker's
        context.on("request", lambda r: log.append((r.method, r.url, r.post_data or "")))
    page.goto(url)
    page.wait_for_selector("#status[data-state=ready]", timeout=20_000)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # kept on the phone
    return context, page


def result_after(page, action):
    page.evaluate("const r = document.getElementById('result'); r.hidden = true; r.dataset.outcome = ''")
    action()
    page.wait_for_selector(
        "#result:not([data-outcome=''])", timeout=20_000
    )  # no eval: the page's CSP forbids it
    return page.get_attribute("#result", "data-outcome"), page.inner_text("#result")


def test_the_page_tells_each_pass_what_to_do_and_sends_nothing_about_it(browser, world):
    log: list[tuple[str, str, str]] = []
    context, page = open_page(browser, world["server"].url + "/check", log=log)
    passes = world["passes"]
    try:
        loaded = len(log)

        def checked(name):
            page.fill("#pass-text", passes[name][0])
            return result_after(page, lambda: page.click("#check-text"))

        outcome, text = checked("level1")
        assert outcome == "exposed level-1" and "You may have been exposed. Please get tested" in text
        assert "អ្នកអាចបានប៉ះពាល់ជំងឺ" in text
        outcome, text = checked("level2")
        assert outcome == "exposed level-2" and "get tested today" in text
        look = "e => [getComputedStyle(e).borderTopColor, getComputedStyle(e, '::before').backgroundImage]"
        level1 = page.eval_on_selector("#result", look)
        outcome, text = checked("level3")
        assert outcome == "exposed level-3" and "isolate" in text
        assert "refuses entry" in text  # what the door does with it, said plainly
        level3 = page.eval_on_selector("#result", look)
        # refused at every door: its own colour and its own symbol, not level 1's
        assert level3[0] != level1[0] and "polygon" in level3[1] and "polygon" not in level1[1]
        outcome, text = checked("clear")
        assert outcome == "clear" and "No exposure known for this pass." in text
        # its own level is the door's business; the list is what the committee published
        outcome, text = checked("own-level")
        assert outcome == "clear"
        outcome, text = checked("expired")
        assert outcome == "refused" and "expired" in text
        outcome, text = checked("forged")  # signed by a key the root never named
        assert outcome == "refused" and "not issued by the health authority" in text
        from workbench.demo import tamper

        page.fill("#pass-text", tamper(passes["own-level"][0]))  # level 2 rewritten to 0, not re-signed
        outcome, text = result_after(page, lambda: page.click("#check-text"))
        assert outcome == "refused" and "altered or forged" in text
        page.fill("#pass-text", "https://example.org/")
        outcome, text = result_after(page, lambda: page.click("#check-text"))
        assert outcome == "refused" and "not a pass" in text

        # a photo of the card, read by ZXing-C++ in WebAssembly, on the phone
        save_pass(passes["level2"][0], png=str(world["tmp"] / "card.png"))
        outcome, _ = result_after(
            page, lambda: page.set_input_files("#photo", str(world["tmp"] / "card.png"))
        )
        assert outcome == "exposed level-2"

        # The request log: the page and its two documents, fetched at load; nothing after,
        # and nothing anywhere that names a pass.
        assert len(log) == loaded, log[loaded:]
        paths = sorted({url.split("127.0.0.1")[1].split(":", 1)[1].split("/", 1)[1] for _, url, _ in log})
        needed = {"check", "check/", "check/check.js", "check/exposures.json", "check/manifest.json",
              "check/succession.json"}  # fmt: skip
        assert needed <= set(paths) <= needed | {"check/zxing_reader.wasm", "check/sw.js"}, paths
        assert all(method == "GET" and not body for method, _, body in log)
        secrets = set()
        for text, pid in passes.values():
            secrets |= {
                text[4:40],
                pid.hex(),
                pass_number(pid),
                pass_number(pid).replace("-", ""),
                pass_ref(pid),
            }
        for _, url, _ in log:
            assert not any(s in url for s in secrets)
    finally:
        context.close()


def test_the_camera_reads_the_pass_and_it_is_checked_on_the_phone(tmp_path, world, pw):
    """Chromium's fake camera plays a video of the pass held up (a Y4M file): the page's
    camera path, ZXing in WebAssembly, the list lookup."""
    text = world["passes"]["level1"][0]
    save_pass(text, png=str(tmp_path / "pass.png"), scale=6)
    frame = Image.new("L", (640, 480), 200)
    qr = Image.open(tmp_path / "pass.png").convert("L")
    frame.paste(qr, ((640 - qr.width) // 2, (480 - qr.height) // 2))
    y = np.asarray(frame, dtype=np.uint8)
    uv = np.full((240, 320), 128, dtype=np.uint8)
    video = tmp_path / "pass.y4m"
    with open(video, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            f.write(b"FRAME\n" + y.tobytes() + uv.tobytes() + uv.tobytes())
    args = CHROMIUM_ARGS + [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    b = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        context, page = open_page(
            b, world["server"].url + "/check/", context_args={"permissions": ["camera"]}
        )
        outcome, text = result_after(page, lambda: page.click("#camera"))
        assert outcome == "exposed level-1" and "get tested" in text
        context.close()
    finally:
        b.close()


@pytest.fixture()
def static_host(tmp_path):
    """A plain web host for a folder (Python's http.server on 127.0.0.1): no server-side code."""

    def serve(folder: Path):
        class Handler(http.server.SimpleHTTPRequestHandler):
            extensions_map = {
                **http.server.SimpleHTTPRequestHandler.extensions_map,
                ".wasm": "application/wasm",
                ".js": "text/javascript",
            }

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    servers: list = []
    yield serve
    for s in servers:
        s.shutdown()


def test_the_published_site_works_from_any_web_host_and_offline_once_loaded(browser, world, static_host):
    url = static_host(world["site"])
    context, page = open_page(browser, url)
    try:
        context.set_offline(True)  # the network gone: the check still works
        page.fill("#pass-text", world["passes"]["level2"][0])
        outcome, _ = result_after(page, lambda: page.click("#check-text"))
        assert outcome == "exposed level-2"
        # and opened again later with no network at all: the service worker's copy
        page.reload()
        page.wait_for_selector("#status[data-state=ready]", timeout=20_000)
        page.fill("#pass-text", world["passes"]["clear"][0])
        outcome, _ = result_after(page, lambda: page.click("#check-text"))
        assert outcome == "clear"
        save_pass(world["passes"]["level1"][0], png=str(world["tmp"] / "offline.png"))
        outcome, _ = result_after(
            page, lambda: page.set_input_files("#photo", str(world["tmp"] / "offline.png"))
        )
        assert outcome == "exposed level-1"  # ZXing's WebAssembly came from the phone's copy too
    finally:
        context.close()


def test_a_list_not_signed_by_a_member_is_refused_by_the_page(browser, world, static_host, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(world["site"], site)
    doc = (site / "exposures.json").read_text()
    forged = sign_list(
        {
            "version": 99,
            "issued_at": time.time(),
            "valid_until": time.time() + DAY,
            "member": "someone",
            "salt": "AAAAAAAAAAAAAAAAAAAAAA==",
            "entries": [],
        },
        seeded_ed25519("server-operator"),
    )
    (site / "exposures.json").write_bytes(forged)
    assert doc != forged.decode()
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(static_host(site))
        page.wait_for_selector("#status[data-state=failed]", timeout=20_000)
        assert page.is_disabled("#check-text")
    finally:
        context.close()


# -- the manual's screenshots ----------------------------------------------------------------------
FIXED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()


def screenshot_site(folder: Path, authority: Path) -> dict[str, str]:
    """A site with a fixed list (fixed time, salt and passes), so the page draws the same
    every run; returns the pass text to show for each outcome."""
    storage_dir = folder.parent / "shot-central"
    run("kiosk-central", "init", "--data", storage_dir)
    storage = with_storage(storage_dir)
    try:
        from workbench.world import committee

        committee(storage, now=FIXED - DAY)
        publish_manifest(authority, storage, now=FIXED - DAY)
        manifest = storage.latest_manifest()[1]
    finally:
        storage.close()
    alice, _ = members()
    issuer = load_ed25519_private(authority / ISSUER_KEY)
    issued = datetime.fromtimestamp(FIXED - DAY, UTC)
    listed = issue_pass(
        authority, risk=0, issued=issued, pass_id=seed_bytes("listed", 16), signing_key=issuer
    )
    clear = issue_pass(authority, risk=0, issued=issued, pass_id=seed_bytes("clear", 16), signing_key=issuer)
    gone = issue_pass(
        authority,
        risk=0,
        issued=datetime.fromtimestamp(FIXED - 20 * DAY, UTC),
        expires=datetime.fromtimestamp(FIXED - DAY, UTC),
        pass_id=seed_bytes("gone", 16),
        signing_key=issuer,
    )
    from kiosk.core.keys import raw_public as _raw  # noqa: F401
    from sync.central.committee.members import member_id

    barred = issue_pass(
        authority, risk=0, issued=issued, pass_id=seed_bytes("barred", 16), signing_key=issuer
    )
    payload = list_payload(
        {pass_ref(listed[1]): (1, FIXED + 14 * DAY), pass_ref(barred[1]): (3, FIXED + 14 * DAY)},
        version=1,
        member_id=member_id(alice.public_key()),
        now=FIXED - 3600,
        salt=seed_bytes("salt", 16),
    )
    write_site(
        folder,
        root_public=raw_public(load_ed25519_public(authority / ROOT_PUB)),
        manifest_doc=manifest,
        exposures_doc=sign_list(payload, alice).decode(),
    )
    return {"exposed": listed[0], "barred": barred[0], "clear": clear[0], "refused": gone[0]}


def test_the_manuals_screenshots_are_what_the_page_shows(browser, authority, static_host, tmp_path):
    texts = screenshot_site(tmp_path / "site", authority)
    readme = (ROOT / "docs" / "visitors" / "check.md").read_text().replace("](../", "](docs/")
    url = static_host(tmp_path / "site")
    for outcome, (shot, named) in SHOTS.items():
        assert f"]({shot})" in readme, shot
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.clock.set_fixed_time(FIXED)
            page.goto(url)
            page.wait_for_selector("#status[data-state=ready]", timeout=20_000)
            page.fill("#pass-text", texts[outcome])
            got, _ = result_after(page, functools.partial(page.click, "#check-text"))
            assert got == named
            page.evaluate("document.activeElement.blur()")
            now = tmp_path / f"{outcome}.png"
            page.screenshot(path=str(now), full_page=True)
        finally:
            context.close()
        kept = ROOT / shot
        if not kept.exists() and __import__("os").environ.get("UPDATE_SCREENSHOTS"):
            shutil.copy(now, kept)
        a = np.asarray(Image.open(now).convert("L"), dtype=int)
        b = np.asarray(Image.open(kept).convert("L"), dtype=int)
        assert a.shape == b.shape and np.abs(a - b).mean() < 2.0, shot


@pytest.mark.skipif(
    not shutil.which("npm"), reason="npm not installed: the committed bundle cannot be rebuilt here"
)
def test_the_committed_bundle_is_what_web_check_builds():
    """The page's JavaScript is built from web/check with the locked npm packages: what is
    kept in sync/central/checkpage/static is exactly that build (scripts/build-page)."""
    p = subprocess.run(
        [str(ROOT / "scripts" / "build-page"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "is what web/check builds" in p.stdout


def test_a_page_built_with_another_root_says_so_and_checks_nothing(browser, world, authority):
    """The card's link carries its authority's root fingerprint (#root=..., never sent to a
    server): the page compares it with the root it was built with. A server that swapped
    its root.pub serves a page that refuses, by name; the right fingerprint checks as usual."""
    from kiosk.core.keys import ROOT_PUB, load_ed25519_public
    from kiosk.core.roots import fingerprint

    mine = fingerprint(load_ed25519_public(authority / ROOT_PUB))
    context, page = open_page(browser, world["server"].url + f"/check/#root={mine}")
    try:
        assert page.inner_text("#root-fingerprint") == mine
    finally:
        context.close()
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(world["server"].url + "/check/#root=0123456789abcdef")
        page.wait_for_selector("#status[data-state=failed]", timeout=20_000)
        assert "not your health authority's" in page.inner_text("#status")
        assert page.is_disabled("#check-text")
    finally:
        context.close()


def test_the_page_follows_the_roots_hand_over_so_cards_printed_before_it_stay_good(
    browser, static_host, authority, tmp_path
):
    """The manual's root succession (`keys successor`, `manifest publish --next-root`, `keys
    successor --promote`): the page, served by a server whose root.pub is still the old one
    and published with `--site` after the hand-over, follows it as a kiosk does. A card of
    the old root and one of the new both check; a listed pass is still found; another
    authority's fingerprint is still refused."""
    from kiosk.core.roots import fingerprint

    keys = tmp_path / "authority"
    shutil.copytree(authority, keys)
    data = tmp_path / "central"
    members_files = committee_with_a_case(run, tmp_path, data, "CASE-S")
    server_keys = server_keys_folder(keys, tmp_path / "server-keys")  # made before: the old root.pub
    old = fingerprint(load_ed25519_public(keys / ROOT_PUB))
    storage = with_storage(data)
    try:
        publish_manifest(keys, storage, now=time.time())
    finally:
        storage.close()
    run("kiosk-central", "keys", "successor", "--keys", keys)
    run(
        "kiosk-central",
        "manifest",
        "publish",
        "--keys",
        keys,
        "--data",
        data,
        "--next-root",
        keys / "root-next.pub",
    )
    run("kiosk-central", "keys", "successor", "--keys", keys, "--data", data, "--promote")
    new = fingerprint(load_ed25519_public(keys / ROOT_PUB))
    assert new != old
    listed = issue_pass(keys, risk=0, issued=datetime.fromtimestamp(time.time() - 3600, UTC))
    storage = with_storage(data)
    try:
        alice, _ = members()
        raise_risk(storage, alice, [listed[1]], 1, now=time.time(), case_id="CASE-S")
    finally:
        storage.close()
    site = tmp_path / "site"
    alice_key = members_files[0]
    run("kiosk-central", "exposures", "publish", "--data", data, "--keys", keys, "--member-key", alice_key,
        "--site", site)  # fmt: skip
    with LocalServer(data, server_keys) as server:
        for base in (server.url + "/check/", static_host(site)):
            for card in (old, new):
                context, page = open_page(browser, base + f"#root={card}")
                try:
                    assert page.inner_text("#root-fingerprint") == card
                    page.fill("#pass-text", listed[0])
                    outcome, _ = result_after(page, lambda page=page: page.click("#check-text"))
                    assert outcome == "exposed level-1", (base, card)
                finally:
                    context.close()
            context = browser.new_context(viewport=VIEWPORT)
            try:
                page = context.new_page()
                page.goto(base + "#root=0123456789abcdef")
                page.wait_for_selector("#status[data-state=failed]", timeout=20_000)
            finally:
                context.close()
