"""The server's Prometheus metrics: this process's counters, and per-kiosk figures."""

from __future__ import annotations


class Metrics:
    """This process's counters, and the per-kiosk figures read from the database at each
    scrape (so that several server processes report the same)."""

    def __init__(self, storage, clock):
        from prometheus_client import CollectorRegistry, Counter
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        r = self.registry
        self.batches = Counter("kiosk_central_batches", "upload batches stored", registry=r)
        self.accepted = Counter("kiosk_central_records_accepted", "records stored", registry=r)
        self.duplicates = Counter("kiosk_central_records_duplicate", "records sent again", registry=r)
        self.rejected = Counter(
            "kiosk_central_requests_rejected", "4xx answers by reason", ["reason"], registry=r
        )
        self.bundles = Counter("kiosk_central_bundle_requests", "bundle answers", ["answer"], registry=r)

        class PerKiosk:
            def collect(self):
                last = GaugeMetricFamily(
                    "kiosk_central_kiosk_last_upload_timestamp_seconds",
                    "when each kiosk last uploaded",
                    labels=["kiosk"],
                )
                lag = GaugeMetricFamily(
                    "kiosk_central_kiosk_upload_lag_seconds",
                    "how long its newest uploaded record waited",
                    labels=["kiosk"],
                )
                for kiosk_id, at, waited in storage.kiosk_contacts():
                    last.add_metric([kiosk_id], at)
                    if waited is not None:
                        lag.add_metric([kiosk_id], waited)
                yield last
                yield lag

        r.register(PerKiosk())
