"""One offline HTML page of plotly figures: the shell `basketry explore` and `basketry profile
--html` write their pictures into.

plotly.js comes from the installed plotly package (found by the monitoring report's
:func:`~basketry.monitoring.report_html.plotly_js`, never a CDN) and is inlined once; each figure
is plain data (``{"data": [...], "layout": {...}}``) embedded as JSON. ``body[data-ready]`` turns
``true`` when every figure is drawn (the browser tests wait for it).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basketry.model.errors import ModelError

INSTALL = "pip install 'basketry[monitor]'"


class PageError(ModelError):
    """A page cannot be written: one line naming why (plotly missing, a bad output path)."""


@dataclass(frozen=True)
class Figure:
    """A figure of the page: its element id, its heading, a caption and the plotly figure."""

    id: str
    title: str
    caption: str
    figure: Mapping[str, Any]
    height: int = 460


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def check_page_path(path: Path, flag: str = "--out") -> None:
    """Refuse, before any work, a page path that cannot be written: a directory, or a file in
    a folder that does not exist (a typo is more likely than a wish for new folders)."""
    path = Path(path)
    if path.is_dir():
        raise PageError(f"{flag} {path} is a directory; give a file path such as "
                        f"{path / 'page.html'}")
    parent = path.expanduser().absolute().parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise PageError(f"{flag} {path}: the folder {parent} {what}")


def plotly_source() -> str:
    """The installed plotly.js, ready to inline in a script block."""
    from basketry.monitoring.report_html import plotly_js

    source = plotly_js()
    if source is None:
        raise PageError(f"the page needs plotly (its plotly.js is inlined in it): {INSTALL}")
    # "</script" cannot occur inside a script block; plotly.js writes it only in strings
    return source.decode("utf-8").replace("</script", "<\\/script")


def json_for_script(value: Any) -> str:
    """``value`` as JSON that cannot end the script block it sits in (a label with ``</``)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cards_html(cards: Sequence[tuple[str, str, str]]) -> str:
    """Summary cards: (title, value, note) each."""
    return '<section class="cards">' + "".join(
        f'<div class="card"><div class="card-title">{escape(t)}</div>'
        f'<div class="card-value">{escape(v)}</div><div class="card-note">{escape(n)}</div></div>'
        for t, v, n in cards) + "</section>"


def render_page(title: str, subtitle: str, body: str, figures: Sequence[Figure]) -> str:
    """The whole page: ``body`` (HTML written by the caller) then one section per figure."""
    sections = "\n".join(
        f'<section><h2>{escape(f.title)}</h2><p class="caption">{escape(f.caption)}</p>'
        f'<div class="chart" id="{escape(f.id)}" style="height:{f.height}px"></div></section>'
        for f in figures)
    payload = json_for_script({f.id: f.figure for f in figures})
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request (a 404 in the console)
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n"
        '<body data-ready="false">\n'
        f'<header><h1>{escape(title)}</h1><p class="caption">{escape(subtitle)}</p></header>\n'
        f"<main>\n{body}\n{sections}\n</main>\n"
        f'<script type="application/json" id="figures">{payload}</script>\n'
        f"<script>{plotly_source()}</script>\n<script>{_SCRIPT}</script>\n</body></html>\n")


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` at ``path`` through a temporary sibling: never half a page at ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


#: The pages' figures' font (the page's own stack, so charts and text match).
FIGURE_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
               "size": 12, "color": "#1f2933"}


def figure_layout(**extra: Any) -> dict[str, Any]:
    """A plotly layout of the pages' figures, with ``extra`` over the shared defaults."""
    base: dict[str, Any] = {"font": FIGURE_FONT, "hovermode": "closest", "autosize": True,
                            "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
                            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff"}
    base.update(extra)
    return base


CSS = """
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  sans-serif; color: #1f2933; background: #f5f7fa; }
header { padding: 14px 24px 8px; background: #fff; border-bottom: 1px solid #e4e7eb; }
h1 { font-size: 1.25rem; margin: 0 0 4px; }
h2 { font-size: 1.05rem; margin: 0 0 4px; }
p { margin: 2px 0 6px; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px; }
section { background: #fff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 12px 16px;
  margin: 0 0 16px; min-width: 0; }
section.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
  gap: 12px; background: none; border: 0; padding: 0; }
.card { background: #fff; border: 1px solid #e4e7eb; border-top: 4px solid #2f6fde;
  border-radius: 8px; padding: 10px 14px; min-width: 0; }
.card-title { color: #616e7c; font-size: .8rem; text-transform: uppercase; }
.card-value { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card-note { color: #616e7c; font-size: .8rem; overflow-wrap: anywhere; }
.caption { color: #616e7c; font-size: .85rem; max-width: 80em; }
.notice { background: #fff1d6; border: 1px solid #f0c36d; border-radius: 6px;
  padding: 8px 12px; margin: 0 0 16px; }
.chart { width: 100%; min-height: 300px; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 0 28px; font-size: .85rem; }
.kv div { display: flex; justify-content: space-between; gap: 8px; padding: 3px 0;
  border-bottom: 1px solid #e4e7eb; }
.num { font-variant-numeric: tabular-nums; }
.nochart { color: #616e7c; font-style: italic; }
@media (max-width: 640px) { main, header { padding-left: 10px; padding-right: 10px; } }
"""

# draws each figure; an empty figure says so in words
_SCRIPT = """
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var drawn = Object.keys(figures).map(function (id) {
    var el = document.getElementById(id), figure = figures[id];
    if (!figure.data.length) {
      el.innerHTML = '<p class="nochart"></p>';
      el.firstChild.textContent = figure.empty || "Nothing to draw.";
      el.style.height = "auto";
      el.style.minHeight = "0";
      return Promise.resolve();
    }
    return Plotly.newPlot(el, figure.data, figure.layout,
                          {responsive: true, displaylogo: false});
  });
  Promise.all(drawn).then(function () { document.body.dataset.ready = "true"; },
                          function (err) { document.body.dataset.ready = "error"; throw err; });
})();
"""
