"""`basketry profile DATA --html FILE`: the data set's profile as one offline HTML page: its
sizes, the most frequent items (labels), the long tail of item frequencies on log axes, basket
sizes, baskets per day (or per week, over a long span) when the data has timestamps, and what
the reader dropped. The figures are those of :func:`basketry.data.profile`'s document, plus the
item counts and timestamps it summarises."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.training.explore_data import size_bin_labels
from basketry.training.pages import (
    Figure,
    cards_html,
    check_page_path,
    escape,
    figure_layout,
    render_page,
    write_text_atomic,
)

if TYPE_CHECKING:
    from basketry.data import Baskets

#: Item bars shown, and points of the long-tail curve at most.
TOP_ITEMS = 30
TAIL_POINTS = 400
#: Over this many days, time coverage is counted per week.
DAILY_UP_TO = 180

def _text(value: object) -> str:
    import html

    return html.escape(str(value), quote=False)


def long_tail(counts: np.ndarray, n_baskets: int, points: int = TAIL_POINTS
              ) -> tuple[list[int], list[float]]:
    """Item rank (1 = most frequent) and support of the items in at least one basket, at
    ``points`` log-spaced ranks at most (the last rank always kept)."""
    ordered = np.sort(counts[counts > 0])[::-1]
    if ordered.size == 0:
        return [], []
    ranks = np.unique(np.round(np.geomspace(1, ordered.size, num=min(points, ordered.size)))
                      ).astype(np.int64)
    return ranks.tolist(), [float(f"{ordered[r - 1] / max(n_baskets, 1):.6g}") for r in ranks]


def head_share(counts: np.ndarray, fraction: float = 0.2) -> float:
    """The share of (basket, item) pairs held by the ``fraction`` most frequent items."""
    ordered = np.sort(counts[counts > 0])[::-1]
    if ordered.size == 0:
        return 0.0
    head = max(round(ordered.size * fraction), 1)
    return float(ordered[:head].sum() / ordered.sum())


def time_coverage(timestamps: np.ndarray | None) -> tuple[str, list[str], list[int]]:
    """Baskets per day (per week from Monday over more than :data:`DAILY_UP_TO` days): the
    unit, the periods' first days (ISO dates, empty periods included) and their counts."""
    if timestamps is None:
        return "day", [], []
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    days = ts[~np.isnat(ts)].astype("datetime64[D]")
    if days.size == 0:
        return "day", [], []
    first, last = days.min(), days.max()
    unit = "day"
    if (last - first).astype(int) > DAILY_UP_TO:
        unit = "week"
        # 1970-01-01 was a Thursday: shift so that weeks start on Monday
        days = days - ((days.astype(np.int64) + 3) % 7).astype("timedelta64[D]")
        first, last = days.min(), days.max()
    step = 7 if unit == "week" else 1
    periods = np.arange(first, last + np.timedelta64(1, "D"), np.timedelta64(step, "D"))
    counts = np.zeros(periods.size, dtype=np.int64)
    np.add.at(counts, ((days - first).astype(np.int64) // step), 1)
    return unit, [str(p) for p in periods], counts.tolist()


def profile_figures(baskets: Baskets, profile: Mapping[str, Any]) -> list[Figure]:
    """The page's figures: items, long tail, basket sizes, time coverage."""
    n = int(profile.get("n_baskets") or 0)
    top = list(profile.get("top_items") or [])[:TOP_ITEMS]
    names = [(" ".join(str(t["label"]).split()) if t.get("label") else str(t["item"]))
             for t in top]
    items = {"data": [{
        "type": "bar", "orientation": "h", "name": "items",
        "y": [_text(x if len(x) <= 36 else x[:35] + "…") for x in names],
        "x": [float(f"{t['support']:.6g}") for t in top],
        "customdata": [[_text(x), _text(t["item"]), int(t["count"])]
                       for x, t in zip(names, top, strict=True)],
        "hovertemplate": "<b>%{customdata[0]}</b><br>code %{customdata[1]}<br>"
                         "%{customdata[2]:,} baskets (support %{x:.4f})<extra></extra>",
        "marker": {"color": "#2f6fde"}}] if top else [],
        "empty": "No item.",
        "layout": figure_layout(margin={"l": 20, "r": 20, "t": 10, "b": 50},
                          xaxis={"title": {"text": "support (share of baskets)"},
                                 "gridcolor": "#e4e7eb"},
                          yaxis={"autorange": "reversed", "automargin": True})}
    counts = baskets.item_counts()
    ranks, supports = long_tail(counts, n)
    tail = {"data": [{
        "type": "scatter", "mode": "lines+markers", "name": "items", "x": ranks, "y": supports,
        "marker": {"size": 4}, "line": {"color": "#2f6fde"},
        "hovertemplate": "item ranked %{x:,}: support %{y:.3g}<extra></extra>"}] if ranks else [],
        "empty": "No item.",
        "layout": figure_layout(
            xaxis={"type": "log", "title": {"text": "item rank (1 = most frequent)"},
                   "gridcolor": "#e4e7eb"},
            yaxis={"type": "log", "title": {"text": "support"}, "exponentformat": "power",
                   "gridcolor": "#e4e7eb"})}
    hist = (profile.get("basket_size") or {}).get("histogram") or {}
    edges, bins = hist.get("edges") or [], hist.get("counts") or []
    sizes = {"data": [{"type": "bar", "name": "baskets", "x": size_bin_labels(list(edges)),
                       "y": list(bins), "marker": {"color": "#2f6fde"},
                       "hovertemplate": "%{y:,} baskets of %{x} items<extra></extra>"}]
             if bins else [], "empty": "No basket.",
             "layout": figure_layout(xaxis={"title": {"text": "items in the basket"},
                                      "type": "category", "automargin": True},
                               yaxis={"title": {"text": "baskets"}, "gridcolor": "#e4e7eb"})}
    unit, periods, per = time_coverage(baskets.timestamps)
    timeline = {"data": [{"type": "bar", "name": "baskets", "x": periods, "y": per,
                          "marker": {"color": "#2f6fde"},
                          "hovertemplate": f"%{{y:,}} baskets, {unit} of %{{x}}<extra></extra>"}]
                if periods else [],
                "empty": "The data has no timestamps: no time coverage to show.",
                "layout": figure_layout(xaxis={"type": "date", "title": {"text": unit}},
                                  yaxis={"title": {"text": f"baskets per {unit}"},
                                         "gridcolor": "#e4e7eb"}, bargap=0.05)}
    empty_periods = sum(1 for c in per if c == 0)
    head = head_share(counts)
    return [
        Figure("items", "Most frequent items",
               f"The {len(top)} items found in the most baskets (labels where the data has "
               "them; hover for the code).", items, 640),
        Figure("tail", "Item frequency: the long tail",
               f"Every item by rank, on log axes: the top 20% of items hold {head:.0%} of the "
               "(basket, item) pairs.", tail, 420),
        Figure("sizes", "Basket sizes", "Baskets by their number of distinct items.", sizes, 380),
        Figure("time", f"Baskets per {unit}" if periods else "Time coverage",
               (f"{len(periods):,} {unit}s, {empty_periods:,} without a basket."
                if periods else ""), timeline, 360),
    ]


def _when(iso: str | None) -> str:
    return str(iso).replace("T", " ")


def render_profile_page(baskets: Baskets, profile: Mapping[str, Any]) -> str:
    """The profile page of ``baskets`` (``profile``: :func:`basketry.data.profile` of them)."""
    n = int(profile.get("n_baskets") or 0)
    sizes = profile.get("basket_size") or {}
    span = profile.get("time_span")
    cards = [
        ("baskets", f"{n:,}", f"{profile.get('n_entries', 0):,} (basket, item) pairs"),
        ("items", f"{profile.get('n_items_used', 0):,}",
         f"in at least one basket, of {profile.get('n_items', 0):,}"),
        ("basket size", f"{sizes.get('mean', 0):.1f}" if sizes else "–",
         f"mean; median {sizes.get('median', 0):g}, p90 {sizes.get('p90', 0):g}, "
         f"max {sizes.get('max', 0):,}" if sizes else "no basket"),
        ("time span", f"{span['days']:.0f} days" if span else "–",
         f"{_when(span['first'])} to {_when(span['last'])}" if span else "no timestamps"),
        ("customers", f"{profile['n_customers']:,}" if profile.get("n_customers") else "–",
         "distinct" if profile.get("n_customers") else "unknown"),
    ]
    report = profile.get("report") or {}
    # the reader's counts (the sizes already in the cards left out)
    rows = "".join(f"<div><span>{escape(str(k).replace('_', ' '))}</span>"
                   f'<span class="num">{v:,}</span></div>'
                   for k, v in report.items()
                   if isinstance(v, int) and not isinstance(v, bool) and not k.startswith("n_"))
    read = (f'<section><h2>What the reader kept and dropped</h2><div class="kv">{rows}</div>'
            "</section>") if rows else ""
    title = f"Profile of {Path(str(profile.get('source') or 'the data')).name}"
    subtitle = (f"{profile.get('source')} · fingerprint "
                f"{str(profile.get('fingerprint', ''))[:19]}…")
    return render_page(title, subtitle, cards_html(cards) + read,
                       profile_figures(baskets, profile))


def write_profile_page(baskets: Baskets, profile: Mapping[str, Any], out: Path) -> Path:
    """The profile page at ``out`` (written whole or not at all)."""
    out = Path(out)
    check_page_path(out, "--html")
    write_text_atomic(out, render_profile_page(baskets, profile))
    return out
