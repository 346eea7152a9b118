"""Debian's Chromium for the page tests (Playwright drives it: no browser is downloaded), run
as this machine's probe runs it: headless, no sandbox as root, no background calls home."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOT_INSTALLED = "Debian's chromium is not installed (scripts/setup --test installs it)"
