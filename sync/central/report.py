"""`kiosk-central report --html FILE`: the fleet and the committee's work on one self-contained
page (no network needed to view it: charts are SVG inline, drawn by matplotlib; no script).

Charts: the fleet's state over time (the server's hourly fleet state), kiosks by last seen,
upload lag (capture to receipt, per batch, over the 28 days batch receipts are kept),
bundle age, missing records per kiosk, and cases opened and readings per week. Then the
kiosks needing attention, with why. Only aggregates and kiosk ids: no record is read."""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kiosk.core.console import printable
from kiosk.core.timing import DAY
from sync.central.fleet import KioskState, ago, fleet, iso, summary_line
from sync.central.storage.interface import Storage

HOUR = 3600.0
WEEK = 7 * DAY
COLOURS = {"ok": "#2e7d32", "attention": "#e65100", "revoked": "#757575"}


@dataclass(frozen=True)
class Chart:
    title: str
    note: str
    svg: str  # "" for a chart with nothing to show yet: ``empty`` says so in words instead
    empty: str = ""


def _figure(width: float = 6.4, height: float = 2.8):
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: searchable, and checked by the tests
            "svg.hashsalt": "kiosk-central report",  # the same ids every time
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return plt, fig, ax


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _counts(ax, axis: str = "y") -> None:
    """Counts are whole numbers: no 0.2 of a kiosk on an axis."""
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


def _bars(
    title: str, note: str, labels: list[str], values: list[int], *, colour: str = "#1565c0", empty: str
) -> Chart:
    if not any(values):  # an honest empty state: words, no axes pretending to show something
        return Chart(title, note, "", empty)
    plt, fig, ax = _figure()
    bars = ax.bar(labels, values, color=colour)
    ax.bar_label(bars, labels=[str(v) for v in values], padding=2)
    ax.set_ylabel("kiosks" if "kiosk" in note else "count")
    ax.set_ylim(0, max(values + [1]) * 1.2)
    _counts(ax)
    return Chart(title, note, _svg(plt, fig))


def _buckets(values: list[float], edges: list[tuple[str, float]]) -> tuple[list[str], list[int]]:
    """Counts per bucket: each edge is (label, upper bound)."""
    counts: Counter[str] = Counter()
    for v in values:
        for label, upper in edges:
            if v <= upper:
                counts[label] += 1
                break
    return [label for label, _ in edges], [counts[label] for label, _ in edges]


def fleet_over_time(history: list[tuple[float, str]], *, now: float, days: int) -> Chart:
    import matplotlib.dates as mdates

    title, note = "The fleet over time", f"kiosks by state, hourly, the last {days} days (UTC)"
    points = []
    for at, counts in history:
        try:
            s = json.loads(counts)["summary"]
        except (ValueError, KeyError, TypeError):
            continue
        points.append((datetime.fromtimestamp(at, UTC), s["ok"], s["attention"], s["revoked"]))
    if not points:
        return Chart(title, note, "", "no history yet: the server keeps the fleet's state once an hour")
    if len(points) == 1:  # one hour kept so far: a step an hour wide, not a line of no width
        points.append((points[0][0] + timedelta(hours=1), *points[0][1:]))
    plt, fig, ax = _figure()
    xs = [p[0] for p in points]
    ax.stackplot(
        xs,
        [p[1] for p in points],
        [p[2] for p in points],
        [p[3] for p in points],
        labels=["ok", "need attention", "revoked"],
        colors=[COLOURS["ok"], COLOURS["attention"], COLOURS["revoked"]],
        step="post",
    )
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=3)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylim(0, max(sum(p[1:]) for p in points) * 1.15 or 1)
    _counts(ax)
    ax.set_ylabel("kiosks")
    return Chart(title, note, _svg(plt, fig))


def report_data(storage: Storage, *, now: float, days: int = 28) -> dict[str, Any]:
    from sync.central.committee.members import state_of

    kiosks = fleet(storage, now=now)
    committee = state_of(storage)
    return {
        "now": now,
        "days": days,
        "kiosks": kiosks,
        "history": storage.fleet_history(since=now - days * DAY),
        "lags": storage.upload_lags(since=now - days * DAY),
        "cases": [c.opened_at for c in committee.cases.values()],
        "reads": [(r["read_at"], r["kind"]) for r in storage.reads()],
    }


def charts(data: dict[str, Any]) -> list[Chart]:
    now: float = data["now"]
    kiosks: list[KioskState] = [k for k in data["kiosks"] if not k.revoked]
    out = [fleet_over_time(data["history"], now=now, days=data["days"])]

    never = sum(1 for k in kiosks if k.seen_at is None)
    labels, values = _buckets(
        [(now - k.seen_at) / HOUR for k in kiosks if k.seen_at is not None],
        [("< 1 h", 1), ("1-6 h", 6), ("6-24 h", 24), ("1-7 days", 168), ("> 7 days", float("inf"))],
    )
    out.append(
        _bars(
            "Kiosks by last seen",
            "active kiosks, by the time since their last request",
            labels + ["never"],
            values + [never],
            empty="no kiosk registered yet",
        )
    )

    labels, values = _buckets(
        [lag / 60 for lag in data["lags"]],
        [
            ("< 5 min", 5),
            ("5-60 min", 60),
            ("1-6 h", 360),
            ("6-24 h", 1440),
            ("1-7 days", 10080),
            ("> 7 days", float("inf")),
        ],
    )
    out.append(
        _bars(
            "Upload lag",
            "active kiosks, by how long their oldest check-in not yet acknowledged has waited "
            "(their signed health: the server keeps no count or time of day of an upload)",
            labels,
            values,
            colour="#6a1b9a",
            empty=f"no kiosk reported its health in the last {data['days']} days",
        )
    )

    ages = [age / HOUR for k in kiosks if (age := k.bundle_age(now)) is not None]
    labels, values = _buckets(
        ages, [("< 1 h", 1), ("1-6 h", 6), ("6-26 h", 26), ("1-7 days", 168), ("> 7 days", float("inf"))]
    )
    out.append(
        _bars(
            "Bundle age",
            "active kiosks, by the age of the bundle (risk list, keys) they hold",
            labels,
            values,
            colour="#00838f",
            empty="no kiosk has taken a bundle yet",
        )
    )

    gaps = sorted(((k.missing, k.kiosk_id) for k in kiosks if k.missing), reverse=True)[:12]
    title, note = "Missing records", "kiosks with check-in sequence numbers that never arrived (most first)"
    if gaps:
        plt, fig, ax = _figure()
        bars = ax.barh([kid for _, kid in gaps][::-1], [n for n, _ in gaps][::-1], color=COLOURS["attention"])
        ax.bar_label(bars, padding=2)
        ax.set_xlabel("missing check-in numbers")
        _counts(ax, "x")
        out.append(Chart(title, note, _svg(plt, fig)))
    else:
        out.append(Chart(title, note, "", "no missing records"))

    weeks = [int((now - t) // WEEK) for t in data["cases"] if now - t < 12 * WEEK]
    reads = [int((now - t) // WEEK) for t, _ in data["reads"] if now - t < 12 * WEEK]
    title, note = "Cases and readings", "per week, the last 12 weeks (the week ending on each date)"
    if not weeks and not reads:
        out.append(Chart(title, note, "", "no case opened and no record read in the last 12 weeks"))
        return out
    plt, fig, ax = _figure()
    xs = list(range(11, -1, -1))
    labels = [datetime.fromtimestamp(now - w * WEEK, UTC).strftime("%m-%d") for w in xs]
    c, r = Counter(weeks), Counter(reads)
    width = 0.4
    ax.bar(
        [i - width / 2 for i in range(len(xs))],
        [c[w] for w in xs],
        width,
        label="cases opened",
        color="#c62828",
    )
    ax.bar(
        [i + width / 2 for i in range(len(xs))],
        [r[w] for w in xs],
        width,
        label="readings and traces",
        color="#283593",
    )
    ax.set_xticks(range(len(xs)), labels)
    ax.legend(frameon=False)
    ax.set_ylabel("count")
    _counts(ax)
    ax.tick_params(axis="x", labelrotation=45)
    out.append(Chart(title, note, _svg(plt, fig)))
    return out


CSS = """
body { font-family: 'DejaVu Sans', sans-serif; margin: 1.5rem auto; max-width: 62rem; color: #111;
  padding: 0 .8rem; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .1rem; }
.note { color: #555; font-size: .85rem; margin: 0 0 .3rem; }
.summary { font-size: 1.05rem; padding: .6rem .8rem; background: #f3f5f7; border-left: 4px solid #1565c0;
  overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(30rem, 100%), 1fr));
  gap: 0 1.5rem; }
section { min-width: 0; }
svg { width: 100%; height: auto; display: block; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top;
  overflow-wrap: anywhere; }
.empty { color: #555; font-style: italic; padding: 1rem; background: #fafafa; border: 1px dashed #ccc; }
@media (max-width: 40rem) { body { margin: .8rem auto; } td, th { padding: .2rem .3rem; } }
"""


def render(data: dict[str, Any]) -> str:
    now = data["now"]
    kiosks: list[KioskState] = data["kiosks"]
    attention = [k for k in kiosks if k.state == "attention"]

    def seen(k: KioskState) -> str:
        return "never" if k.seen_at is None else f"{iso(k.seen_at)} ({ago(now - k.seen_at)} ago)"

    def text(value: str) -> str:  # what a kiosk or a venue wrote: no markup, no control characters
        return html.escape(printable(value))

    rows = "".join(
        f"<tr><td>{text(k.kiosk_id)}</td><td>{text(k.venue)}</td>"
        f"<td>{text(seen(k))}</td><td>{text('; '.join(k.reasons))}</td></tr>"
        for k in attention[:200]
    )
    more = (
        f"<p class='note'>and {len(attention) - 200} more: `kiosk-central status`</p>"
        if len(attention) > 200
        else ""
    )
    blocks = "".join(
        f"<section><h2>{html.escape(c.title)}</h2><p class='note'>{html.escape(c.note)}</p>"
        + (c.svg or f"<p class='empty'>{html.escape(c.empty)}</p>")
        + "</section>"
        for c in charts(data)
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Kiosk fleet report {iso(now)}</title><style>{CSS}</style></head><body>"
        f"<h1>Kiosk fleet report</h1><p class='note'>made {iso(now)} (UTC) by kiosk-central report</p>"
        f"<p class='summary' id='summary'>{html.escape(summary_line(kiosks))}</p>"
        f"<div class='grid'>{blocks}</div>"
        f"<h2>Kiosks needing attention</h2>"
        + (
            "<div class='table'><table id='attention'><tr><th>kiosk</th><th>venue</th><th>last seen</th>"
            f"<th>why</th></tr>{rows}</table></div>{more}"
            if attention
            else "<p id='attention'>None: every active kiosk is fine.</p>"
        )
        + "</body></html>"
    )
