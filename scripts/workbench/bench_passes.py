"""Passes in bulk (`scripts/bench --only-passes`): how fast the issuing office signs passes and
lays out cards, for 100,000 passes, beside the raw limits (Ed25519 signing alone; zxing-cpp's
encoder alone), and what a country of 16 million would take on this machine."""

from __future__ import annotations

import resource
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

COUNTRY = 16_000_000


def bench_passes(t, work: Path, keys: Path, *, count: int) -> None:
    from kiosk.core.keys import ISSUER_KEY, load_ed25519_private
    from kiosk.core.passes import encode_pass
    from sync.central.passcards import counted_requests, issue_batch, qr_matrix, save_image, sign_passes

    key = load_ed25519_private(keys / ISSUER_KEY)
    issued = datetime.now(UTC).replace(microsecond=0)

    # raw limits: an Ed25519 signature over a pass-sized message; a QR code from zxing-cpp
    n = 20_000
    msg = secrets.token_bytes(120)
    t0 = time.perf_counter()
    for _ in range(n):
        key.sign(msg)
    raw_sign = n / (time.perf_counter() - t0)
    t.add("raw: Ed25519 signatures a second (cryptography)", f"{raw_sign:,.0f}/s", "the limit for signing")
    t0 = time.perf_counter()
    exp = int((issued + timedelta(days=365)).timestamp())
    for _ in range(n):
        encode_pass(
            signing_key=key,
            issuer="health-committee",
            issued_at=int(issued.timestamp()),
            expires_at=exp,
            pass_id=secrets.token_bytes(16),
            risk_level=0,
        )
    signed = n / (time.perf_counter() - t0)
    t.add(
        "passes signed a second (CBOR, COSE, zlib, base45)",
        f"{signed:,.0f}/s",
        f"{signed / raw_sign:.2f}x raw",
    )
    sample = list(
        sign_passes(
            counted_requests(2000, issued=issued, days=365, risk=0),
            key=key,
            issuer="health-committee",
            issued=issued,
        )
    )
    t0 = time.perf_counter()
    for p in sample:
        qr_matrix(p.text)
    raw_qr = len(sample) / (time.perf_counter() - t0)
    t.add("raw: QR codes encoded a second (zxing-cpp)", f"{raw_qr:,.0f}/s", "")
    images = work / "bench-images"
    images.mkdir()
    t0 = time.perf_counter()
    for p in sample:
        save_image(p, images, "png")
    t.add(
        "phone PNG images a second (QR, number under it)",
        f"{len(sample) / (time.perf_counter() - t0):,.0f}/s",
        "",
    )

    # the whole command's work, for ``count`` passes, cards only and with images
    for images_kind in ("none", "png"):
        out = work / f"bench-batch-{images_kind}"
        requests = counted_requests(
            count if images_kind == "none" else min(count, 20_000), issued=issued, days=365, risk=0
        )
        t0 = time.perf_counter()
        r = issue_batch(requests, out, key=key, issuer="health-committee", issued=issued, images=images_kind)
        wall = time.perf_counter() - t0
        size = sum((out / name).stat().st_size for name in r.files)
        t.add(
            f"issue-passes {r.count:,} {'with PNG images' if images_kind == 'png' else 'cards only'}: wall",
            f"{wall:,.1f} s",
            f"{r.count / wall:,.0f} passes/s in all",
        )
        t.add(
            "  cards laid out into the PDF a second",
            f"{r.count / r.cards_s:,.0f}/s",
            f"{r.pages:,} pages in {len(r.files)} file(s), {size / 2**20:,.0f} MiB",
        )
        if images_kind == "none":
            country = COUNTRY / (r.count / wall)
            t.add(
                f"  a country of {COUNTRY / 1e6:.0f} million at this rate, one core",
                f"{country / 3600:,.1f} h",
                f"{country / 3600 / 2:,.1f} h on this machine's 2 cores (one batch per core)",
            )
    t.add(
        "peak RSS of this process (passes)",
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
    )
