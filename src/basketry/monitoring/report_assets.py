"""The monitoring page's style sheet and script (kept in Python so they ship with the module).

The style: system fonts only (nothing fetched), one column on a phone, two or three from
tablet width, tables that scroll sideways rather than squeeze. The script reads the embedded
JSON document and draws each chart with plotly.js; it sets ``body[data-ready]`` to ``true``
when every chart is drawn (the browser test waits for it).
"""

CSS = """
:root { --fg: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #f5f7fa; --card: #fff;
  --accent: #2f6fde; --bad: #c62828; --good: #2e7d32; --warn: #b26a00; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header.top { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-end;
  justify-content: space-between; padding: 16px 24px 12px; background: var(--card);
  border-bottom: 1px solid var(--line); }
h1 { font-size: 1.35rem; margin: 0 0 2px; }
h2 { font-size: 1.1rem; margin: 0 0 10px; }
h3 { font-size: .95rem; margin: 18px 0 6px; }
.muted, figcaption .muted { color: var(--muted); font-weight: normal; }
p { margin: 4px 0 10px; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px 8px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px; margin: 0 0 16px; }
section.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
  gap: 12px; background: none; border: 0; padding: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; border-top: 4px solid var(--accent); min-width: 0; }
.card.bad { border-top-color: var(--bad); }
.card.good { border-top-color: var(--good); }
.card-title { color: var(--muted); font-size: .8rem; text-transform: uppercase;
  letter-spacing: .04em; }
.card-value { font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card-note { color: var(--muted); font-size: .8rem; overflow-wrap: anywhere; }
figure { margin: 0; min-width: 0; }
figcaption { font-size: .85rem; font-weight: 600; margin: 0 0 4px; }
.grid2, .grid3 { display: grid; gap: 16px; grid-template-columns: 1fr; }
@media (min-width: 900px) { .grid2 { grid-template-columns: 1fr 1fr; }
  .grid3 { grid-template-columns: repeat(3, minmax(0, 1fr)); } }
@media (min-width: 640px) and (max-width: 899px) {
  .grid3 { grid-template-columns: 1fr 1fr; } }
.chart { width: 100%; height: 280px; }
.chart.small { height: 220px; }
.chart .empty, .nochart { color: var(--muted); font-style: italic; padding: 12px 0; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wide { min-width: 14em; }
.nowrap { white-space: nowrap; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .82rem; }
tr.resolved { color: var(--muted); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: .75rem;
  font-weight: 600; background: var(--line); }
.badge.critical, .badge.error { background: #fde2e1; color: var(--bad); }
.badge.warning { background: #fff1d6; color: var(--warn); }
.badge.info { background: #e3ecfb; color: var(--accent); }
.count { font-size: .85rem; color: var(--muted); font-weight: normal; margin-left: 6px; }
.empty { color: var(--muted); font-style: italic; }
.notice { background: #fff1d6; border: 1px solid #f0c36d; border-radius: 6px;
  padding: 8px 12px; margin: 0 0 16px; }
form.period { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center;
  font-size: .85rem; }
form.period label { display: flex; gap: 6px; align-items: center; }
form.period input, form.period select, form.period button { font: inherit; padding: 4px 6px;
  border: 1px solid #cbd2d9; border-radius: 4px; background: #fff; }
form.period button { background: var(--accent); color: #fff; border-color: var(--accent);
  padding: 4px 14px; cursor: pointer; }
footer { max-width: 1400px; margin: 0 auto; padding: 0 24px 24px; font-size: .8rem; }
a { color: var(--accent); }
@media (max-width: 640px) {
  header.top, main, footer { padding-left: 12px; padding-right: 12px; }
  section { padding: 12px 10px; }
  section.cards { grid-template-columns: 1fr 1fr; gap: 8px; }
  .card-value { font-size: 1.3rem; }
  .chart { height: 240px; }
  td.wide { min-width: 11em; }
}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("monitor-data").textContent);
  var drawn = [];
  var COLORS = ["#2f6fde", "#e8710a", "#2e7d32", "#8e24aa", "#00838f", "#c62828", "#6d4c41"];
  var FONT = {family: "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
              size: 12, color: "#1f2933"};

  function narrow() { return window.innerWidth < 640; }

  function layout(extra) {
    var base = {
      margin: {l: 52, r: 12, t: 8, b: narrow() ? 64 : 48}, font: FONT, autosize: true,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", hovermode: "closest",
      legend: {orientation: "h", x: 0, y: -0.2, yanchor: "top"},
      xaxis: {type: "date", gridcolor: "#e4e7eb", automargin: true},
      yaxis: {gridcolor: "#e4e7eb", rangemode: "tozero", automargin: true}
    };
    Object.keys(extra || {}).forEach(function (k) {
      base[k] = (typeof extra[k] === "object" && base[k]) ? Object.assign({}, base[k], extra[k])
                                                          : extra[k];
    });
    return base;
  }

  function empty(el, text) {
    var p = document.createElement("p");
    p.className = "nochart";
    p.textContent = text;
    el.replaceChildren(p);
    el.style.height = "auto";
  }

  function plot(id, traces, extra) {
    var el = document.getElementById(id);
    if (!el) { return; }
    if (!window.Plotly) {
      empty(el, window.BASKETRY_NO_PLOTLY || "plotly.js did not load");
      return;
    }
    if (!traces.length) { empty(el, "Nothing to draw for this period."); return; }
    drawn.push(window.Plotly.newPlot(el, traces, layout(extra),
      {displaylogo: false, responsive: true, displayModeBar: false}));
  }

  function shortVersion(v) { return v ? String(v).slice(0, 12) : "unknown"; }

  // -- traffic and latency
  var traffic = data.traffic || {};
  var tw = traffic.windows || [];
  var x = tw.map(function (w) { return w.start; });
  var endpoints = Object.keys((traffic.total || {}).endpoints || {});
  plot("chart-traffic", endpoints.map(function (e, i) {
    return {type: "bar", name: e, x: x, marker: {color: COLORS[i % COLORS.length]},
            y: tw.map(function (w) { return w.endpoints[e] || 0; })};
  }), {barmode: "stack"});
  plot("chart-latency", ["p50", "p95", "p99"].map(function (p, i) {
    return {type: "scatter", mode: "lines+markers", name: p, x: x,
            line: {color: COLORS[i], width: 2}, marker: {size: 5},
            y: tw.map(function (w) { return w.requests ? w.latency_ms[p] : null; })};
  }), {yaxis: {title: {text: "ms"}}});

  // -- online hit rate, with the offline figure of each version as a reference line
  var perf = data.performance || {};
  var k = data.hr_k || 10;
  var key = "hit_rate@" + k;
  var byVersion = {};
  (perf.windows || []).forEach(function (w) {
    var hr = w.replay && w.replay[key];
    if (!hr || hr.value === null) { return; }
    var v = w.model_version || "";
    (byVersion[v] = byVersion[v] || []).push(w);
  });
  var hrTraces = [];
  Object.keys(byVersion).forEach(function (v, i) {
    var ws = byVersion[v];
    var color = COLORS[i % COLORS.length];
    var values = ws.map(function (w) { return w.replay[key].value; });
    hrTraces.push({type: "scatter", mode: "lines+markers", name: shortVersion(v) + " online",
      x: ws.map(function (w) { return w.start; }), y: values, line: {color: color, width: 2},
      error_y: {type: "data", symmetric: false, color: color, thickness: 1, width: 3,
        array: ws.map(function (w, j) {
          var c = w.replay[key].ci95;
          return c ? c[1] - values[j] : 0;
        }),
        arrayminus: ws.map(function (w, j) {
          var c = w.replay[key].ci95;
          return c ? values[j] - c[0] : 0;
        })}});
    var offline = ((perf.versions || {})[v] || {}).offline;
    if (offline && offline[key] !== null && offline[key] !== undefined) {
      hrTraces.push({type: "scatter", mode: "lines", name: shortVersion(v) + " offline",
        x: [ws[0].start, ws[ws.length - 1].end], y: [offline[key], offline[key]],
        line: {color: color, dash: "dash", width: 1.5}, hoverinfo: "name+y"});
    }
  });
  // a version's first answer: where a promotion (or a rollback) reached the service
  var starts = Object.keys(perf.versions || {}).map(function (v) {
    return {v: v, t: (perf.versions[v] || {}).first_seen};
  }).filter(function (s) {
    return s.t && s.t >= (perf.since || "") && s.t <= (perf.until || "~");
  });
  plot("chart-hit-rate", hrTraces, {yaxis: {title: {text: "HR@" + k}, tickformat: ".0%"},
    shapes: starts.map(function (s) {
      return {type: "line", xref: "x", yref: "paper", x0: s.t, x1: s.t, y0: 0, y1: 1,
              line: {color: "#555", width: 1, dash: "dot"}};
    }),
    annotations: starts.map(function (s) {
      return {xref: "x", yref: "paper", x: s.t, y: 1, yanchor: "bottom", showarrow: false,
              text: shortVersion(s.v) + " serves", font: {size: 10, color: "#555"}};
    })});

  // -- drift: one chart per detector, its value per window and version and its threshold
  var detectors = ((data.drift || {}).detectors) || {};
  Object.keys(detectors).forEach(function (name) {
    var d = detectors[name];
    var traces = [];
    Object.keys(d.series).forEach(function (v, i) {
      var s = d.series[v];
      var color = COLORS[i % COLORS.length];
      traces.push({type: "scatter", mode: "lines+markers", name: shortVersion(v),
        x: s.map(function (p) { return p.start; }), y: s.map(function (p) { return p.value; }),
        line: {color: color, width: 2},
        marker: {size: s.map(function (p) { return p.drifted ? 10 : 6; }),
                 color: s.map(function (p) { return p.drifted ? "#c62828" : color; }),
                 symbol: s.map(function (p) { return p.drifted ? "diamond" : "circle"; })}});
      if (s.some(function (p) { return p.threshold !== null; })) {
        traces.push({type: "scatter", mode: "lines", name: "threshold", showlegend: i === 0,
          x: s.map(function (p) { return p.start; }),
          y: s.map(function (p) { return p.threshold; }),
          line: {color: "#616e7c", dash: "dash", width: 1.5, shape: "hv"}});
      }
    });
    plot("chart-drift-" + name, traces, {showlegend: Object.keys(d.series).length > 1,
      margin: {l: 48, r: 8, t: 4, b: 40}});
  });

  Promise.all(drawn).then(function () {
    // milliseconds from the navigation's start to every chart drawn (read by the benchmark)
    window.BASKETRY_READY_MS = performance.now();
    document.body.setAttribute("data-ready", "true");
  }, function (err) {
    document.body.setAttribute("data-ready", "error");
    throw err;
  });
})();
"""
