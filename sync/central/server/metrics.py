"""The server's Prometheus metrics, for operators, not trackers: this process's counters
and what it saw of each kiosk, all in memory (a scrape never reads the database, so it never
waits on, nor holds, anything kiosk requests need), served on a listener of their own
(loopback by default: `serve --metrics-host/--metrics-port`).

Per kiosk, only the hour it was last *seen* (any authenticated request: a kiosk online
polls its bundle every minute whether or not anyone checked in, so the hour it was last
seen says it is alive, not when a visitor came). There is no per-kiosk upload time or lag:
a kiosk uploads only when it holds check-ins, so those would give check-in times."""

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
