"""A seeded fleet in a real store, for the report's tests and README's screenshot, and the
status/report benchmark: kiosks registered, seen (or not) with signed-health summaries of
every kind (fine, silent, never seen, stale bundle, fault, disk low, clock), upload batches
with their lags, some missing sequence numbers, the fleet's hourly state over the days, and a
committee with cases and readings. The same seed gives the same fleet."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any
from unittest import mock

from kiosk.core.timing import DAY

HOUR = 3600.0
KINDS = ("ok", "silent", "never", "stale", "fault", "disk", "clock")
WEIGHTS = (78, 8, 2, 4, 4, 2, 2)


def _health(rng: random.Random, kind: str, now: float) -> dict[str, Any]:
    return {
        "at": now,
        "version": "0.1.0",
        "bundle_version": 40 + rng.randrange(3),
        "manifest_version": 7,
        "bundle_age_s": (30 + rng.random() * 40) * HOUR if kind == "stale" else rng.random() * 3 * HOUR,
        "pending": rng.randrange(0, 40),
        "set_aside": 0,
        "clock_synced": kind != "clock",
        "clock_offset_s": 0.0,
        "disk_free_mb": 90 if kind == "disk" else 2000 + rng.randrange(20000),
        "fault": "camera" if kind == "fault" else None,
        "fault_at": now - rng.random() * 10 * HOUR if kind == "fault" else None,
        "epoch": 1,
        "uptime_s": rng.random() * 30 * DAY,
        # how long its oldest record not yet acknowledged has waited (the fleet's upload lag)
        "oldest_pending_s": round(
            rng.choice((rng.random() * 120, rng.random() * 3600, rng.random() * 8 * HOUR))
        ),
    }


def simulate_fleet(storage, *, kiosks: int, now: float, seed: str = "fleet", days: int = 28) -> list[str]:
    from sync.central.committee.members import approve_case, found_committee, open_case
    from workbench.world import members

    rng = random.Random(seed)
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(kiosks + 10))
    out = []
    with mock.patch("secrets.token_hex", lambda n=None: next(ids)):  # seeded kiosk ids
        for i in range(kiosks):
            kind = rng.choices(KINDS, WEIGHTS)[0]
            kid = storage.register_kiosk(
                venue=f"Venue {i + 1:05d}",
                public_key=rng.getrandbits(256).to_bytes(32, "big"),
                now=now - 60 * DAY,
            )
            out.append(kid)
            if kind == "never":
                continue
            seen = now - (8 + rng.random() * 60) * HOUR if kind == "silent" else now - rng.random() * 600
            skew = 240.0 if kind == "clock" else rng.uniform(-3, 3)
            # an upload batch or two: their lag from the newest check-in to receipt
            seq, received = 1, seen
            for _ in range(rng.randrange(1, 3)):
                lag = rng.choice((rng.random() * 120, rng.random() * 3600, rng.random() * 8 * HOUR))
                n = rng.randrange(1, 4)
                rows = []
                for j in range(n):
                    if rng.random() < 0.03:
                        seq += rng.randrange(1, 5)  # numbers that never arrive
                    rows.append(
                        {
                            "record_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            "seq": seq,
                            "epoch": 1,
                            "captured_at": received - lag - (n - j),
                            "clock_synced": True,
                            "sealed": rng.getrandbits(512).to_bytes(64, "big"),
                            "tag": f"{rng.getrandbits(128):032x}",
                        }
                    )
                    seq += 1
                storage.ingest(kid, str(uuid.UUID(int=rng.getrandbits(128), version=4)), rows, now=received)
                storage.record_seen(kid, now=received, skew_s=skew, summary=None, upload=True)
                received -= rng.random() * 2 * DAY
            storage.record_seen(
                kid,
                now=seen,
                skew_s=skew,
                summary=json.dumps(_health(rng, kind, seen), sort_keys=True),
                upload=False,
            )
    # the fleet's hourly state: most fine, a dip a week ago
    for h in range(days * 24, 0, -1):
        at = now - h * HOUR
        dip = 1.0 if abs(at - (now - 7 * DAY)) > 10 * HOUR else 0.6
        ok = int(kiosks * 0.9 * dip)
        state = {"ok": ok, "attention": kiosks - ok, "revoked": 0, "kiosks": kiosks, "reasons": {}}
        storage.add_fleet_snapshot(at, json.dumps({"at": at, "summary": state}))
    # a committee, cases over the weeks, readings and traces
    alice, bob = members()
    found_committee(storage, [("Alice", alice), ("Bob", bob)], now=now - 60 * DAY)
    for c, at in enumerate(sorted(now - rng.uniform(1, 70) * DAY for _ in range(5))):
        case = f"CASE-{c + 1}"
        open_case(
            storage,
            key=bob,
            case_id=case,
            reason="a cluster reported by the district hospital",
            from_ts=at - 10 * DAY,
            to_ts=at,
            now=at,
        )
        approve_case(storage, key=alice, case_id=case, now=at + 60)
        for r in range(rng.randrange(1, 4)):
            storage.log_read(
                reader="Alice + Bob",
                case_id=case,
                kiosk_id=None,
                from_ts=at - 10 * DAY,
                to_ts=at,
                records=rng.randrange(1, 50),
                now=at + (r + 1) * DAY,
                kind=rng.choice(("read", "trace")),
            )
    return out
