"""The /check page: static files (HTML, the bundled JavaScript, ZXing-C++ as WebAssembly)
that check a visitor's pass against the committee's exposure list in the browser.

The JavaScript is built from web/check/ (npm packages, bundled by esbuild: scripts/build-page)
and kept here, so neither the server nor a kiosk needs Node.js. The page is built with the
root's public key and the advice texts; beside it go the root's latest manifest, the
exposure list and the root's hand-overs (``manifest.json``, ``exposures.json``,
``succession.json``: the manifests that named each successor root, which the page follows
from the root it was built with, as a kiosk does). Served by `kiosk-central serve` at
/check/, or written to a folder for any web host (`kiosk-central exposures publish --site`).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from kiosk.core.faults import UsageError
from kiosk.core.signed import b64
from sync.central.committee.exposures import ADVICE

PAGE, SCRIPT, WASM, WORKER = "index.html", "check.js", "zxing_reader.wasm", "sw.js"
MANIFEST, EXPOSURES, SUCCESSION = "manifest.json", "exposures.json", "succession.json"
TYPES = {
    PAGE: "text/html; charset=utf-8",
    SCRIPT: "text/javascript; charset=utf-8",
    WORKER: "text/javascript; charset=utf-8",
    WASM: "application/wasm",
    MANIFEST: "application/json",
    EXPOSURES: "application/json",
    SUCCESSION: "application/json",
}


def static_file(name: str) -> bytes:
    return files("sync.central.checkpage").joinpath("static", name).read_bytes()


def page(root_public: bytes) -> bytes:
    """index.html with what the page trusts (the root key) and says (advice) filled in."""
    config = {"root": b64(root_public), "advice": {k: list(v) for k, v in ADVICE.items()}}
    text = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    return static_file(PAGE).replace(b"__CONFIG__", text.encode())


def check_site_folder(folder: Path) -> None:
    """Where `exposures publish --site` may write: a folder, or a new one in a folder that
    exists; refused before anything is signed or kept."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--site {folder}: not a folder (the page's files go into a folder)")
    if not folder.exists() and not folder.parent.is_dir():
        raise UsageError(f"--site {folder}: the folder {folder.parent} does not exist")


def succession_file(docs: list[str]) -> bytes:
    """``succession.json``: the manifests that named a successor root, oldest first."""
    return json.dumps(list(docs)).encode()


def write_site(
    folder: Path,
    *,
    root_public: bytes,
    manifest_doc: str,
    exposures_doc: str,
    succession: list[str] | None = None,
) -> list[Path]:
    """Every file of the page, ready for any static web host (the folder itself is made, not
    the folders above it)."""
    folder = Path(folder)
    check_site_folder(folder)
    folder.mkdir(exist_ok=True)
    out = {
        PAGE: page(root_public),
        SCRIPT: static_file(SCRIPT),
        WASM: static_file(WASM),
        WORKER: static_file(WORKER),
        MANIFEST: manifest_doc.encode(),
        EXPOSURES: exposures_doc.encode(),
        SUCCESSION: succession_file(succession or []),
    }
    # What anyone can check the page against (the static files rebuild byte for byte from
    # web/check: scripts/build-page --check): the hash of each file, the way sha256sum -c reads it.
    import hashlib

    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(out.items()))
    out["SHA256SUMS"] = sums.encode()
    written = []
    for name, data in out.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
        written.append(folder / name)
    return written
