"""The replay's picture: online HR@10 per month and policy with retrains and promotions
marked, the month's drift score under it (a detector's statistic over its alarm threshold:
above 1 it alarms), alerts listed; one offline HTML file (plotly.js inlined from the installed
package)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from basketry.simulation.replay import PolicyRun

COLOURS = {"never": "#888888", "monthly": "#1f77b4", "alert": "#d62728"}


def write_timeline(runs: Sequence[PolicyRun], path: Path, *, title: str) -> None:
    """The timeline page (charts need plotly: without it, the page keeps the table)."""
    from basketry.monitoring.report_html import plotly_js

    traces: list[dict[str, Any]] = []
    for run in runs:
        months = [m.label for m in run.months]
        colour = COLOURS.get(run.policy, "#2ca02c")
        traces.append({"type": "scatter", "mode": "lines+markers", "name": run.policy,
                       "x": months, "y": [m.hit_rate for m in run.months],
                       "line": {"color": colour}})
        for kind, symbol, keep in (("retrain, promoted", "star", True),
                                   ("retrain, not promoted", "x", False)):
            marks = [m for m in run.months if m.retrained and m.promoted == keep]
            if marks:
                traces.append({"type": "scatter", "mode": "markers",
                               "name": f"{run.policy}: {kind}", "x": [m.label for m in marks],
                               "y": [m.hit_rate for m in marks],
                               "marker": {"symbol": symbol, "size": 14, "color": colour},
                               "text": [m.retrain_note for m in marks],
                               "hovertemplate": "%{x}: %{text}<extra></extra>"})
    for run in runs:
        scored = [m for m in run.months if m.drift_score is not None]
        if scored:
            traces.append({"type": "scatter", "mode": "lines+markers",
                           "name": f"{run.policy}: drift score", "xaxis": "x2", "yaxis": "y2",
                           "x": [m.label for m in scored], "y": [m.drift_score for m in scored],
                           "line": {"color": COLOURS.get(run.policy, "#2ca02c"),
                                    "dash": "dot"},
                           "text": [m.drift_detector for m in scored],
                           "hovertemplate": "%{x}: %{y:.2f} (%{text})<extra></extra>"})
    layout = {"title": {"text": "Online HR@10 per month (the monitoring's replay), and the "
                                "month's drift score"},
              "grid": {"rows": 2, "columns": 1, "pattern": "independent"},
              "xaxis": {"matches": "x2", "showticklabels": False},
              "yaxis": {"title": {"text": "HR@10"}, "rangemode": "tozero",
                        "domain": [0.38, 1.0]},
              "xaxis2": {"title": {"text": "month"}},
              "yaxis2": {"title": {"text": "drift score"}, "rangemode": "tozero",
                         "domain": [0.0, 0.3]},
              # a score above 1 is a detector over its alarm threshold
              "shapes": [{"type": "line", "xref": "x2 domain", "yref": "y2", "x0": 0, "x1": 1,
                          "y0": 1, "y1": 1, "line": {"color": "#d62728", "dash": "dash",
                                                     "width": 1}}],
              "legend": {"orientation": "h"}, "margin": {"t": 50}}
    js = plotly_js()
    chart = ("<p>plotly is not installed: pip install 'basketry[monitor]' for the chart.</p>"
             if js is None else
             '<div id="timeline" style="height:620px"></div>'
             f"<script>{js.decode()}</script><script>Plotly.newPlot('timeline', "
             f"{json.dumps(traces)}, {json.dumps(layout)}, "
             "{displaylogo: false, responsive: true});</script>")
    rows = []
    for run in runs:
        for m in run.months:
            hr = "" if m.hit_rate is None else f"{m.hit_rate:.4f}"
            act = ("promoted" if m.promoted else "retrained, not promoted") if m.retrained else ""
            drift = ("" if m.drift_score is None
                     else f"{m.drift_score:.2f} ({html.escape(m.drift_detector)})")
            rows.append(f"<tr><td>{html.escape(run.policy)}</td><td>{m.label}</td>"
                        f"<td>{m.orders:,}</td><td>{m.queries:,}</td><td>{hr}</td>"
                        f"<td>{drift}</td><td>{html.escape(', '.join(m.alerts))}</td>"
                        f"<td>{act}</td></tr>")
    summary = "".join(
        f"<li><b>{html.escape(r.policy)}</b>: mean online HR@10 "
        f"{'-' if r.mean_hit_rate is None else f'{r.mean_hit_rate:.4f}'}, {r.retrains} "
        f"retrains, {r.promotions} promotions</li>" for r in runs)
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1200px}}
table{{border-collapse:collapse;font-size:.9rem}}
td,th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,td:nth-child(2),th{{text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1><ul>{summary}</ul>{chart}
<h2>Month by month</h2><div style="overflow-x:auto"><table><thead><tr><th>policy</th>
<th>month</th><th>orders</th><th>queries</th><th>HR@10</th><th>drift score</th>
<th>alerts opened</th>
<th>at the month's end</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>
</body></html>"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
