"""`kiosk-central report --html`: one self-contained page, opened in a real headless Chromium
(Debian's, through Playwright): its charts, its summary (the same as `status`), the kiosks
needing attention, and not one request beyond the file. The manual's screenshot is this page."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from sync.central.report import render, report_data
from sync.central.storage.sqlite_backend import SqliteStorage
from testkit import ROOT, run_bin
from workbench.browser import CHROMIUM, CHROMIUM_ARGS, NOT_INSTALLED
from workbench.fleetsim import simulate_fleet

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NOT_INSTALLED)
SHOT = "docs/report.png"
FIXED = 1_800_000_000.0


def central(*args) -> str:
    return run_bin("kiosk-central", *args).stdout


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_the_report_shows_the_fleet_as_status_does_and_fetches_nothing(tmp_path, browser):
    data = tmp_path / "central"
    central("init", "--data", data)
    storage = SqliteStorage.in_folder(data)
    try:
        simulate_fleet(storage, kiosks=80, now=time.time())
    finally:
        storage.close()
    out = central("report", "--data", data, "--html", tmp_path / "fleet.html")
    assert out.startswith(f"report written to {tmp_path / 'fleet.html'}: 80 kiosks, ")
    status = central("status", "--data", data).splitlines()
    attention = [line for line in status if "  ATTENTION: " in line]

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((tmp_path / "fleet.html").as_uri())
    assert requests == [(tmp_path / "fleet.html").as_uri()]  # self-contained: nothing else fetched
    titles = page.locator("h2").all_inner_texts()
    assert titles == [
        "The fleet over time",
        "Kiosks by last seen",
        "Upload lag",
        "Bundle age",
        "Missing records",
        "Cases and readings",
        "Kiosks needing attention",
    ]
    assert page.locator("section svg").count() == 6
    for chart in page.locator("section svg").all():
        box = chart.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 120  # drawn, not empty
    assert page.inner_text("#summary") == status[-1]  # the same figures as `status`
    assert page.locator("#attention tr").count() == len(attention) + 1
    svg_text = page.locator("section").all_inner_texts()
    assert any("< 1 h" in t for t in svg_text) and any("cases opened" in t for t in svg_text)
    body = page.inner_text("body")
    assert "never seen" in body or "silent" in body
    page.close()


def test_readme_screenshot_is_the_report(tmp_path, browser):
    storage = SqliteStorage.in_folder(tmp_path / "c")
    try:
        simulate_fleet(storage, kiosks=60, now=FIXED)
        page_html = render(report_data(storage, now=FIXED))
    finally:
        storage.close()
    (tmp_path / "r.html").write_text(page_html)
    assert f"](../{SHOT.removeprefix('docs/')})" in (ROOT / "docs" / "operator" / "monitoring.md").read_text()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto((tmp_path / "r.html").as_uri())
    now = tmp_path / "report.png"
    page.screenshot(path=str(now), full_page=True)
    page.close()
    kept = ROOT / SHOT
    if not kept.exists() and os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(now, kept)
    a = np.asarray(Image.open(now).convert("L"), dtype=int)
    b = np.asarray(Image.open(kept).convert("L"), dtype=int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 2.0


def test_a_new_servers_report_says_there_is_no_history_and_fits_a_phone(tmp_path, browser):
    """On a store nothing has reached yet, each chart says so in words (no empty axes, no
    dates from 1970, no fractions of a kiosk); with a small fleet the counts are whole
    numbers; and the page fits a phone's width without sideways scrolling."""
    import re

    data = tmp_path / "central"
    central("init", "--data", data)
    central("report", "--data", data, "--html", tmp_path / "empty.html")
    storage = SqliteStorage.in_folder(tmp_path / "small")
    try:
        simulate_fleet(storage, kiosks=3, now=FIXED, days=1)
        (tmp_path / "small.html").write_text(render(report_data(storage, now=FIXED)))
    finally:
        storage.close()
    for name in ("empty", "small"):
        page = browser.new_page(viewport={"width": 360, "height": 740}, device_scale_factor=2)
        page.goto((tmp_path / f"{name}.html").as_uri())
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{name}: {width} px wide on a 360 px phone"
        texts = " ".join(page.locator("section").all_text_contents())
        if name == "empty":
            assert page.locator("section svg").count() == 0  # words, not empty axes
            assert "no history yet" in texts and "no kiosk registered yet" in texts
            assert "no kiosk reported its health in the last 28 days" in texts and "1970" not in texts
            assert not re.search(r"\b0\.\d\b", texts)
        else:
            ticks = re.findall(r"\b\d+\.\d+\b", texts)
            assert ticks == [], f"fractions on a count's axis: {ticks}"
        page.close()
