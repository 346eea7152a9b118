"""The fleet at a glance (`kiosk-central status`): each reason for attention, the order, the
summary and the JSON, from a real store."""

from __future__ import annotations

import json
import re

from kiosk.core.timing import DAY
from sync.central.fleet import Thresholds, as_json, fleet, lines, summary
from sync.central.storage.sqlite_backend import SqliteStorage
from workbench.world import health_summary

NOW = 1_800_000_000.0
HOUR = 3600.0


def health(**changes):
    return json.dumps(health_summary(at=NOW, **changes))


def test_each_reason_for_attention_and_the_order(tmp_path):
    s = SqliteStorage.in_folder(tmp_path / "c")
    try:
        ids = {}
        for name in ("fine", "silent", "never", "stale", "clock", "disk", "fault", "revoked"):
            ids[name] = s.register_kiosk(
                venue=name.title(), public_key=name.encode().ljust(32, b"."), now=NOW - DAY
            )
        seen = {
            "fine": (NOW - 60, 2.0, health()),
            "silent": (NOW - 9 * HOUR, 0.0, health()),
            "stale": (NOW - 60, 0.0, health(bundle_age_s=30 * HOUR)),
            "clock": (NOW - 60, -400.0, health(clock_synced=False)),
            "disk": (NOW - 60, 0.0, health(disk_free_mb=80)),
            "fault": (NOW - 60, 0.0, health(fault="camera", fault_at=NOW - 2 * HOUR, pending=7)),
        }
        for name, (at, skew, h) in seen.items():
            s.record_seen(ids[name], now=at, skew_s=skew, summary=h, upload=name == "fine")
        s.revoke_kiosk(ids["revoked"], now=NOW - HOUR)
        kiosks = fleet(s, now=NOW, thresholds=Thresholds())
    finally:
        s.close()
    by_venue = {k.venue: k for k in kiosks}
    assert by_venue["Fine"].reasons == () and by_venue["Fine"].state == "ok"
    assert by_venue["Silent"].reasons == ("silent 9 h",)
    assert by_venue["Never"].reasons == ("never seen",)
    assert by_venue["Stale"].reasons == ("stale bundle (30 h)",)
    assert by_venue["Clock"].reasons == ("clock unsynced", "clock -400 s off")
    assert by_venue["Disk"].reasons == ("disk low (80 MB free)",)
    assert by_venue["Fault"].reasons == ("fault: camera 2 h ago",)
    assert by_venue["Revoked"].state == "revoked"
    order = [k.state for k in kiosks]
    assert order == sorted(order, key=["attention", "ok", "revoked"].index)  # attention first
    assert summary(kiosks) == {
        "kiosks": 8,
        "ok": 1,
        "attention": 6,
        "revoked": 1,
        "reasons": {"clock": 2, "disk low": 1, "fault": 1, "never seen": 1, "silent": 1, "stale bundle": 1},
        "versions": {"0.1.0": 6},  # what the kiosks that reported their health run
    }
    out = lines(kiosks, now=NOW)
    assert out[-1] == (
        "8 kiosks: 1 ok, 6 need attention (clock 2, disk low 1, fault 1, never seen 1, silent 1, "
        "stale bundle 1), 1 revoked; versions 0.1.0 (6)"
    )
    fault = next(line for line in out if line.startswith(ids["fault"]))
    assert "pending 7" in fault and "fault camera at 2027-01-15T06:00Z" in fault
    assert fault.endswith("ATTENTION: fault: camera 2 h ago")
    fine = next(line for line in out if line.startswith(ids["fine"]))
    assert (
        "last seen 2027-01-15T07:59Z (60 s ago)" in fine and "last upload 2027-01-15  " in fine
    )  # its day only
    assert "ATTENTION" not in fine and "clock synced +2 s" in fine
    assert all(not re.search(r"\d{9,}\.\d", line) for line in out)  # no epoch floats for people
    doc = as_json(kiosks, now=NOW)
    assert doc["summary"] == summary(kiosks) and len(doc["kiosks"]) == 8
    assert doc["kiosks"][0]["state"] == "attention" and "at" not in (doc["kiosks"][0]["health"] or {})
    json.dumps(doc)  # serialisable as it is


def test_thresholds_are_the_operators(tmp_path):
    s = SqliteStorage.in_folder(tmp_path / "c")
    try:
        kid = s.register_kiosk(venue="Hall", public_key=b"h" * 32, now=NOW - DAY)
        s.record_seen(kid, now=NOW - 3 * HOUR, skew_s=0.0, summary=health(), upload=False)
        assert fleet(s, now=NOW)[0].reasons == ()
        assert fleet(s, now=NOW, thresholds=Thresholds(silent_h=2))[0].reasons == ("silent 3 h",)
    finally:
        s.close()
