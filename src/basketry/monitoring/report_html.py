"""The monitoring page and the static report: one HTML renderer for both.

``render_report(data)`` turns ``dashboard.dashboard_data``'s document into a page: the figures
and tables in HTML (readable without JavaScript, at 1280 px and on a phone), the document
embedded as JSON, and a small script drawing the charts with plotly.js. plotly.js comes from
the installed ``plotly`` package, never a CDN: inlined in the static report (a file that works
offline), loaded from the service (``/monitor/assets/plotly.min.js``) by the served page.
Without plotly the page says what to install and shows the tables.
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from basketry.monitoring.report_assets import CSS, SCRIPT

#: Where the served page loads plotly.js from.
PLOTLY_URL = "/monitor/assets/plotly.min.js"
INSTALL = "pip install 'basketry[monitor]'"
NO_PLOTLY = f"Charts need plotly.js, from the plotly package: {INSTALL}"
EMPTY = {
    "traffic": "No recommendation recorded in this period (is capture off? "
               "BASKETRY_MONITOR_CAPTURE=false stops it).",
    "performance": "No completed order in this period to measure the hit rate on: send them "
                   "with POST /v1/orders or basketry monitor ingest.",
    "drift": "No drift computed yet: run basketry monitor drift.",
    "alerts": "No alert.",
}


def plotly_js_path() -> Path | None:
    """plotly.min.js of the installed plotly package (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


@cache
def plotly_js() -> bytes | None:
    path = plotly_js_path()
    return path.read_bytes() if path is not None else None


def render_report(data: Mapping[str, Any], *, inline_assets: bool = True,
                  live: bool = False, plotly_url: str = PLOTLY_URL) -> str:
    """The page for ``data`` (``dashboard_data``'s document). ``inline_assets``: plotly.js in
    the file (the static report); otherwise loaded from ``plotly_url``. ``live``: the served
    page (a form to change the period, a link to the JSON)."""
    data = _finite(data)  # a NaN or an infinity is not JSON: shown as no value
    script = _plotly_tag(inline_assets, plotly_url)
    body = "\n".join([
        _header(data, live),
        '<main>',
        _summary(data.get("summary") or {}, data.get("hr_k", 10)),
        _alerts(data.get("alerts") or {}),
        _traffic(data.get("traffic") or {}),
        _performance(data.get("performance") or {}, data.get("hr_k", 10)),
        _drift(data.get("drift") or {}),
        '</main>',
        _footer(data, live),
    ])
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # a "</script>" inside a string (an item's name) must not end the block
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            # no favicon request (a 404 in the console)
            '<link rel="icon" href="data:,">\n'
            f'<title>basketry monitoring · {_e(data.get("since", ""))[:10]} to '
            f'{_e(data.get("until", ""))[:10]}</title>\n<style>{CSS}</style></head>\n'
            f'<body data-ready="false">\n{body}\n'
            f'<script type="application/json" id="monitor-data">{payload}</script>\n'
            f'{script}\n<script>{SCRIPT}</script>\n</body></html>\n')


def _plotly_tag(inline: bool, url: str) -> str:
    source = plotly_js()
    if source is None:
        return f'<script>window.BASKETRY_NO_PLOTLY = {json.dumps(NO_PLOTLY)};</script>'
    if inline:
        # "</script" cannot occur inside a script block; plotly.js writes it only in strings
        text = source.decode("utf-8").replace("</script", "<\\/script")
        return f"<script>{text}</script>"
    return f'<script src="{_e(url)}"></script>'


# -- sections ---------------------------------------------------------------------------------

def _header(data: Mapping[str, Any], live: bool) -> str:
    period = (f'{_e(data.get("window", ""))} windows, {_date(data.get("since"))} to '
              f'{_date(data.get("until"))} (UTC)')
    form = ""
    if live:
        current = str(data.get("window", "day"))
        choices = dict.fromkeys(("hour", "day", "week", current))  # "500 orders" kept
        options = "".join(f'<option value="{_e(w)}"{" selected" if w == current else ""}>'
                          f'{_e(w)}</option>' for w in choices)
        form = ('<form class="period" method="get" action="/monitor">'
                f'<label>Window <select name="window">{options}</select></label>'
                f'<label>From <input type="date" name="since" '
                f'value="{_e(str(data.get("since", ""))[:10])}"></label>'
                f'<label>To <input type="date" name="until" '
                f'value="{_e(str(data.get("until", ""))[:10])}"></label>'
                '<button type="submit">Show</button></form>')
    return (f'<header class="top"><div><h1>basketry monitoring</h1>'
            f'<p class="muted">{period} · generated {_time(data.get("generated"))}</p></div>'
            f'{form}</header>')


def _summary(s: Mapping[str, Any], k: int) -> str:
    hr = s.get("hit_rate") or {}
    drifted = s.get("drifted") or []
    checked = s.get("detectors_checked") or 0
    cards = [
        _card("requests", "Recommendations", _int(s.get("requests")), s.get("requests"),
              "answered in the period"),
        _card("latency_p95_ms", "Latency p95", _ms(s.get("latency_p95_ms")),
              s.get("latency_p95_ms"), "over the period"),
        _card("hit_rate", f"Online HR@{k}", _pct(hr.get("value")), hr.get("value"),
              f'version {_short(hr.get("model_version"))}, {_date(hr.get("start"))}'
              if hr else "no replayed order yet"),
        _card("open_alerts", "Open alerts", _int(s.get("open_alerts")), s.get("open_alerts"),
              "need a look" if s.get("open_alerts") else "all clear",
              "bad" if s.get("open_alerts") else "good"),
        _card("drifted", "Drifting", f"{len(drifted)} of {checked}" if checked else "–",
              len(drifted) if checked else None,
              (", ".join(drifted) if drifted else "no detector alarms") if checked
              else "no drift computed yet", "bad" if drifted else ("good" if checked else "")),
    ]
    return f'<section class="cards" aria-label="Summary">{"".join(cards)}</section>'


def _card(key: str, title: str, shown: str, value: Any, note: str, tone: str = "") -> str:
    raw = "" if value is None else _e(json.dumps(value))
    return (f'<div class="card {tone}" data-figure="{key}" data-value="{raw}">'
            f'<div class="card-title">{_e(title)}</div><div class="card-value">{_e(shown)}'
            f'</div><div class="card-note">{_e(note)}</div></div>')


def _alerts(a: Mapping[str, Any]) -> str:
    rows = [*a.get("open", []), *a.get("resolved", [])]
    if not rows:
        return _section("alerts", "Alerts", _empty(EMPTY["alerts"]))
    body = "".join(
        f'<tr class="{"open" if x["resolved"] is None else "resolved"}" data-alert="{x["id"]}">'
        f'<td><span class="badge {_e(x["severity"])}">{_e(x["severity"])}</span></td>'
        f'<td class="wide">{_e(x["message"])}</td>'
        f'<td class="nowrap">{_time(x["time"])}</td>'
        f'<td>{"open" if x["resolved"] is None else "resolved " + _time(x["resolved"])}</td>'
        f'<td>{_e(x["kind"])}</td><td class="mono">{_short(x.get("model_version"))}</td></tr>'
        for x in rows)
    more = a.get("open_count", 0) - len(a.get("open", []))
    note = f'<p class="muted">{more:,} more open alerts not shown.</p>' if more > 0 else ""
    table = _table(["Severity", "Message", "Raised", "Status", "Kind", "Version"], body,
                   "alerts-table")
    return _section("alerts", f'Alerts <span class="count">{a.get("open_count", 0)} open'
                    '</span>', table + note, raw_title=True)


def _traffic(t: Mapping[str, Any]) -> str:
    total = t.get("total") or {}
    if not total.get("requests"):
        return _section("traffic", "Traffic and latency", _empty(EMPTY["traffic"]))
    lat = total.get("latency_ms") or {}
    endpoints = ", ".join(f"{_e(e)} {_int(n)}" for e, n in (total.get("endpoints") or {}).items())
    text = (f'<p class="muted">{_int(total["requests"])} recommendations ({endpoints}); '
            f'latency p50 {_ms(lat.get("p50"))}, p95 {_ms(lat.get("p95"))}, '
            f'p99 {_ms(lat.get("p99"))}, per {_e(t.get("window", ""))}.</p>')
    charts = ('<div class="grid2"><figure><figcaption>Recommendations per window, by endpoint'
              '</figcaption><div class="chart" id="chart-traffic"></div></figure>'
              '<figure><figcaption>Latency percentiles (ms)</figcaption>'
              '<div class="chart" id="chart-latency"></div></figure></div>')
    return _section("traffic", "Traffic and latency", text + charts)


def _performance(p: Mapping[str, Any], k: int) -> str:
    windows = p.get("windows") or []
    replayed = [w for w in windows if w.get("replay")]
    if not replayed:
        return _section("performance", f"Online hit rate (HR@{k})",
                        _empty(EMPTY["performance"]))
    latest: dict[str, Mapping[str, Any]] = {}
    for w in replayed:
        latest[w.get("model_version") or ""] = w
    rows = []
    for version, info in (p.get("versions") or {}).items():
        offline = (info.get("offline") or {}).get(f"hit_rate@{k}")
        w = latest.get(version)
        online = ((w or {}).get("replay") or {}).get(f"hit_rate@{k}") or {}
        ci = online.get("ci95")
        rows.append(
            f'<tr data-version="{_e(version)}"><td class="mono">{_short(version)}</td>'
            f'<td class="num" data-value="{_raw(online.get("value"))}">'
            f'{_pct(online.get("value"))}</td>'
            f'<td class="num nowrap">{_ci(ci)}</td>'
            f'<td class="num" data-value="{_raw(offline)}">{_pct(offline)}</td>'
            f'<td class="nowrap">{_date(w["start"]) if w else "–"}</td>'
            f'<td class="nowrap">{_date(info.get("first_seen"))} to '
            f'{_date(info.get("last_seen"))}</td>'
            f'<td class="num">{_int(info.get("recommendations"))}</td></tr>')
    table = _table(["Version", f"Online HR@{k}", "95% interval", f"Offline HR@{k}",
                    "Latest window", "Serving", "Answers"], "".join(rows), "versions-table",
                   numeric=(1, 2, 3, 6))
    chart = (f'<figure><figcaption>Online HR@{k} per window and version (95% intervals); '
             f'dashed: the offline HR@{k} recorded with the version; dotted: when a version '
             'started answering (a promotion or a rollback)</figcaption>'
             '<div class="chart" id="chart-hit-rate"></div></figure>')
    return _section("performance", f"Online hit rate (HR@{k})", chart + table)


def _drift(d: Mapping[str, Any]) -> str:
    detectors = d.get("detectors") or {}
    if not detectors:
        return _section("drift", "Drift", _empty(EMPTY["drift"]))
    parts = []
    for kind, title in (("data", "Data drift"), ("concept", "Concept drift")):
        names = [n for n, x in detectors.items() if x.get("kind") == kind]
        if not names:
            continue
        figures = "".join(
            f'<figure><figcaption>{_e(n)} <span class="muted">({_e(detectors[n]["statistic"])}'
            f'{"; dashed: threshold" if _has_threshold(detectors[n]) else ""})</span>'
            '</figcaption>'
            f'<div class="chart small" id="chart-drift-{_e(n)}" data-detector="{_e(n)}"></div>'
            '</figure>' for n in names)
        parts.append(f'<h3>{title}</h3><div class="grid3">{figures}</div>')
    parts.append(_top_items(d.get("top_items") or []))
    parts.append(_broken_rules(d.get("broken_rules") or []))
    return _section("drift", "Drift", "".join(parts))


def _has_threshold(detector: Mapping[str, Any]) -> bool:
    return any(p.get("threshold") is not None for series in detector["series"].values()
               for p in series)


def _top_items(groups: Sequence[Mapping[str, Any]]) -> str:
    if not groups:
        return '<h3>Top drifting items</h3>' + _empty("No detector listed drifting items.")
    out = ['<h3>Top drifting items</h3>']
    for g in groups:
        labelled = any(r.get("label") for r in g.get("rows", []))
        body = "".join(
            f'<tr data-item="{_e(r.get("item"))}"><td class="mono">{_e(r.get("item"))}</td>'
            + (f'<td class="wide">{_e(r.get("label") or "")}</td>' if labelled else "")
            + f'<td class="num" data-value="{_raw(r.get("reference_share"))}">'
            f'{_pct(r.get("reference_share"), 2)}</td>'
            f'<td class="num" data-value="{_raw(r.get("window_share"))}">'
            f'{_pct(r.get("window_share"), 2)}</td>'
            f'<td class="num" data-value="{_raw(r.get("contribution"))}">'
            f'{_num(r.get("contribution"))}</td></tr>' for r in g.get("rows", []))
        headers = ["Item", *(["Label"] if labelled else []), "Training share",
                   "Window share", "Contribution"]
        first = len(headers) - 3
        out.append(f'<p class="muted">{_caption(g)}</p>' + _table(
            headers, body, "items-table", g["detector"], numeric=(first, first + 1, first + 2)))
    return "".join(out)


def _broken_rules(groups: Sequence[Mapping[str, Any]]) -> str:
    if not groups:
        return '<h3>Broken rules</h3>' + _empty("No rule found broken.")
    out = ['<h3>Broken rules</h3>']
    for g in groups:
        body = "".join(
            f'<tr><td>{_items(r.get("antecedent"), r.get("antecedent_labels"))}</td>'
            f'<td>{_items(r.get("consequent"), r.get("consequent_labels"))}</td>'
            f'<td class="num" data-value="{_raw(r.get("reference_confidence"))}">'
            f'{_pct(r.get("reference_confidence"))}</td>'
            f'<td class="num" data-value="{_raw(r.get("window_confidence"))}">'
            f'{_pct(r.get("window_confidence"))}</td>'
            f'<td class="num" data-value="{_raw(r.get("q_value"))}">{_num(r.get("q_value"))}'
            '</td></tr>' for r in g.get("rows", []))
        out.append(f'<p class="muted">{_caption(g)}</p>' + _table(
            ["If bought", "Then", "Training confidence", "Window confidence", "q-value"], body,
            "rules-table", g["detector"], numeric=(2, 3, 4)))
    return "".join(out)


def _caption(g: Mapping[str, Any]) -> str:
    shown = len(g.get("rows", []))
    more = f", the first {shown} of {g['total']:,}" if g.get("total", 0) > shown else ""
    state = "drifted" if g.get("drifted") else "within its threshold"
    return (f'{_e(g["detector"])}, version {_short(g.get("model_version"))}, window '
            f'{_time(g.get("start"))} to {_time(g.get("end"))} ({state}{more})')


def _footer(data: Mapping[str, Any], live: bool) -> str:
    link = ""
    if live:
        query = urlencode({k: data[k] for k in ("window", "since", "until") if data.get(k)})
        link = f'The same figures as JSON: <a href="/monitor/data?{_e(query)}">/monitor/data</a>. '
        link += 'A static copy: <code>basketry monitor report --out report.html</code>. '
    else:
        link = ('Written by <code>basketry monitor report</code>; the live page is '
                '<code>/monitor</code> on the service. ')
    return f'<footer class="muted">{link}Times are UTC.</footer>'


# -- small pieces ----------------------------------------------------------------------------

def _section(key: str, title: str, inner: str, raw_title: bool = False) -> str:
    heading = title if raw_title else _e(title)
    return f'<section id="{key}"><h2>{heading}</h2>{inner}</section>'


def _table(headers: Sequence[str], body: str, cls: str, key: str = "",
           numeric: Sequence[int] = ()) -> str:
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>'
                   for i, h in enumerate(headers))
    data = f' data-detector="{_e(key)}"' if key else ""
    return (f'<div class="scroll"><table class="{cls}"{data}><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _raw(value: Any) -> str:
    return "" if value is None else _e(json.dumps(value))


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else _e(value)


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def _ms(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3g} ms"


def _ci(ci: Any) -> str:
    return "–" if not ci else f"{_pct(ci[0])} to {_pct(ci[1])}"


def _short(version: Any) -> str:
    return "–" if not version else _e(str(version)[:12])


def _date(iso: Any) -> str:
    return "–" if not iso else _e(str(iso)[:10])


def _time(iso: Any) -> str:
    if not iso:
        return "–"
    text = str(iso).replace("T", " ").rstrip("Z")
    return _e(text[:10] if text.endswith("00:00:00") else text[:16])


def _items(value: Any, labels: Any = None) -> str:
    """A rule's side: each item's code, and its label when it has one."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    names = list(labels) if isinstance(labels, list | tuple) else []
    names += [None] * (len(items) - len(names))
    return " + ".join(
        f'<span class="mono">{_e(x)}</span>'
        + (f' <span class="muted">{_e(n)}</span>' if n and n != x else "")
        for x, n in zip(items, names, strict=False))

