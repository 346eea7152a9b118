"""The server's Prometheus metrics, for operators, not trackers: this process's counters
and what it saw of each kiosk, all in memory (a scrape never reads the database, so it never
waits on, nor holds, anything kiosk requests need), served on a listener of their own
(loopback by default: `serve --metrics-host/--metrics-port`).

Per kiosk, only the hour it was last *seen* (any authenticated request: a kiosk online
polls its bundle every minute whether or not anyone checked in, so the hour it was last
seen says it is alive, not when a visitor came). There is no per-kiosk upload time or lag:
a kiosk uploads only when it holds check-ins, so those would give check-in times.

The fleet's state (sync.central.fleet: kiosks by state and by reason for attention, pending
records, the oldest bundle, missing records) as aggregates only, for alerting
(config/prometheus/kiosk-central.rules.yml): computed by a thread of its own once a minute
from the database (:meth:`Metrics.refresh_fleet`), so a scrape still reads only memory; the
same thread keeps the fleet's hourly state for `kiosk-central report`."""

from __future__ import annotations

import threading

HOUR = 3600


class Metrics:
    def __init__(self, storage=None, clock=None):
        import time

        from prometheus_client import CollectorRegistry, Counter
        from prometheus_client.core import GaugeMetricFamily

        self.clock = clock or time.time
        self.registry = CollectorRegistry()
        r = self.registry
        self.batches = Counter("kiosk_central_batches", "upload batches stored", registry=r)
        self.accepted = Counter("kiosk_central_records_accepted", "records stored", registry=r)
        self.duplicates = Counter("kiosk_central_records_duplicate", "records sent again", registry=r)
        self.rejected = Counter(
            "kiosk_central_requests_rejected", "4xx answers by reason", ["reason"], registry=r
        )
        self.bundles = Counter("kiosk_central_bundle_requests", "bundle answers", ["answer"], registry=r)
        self._seen: dict[str, int] = {}  # kiosk id -> the hour it was last seen (by this process)
        self.fleet: dict | None = None  # the last aggregate (refresh_fleet), with its time
        self._lock = threading.Lock()
        metrics = self

        class Seen:
            def collect(self):
                with metrics._lock:
                    seen = dict(metrics._seen)
                now = metrics.clock()
                last = GaugeMetricFamily(
                    "kiosk_central_kiosk_last_seen_hour_timestamp_seconds",
                    "the start of the hour each kiosk was last seen by this process (any request)",
                    labels=["kiosk"],
                )
                for kiosk_id, hour in sorted(seen.items()):
                    last.add_metric([kiosk_id], hour)
                yield last
                within = GaugeMetricFamily(
                    "kiosk_central_kiosks_seen",
                    "kiosks this process saw within the last hours",
                    labels=["within"],
                )
                for label, hours in (("1h", 1), ("24h", 24), ("7d", 168)):
                    within.add_metric(
                        [label], sum(1 for h in seen.values() if now - h <= hours * HOUR + HOUR)
                    )
                yield within

        r.register(Seen())

        class Fleet:
            def collect(self):
                fleet = metrics.fleet
                if fleet is None:
                    return
                by_state = GaugeMetricFamily(
                    "kiosk_central_fleet_kiosks", "registered kiosks by state", labels=["state"]
                )
                for state in ("ok", "attention", "revoked"):
                    by_state.add_metric([state], fleet["summary"][state])
                yield by_state
                why = GaugeMetricFamily(
                    "kiosk_central_fleet_attention",
                    "kiosks needing attention, by reason (one kiosk may have several)",
                    labels=["reason"],
                )
                from sync.central.fleet import REASON_KINDS

                for reason in REASON_KINDS:
                    why.add_metric([reason], fleet["summary"]["reasons"].get(reason, 0))
                yield why
                for name, help_, value in (
                    (
                        "kiosk_central_fleet_pending_records",
                        "records kiosks hold not yet uploaded",
                        "pending",
                    ),
                    ("kiosk_central_fleet_missing_records", "sequence numbers that never arrived", "missing"),
                    (
                        "kiosk_central_fleet_oldest_bundle_age_seconds",
                        "the oldest bundle an active kiosk holds",
                        "oldest_bundle_s",
                    ),
                    ("kiosk_central_fleet_updated_timestamp_seconds", "when these were computed", "at"),
                ):
                    g = GaugeMetricFamily(name, help_)
                    g.add_metric([], fleet[value])
                    yield g

        r.register(Fleet())

    def refresh_fleet(self, storage, *, snapshot: bool = False) -> dict:
        """The fleet's aggregate now (and, with ``snapshot``, kept for `report`)."""
        import json

        from sync.central.fleet import fleet, summary

        now = self.clock()
        kiosks = fleet(storage, now=now)
        active = [k for k in kiosks if not k.revoked]
        ages = [age for k in active if (age := k.bundle_age(now)) is not None]
        result = {
            "at": now,
            "summary": summary(kiosks),
            "pending": sum(int((k.health or {}).get("pending") or 0) for k in active),
            "missing": sum(k.missing for k in active),
            "oldest_bundle_s": max(ages, default=0.0),
        }
        self.fleet = result
        if snapshot:
            storage.add_fleet_snapshot(now, json.dumps(result, sort_keys=True))
        return result

    def seen(self, kiosk_id: str) -> None:
        hour = int(self.clock() // HOUR * HOUR)
        with self._lock:
            self._seen[kiosk_id] = hour


def start_listener(metrics: Metrics, *, host: str, port: int, tries: int = 1) -> int:
    """Serve ``metrics`` on http://host:port/metrics (its own thread and socket). With
    ``tries`` > 1 (several worker processes), the first free port of port .. port+tries-1.
    Returns the port."""
    from prometheus_client import start_http_server

    last: OSError | None = None
    for p in range(port, port + max(1, tries)):
        try:
            start_http_server(p, addr=host, registry=metrics.registry)
            return p
        except OSError as e:
            last = e
    raise OSError(last.errno if last else 98, f"cannot listen for metrics on {host}:{port}") from last
