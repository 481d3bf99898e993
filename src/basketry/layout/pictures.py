"""Pictures of a shelf plan: the aisle map (SVG or PNG, matplotlib) and the interactive item
affinity graph (one offline HTML file, plotly.js inlined from the installed plotly package).

Both read only the plan (:class:`basketry.model.layout.LayoutPlan`): its aisles in walking
order, its aisle links and the item edges it kept. matplotlib and networkx are imported when a
picture is drawn, never when the module is imported.
"""

from __future__ import annotations

import colorsys
import json
import math
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basketry.model.layout import LayoutError

if TYPE_CHECKING:
    from basketry.model.layout import LayoutPlan, Slot

#: Characters of a product's label kept on the map (longer ones end with an ellipsis).
LABEL_CHARS = 28
#: Aisle links drawn on the map: the strongest, one per aisle and at most this many.
MAX_LINKS = 60
#: Below this many products the graph shows every product, linked or not.
ALL_NODES_UNDER = 1_000
#: Edge widths in the graph: edges are drawn as this many traces of growing width.
WIDTH_CLASSES = 5


class PictureError(LayoutError):
    """A picture cannot be drawn: one line naming why (a missing package, a bad suffix)."""


# -- what both pictures read of a plan -----------------------------------------------------------


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the cut shown by an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def item_strength(plan: LayoutPlan) -> dict[str, float]:
    """Each item's total weight in the plan's edges (its importance on the map)."""
    strength: dict[str, float] = defaultdict(float)
    for edge in plan.edges:
        strength[edge.a] += edge.weight
        strength[edge.b] += edge.weight
    return strength


def main_products(plan: LayoutPlan, top: int) -> dict[int, list[Slot]]:
    """The ``top`` most important products of each aisle: by their weight in the plan's edges,
    then by shelf position (so an aisle without edges shows its first products)."""
    strength = item_strength(plan)
    return {a.aisle: sorted(a.items, key=lambda s: (-strength.get(s.item, 0.0), s.position))[:top]
            for a in plan.aisles}


def aisle_colours(n: int, *, light: bool = False) -> list[str]:
    """``n`` distinguishable colours (golden-angle hues, alternating lightness), as #rrggbb."""
    colours = []
    for i in range(n):
        hue = (i * 0.381966) % 1.0
        lightness = (0.88 if i % 2 else 0.82) if light else (0.42 if i % 2 else 0.55)
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.65)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def summary_line(plan: LayoutPlan) -> str:
    """What the plan is, in one line: products, aisles, model, weighting."""
    parts = [f"{plan.n_items:,} products in {len(plan.aisles)} aisles"]
    if plan.model_version:
        parts.append(f"model {plan.model_version[:12]}")
    parts.append(f"from the {plan.source}" if plan.source in ("model", "data") else plan.source)
    parts.append(f"weighting: {plan.weighting}")
    return " · ".join(parts)


def evaluation_line(evaluation: Mapping[str, Any] | None) -> str | None:
    """The evaluation's headline, when the plan has one: the same-aisle share of co-purchased
    pairs against a random layout's."""
    if not evaluation:
        return None
    ours = _share(evaluation, ("layout", "plan", "proposed"), ("same_aisle", "same_aisle_share"))
    random = _share(evaluation, ("random",), ("same_aisle", "same_aisle_share"))
    if ours is None:
        return None
    line = f"same-aisle share of co-purchased pairs {ours:.1%}"
    if random is not None:
        ratio = f", {ours / random:.1f}×" if random > 0 else ""
        line += f" (random layout {random:.1%}{ratio})"
    near = _share(evaluation, ("layout", "plan", "proposed"),
                  ("same_or_adjacent", "same_or_adjacent_aisle", "adjacent"))
    if near is not None:
        line += f"; same or next aisle {near:.1%}"
    current = _share(evaluation, ("current",), ("same_aisle",))
    if current is not None:
        line += f"; current layout {current:.1%}"
    baskets = evaluation.get("test_baskets")
    if isinstance(baskets, int) and not isinstance(baskets, bool):
        line += f" (on {baskets:,} held-out baskets)"
    return line


def _share(evaluation: Mapping[str, Any], owners: Iterable[str], keys: Iterable[str]
           ) -> float | None:
    """A share from the evaluation: ``evaluation[owner][key]`` (a number, or a mapping with a
    ``mean``/``value``) or ``evaluation[f"{owner}_{key}"]``."""
    keys = tuple(keys)
    for owner in owners:
        block = evaluation.get(owner)
        candidates = [block.get(k) for k in keys] if isinstance(block, Mapping) else []
        candidates += [evaluation.get(f"{owner}_{k}") for k in keys]
        for value in candidates:
            if isinstance(value, Mapping):
                value = value.get("mean", value.get("value"))
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and math.isfinite(value):
                return float(value)
    return None


def _number(x: float) -> str:
    """A weight for people: 977,000 rather than 9.77e+05, 0.0312 rather than 0.031234."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


# -- the aisle map ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Where each aisle stands on the floor plan: rows of aisles walked as a snake (left to
    right, then right to left), so aisle i always stands next to aisles i-1 and i+1. Below
    each row runs a corridor where the links between aisles are drawn, clear of the text."""

    columns: int
    rows: int
    width: float  # of a cell, in inches
    box: float  # height of an aisle's box
    corridor: float  # height of the corridor below a row

    @classmethod
    def of(cls, n_aisles: int, top: int) -> _Grid:
        columns = n_aisles if n_aisles <= 8 else math.ceil(math.sqrt(n_aisles * 1.6))
        rows = math.ceil(n_aisles / columns)
        return cls(columns, rows, 2.5, 0.55 + 0.2 * max(top, 1), 0.6)

    @property
    def height(self) -> float:
        return self.box + self.corridor

    def cell(self, index: int) -> tuple[int, int]:
        row, col = divmod(index, self.columns)
        return row, (self.columns - 1 - col if row % 2 else col)

    def centre(self, index: int) -> tuple[float, float]:
        """The middle of an aisle's box."""
        row, col = self.cell(index)
        return (col + 0.5) * self.width, (self.rows - row) * self.height - self.box / 2

    def bottom(self, index: int) -> tuple[float, float]:
        x, y = self.centre(index)
        return x, y - self.box / 2 + 0.06

    def top(self, index: int) -> tuple[float, float]:
        x, y = self.centre(index)
        return x, y + self.box / 2 - 0.06


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PictureError("the aisle map needs matplotlib: pip install 'basketry[train]'"
                           ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_map_path(path: Path) -> str:
    """The map's format (``svg`` or ``png``) from ``path``'s suffix, or ``PictureError``: a
    command can check its ``--map`` before any work."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise PictureError(f"{path}: the aisle map is drawn as .svg or .png, not "
                           f"{Path(path).suffix or 'a file without a suffix'}")
    return fmt


def draw_aisle_map(plan: LayoutPlan, path: Path, *, top: int = 5) -> None:
    """The floor plan of ``plan`` as SVG or PNG (by ``path``'s suffix): the aisles in walking
    order, each with its number and its ``top`` main products (labels when the plan has them),
    fixed products marked, the strongest aisle links as arcs whose width is their weight, a
    legend and a title with the plan's summary and evaluation."""
    path = Path(path)
    fmt = check_map_path(path)
    if not plan.aisles:
        raise PictureError(f"{path}: the plan has no aisle to draw")
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    top = max(int(top), 0)
    grid = _Grid.of(len(plan.aisles), top)
    shown = main_products(plan, top)
    fills = aisle_colours(len(plan.aisles), light=True)
    index = {a.aisle: i for i, a in enumerate(plan.aisles)}
    width_in = grid.columns * grid.width
    height_in = grid.rows * grid.height
    fig_w = max(width_in, 7.0) + 0.4
    # the title wrapped to the figure's width (about 10.5 characters an inch at 11 points)
    evaluation = evaluation_line(plan.evaluation)
    title = "\n".join(textwrap.fill(line, width=int(fig_w * 10.5)) for line in
                      [f"Shelf plan: {summary_line(plan)}", *([evaluation] if evaluation else [])])
    title_h = 0.3 + 0.2 * (title.count("\n") + 1)
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "basketry",
                         "font.family": "DejaVu Sans"}):
        # inches: the title above the aisles, 0.65 below them for the legend
        fig_h = height_in + title_h + 0.65
        fig = plt.figure(figsize=(fig_w, fig_h))
        ax = fig.add_axes(((fig_w - width_in) / 2 / fig_w, 0.65 / fig_h, width_in / fig_w,
                           height_in / fig_h))
        ax.set_xlim(0, width_in)
        ax.set_ylim(0, height_in)
        ax.set_axis_off()
        # the walking path, behind the aisles: visible in the gaps between them
        centres = [grid.centre(i) for i in range(len(plan.aisles))]
        if len(centres) > 1:
            xs, ys = zip(*centres, strict=True)
            ax.plot(xs, ys, color="#9aa5b1", lw=1.2, ls=(0, (4, 3)), zorder=0)
        for i, aisle in enumerate(plan.aisles):
            x, y = centres[i]
            ax.add_patch(FancyBboxPatch(
                (x - grid.width / 2 + 0.08, y - grid.box / 2 + 0.06),
                grid.width - 0.16, grid.box - 0.12, boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=fills[i], edgecolor="#52606d", lw=0.8, zorder=1))
            fixed = sum(s.fixed for s in aisle.items)
            head = f"Aisle {aisle.aisle}  ·  {len(aisle.items)}/{aisle.capacity}"
            if fixed:
                head += f"  ·  {fixed} fixed"
            left = x - grid.width / 2 + 0.16
            top_y = y + grid.box / 2 - 0.14
            ax.text(left, top_y, head, fontsize=9, fontweight="bold", va="top", ha="left",
                    zorder=4, color="#1f2933")
            for row, slot in enumerate(shown[aisle.aisle]):
                mark = "◆ " if slot.fixed else ""
                ax.text(left, top_y - 0.3 - 0.2 * row,
                        f"{mark}{slot.position}. {shorten(slot.name)}", fontsize=7.5,
                        va="top", ha="left", zorder=4, color="#1f2933",
                        fontweight="bold" if slot.fixed else "normal")
        links = sorted((k for k in plan.links if k.a in index and k.b in index and k.a != k.b),
                       key=lambda k: -k.weight)[:min(MAX_LINKS, len(plan.aisles))]
        strongest = max((k.weight for k in links), default=0.0)
        weakest = min((k.weight for k in links), default=0.0)

        def lw(weight: float) -> float:
            # widths span the links drawn, so that similar weights still differ
            if strongest <= weakest:
                return 3.0
            return 0.8 + 5.2 * (weight - weakest) / (strongest - weakest)

        for link in links:
            i, j = sorted((index[link.a], index[link.b]))
            (ri, _), (rj, _) = grid.cell(i), grid.cell(j)
            if ri == rj:  # an arc down into the row's corridor, deeper the farther apart
                (x0, y0), (x1, y1) = sorted((grid.bottom(i), grid.bottom(j)))
                depth = min(grid.corridor * 0.85, 0.2 + 0.06 * abs(j - i))
                start, end, rad, z = (x0, y0), (x1, y1), 2 * depth / (x1 - x0), 2
            elif rj == ri + 1:  # across the corridor between the two rows
                start, end, rad, z = grid.bottom(i), grid.top(j), 0.0, 2
            else:  # across rows: beneath the aisles, seen in the corridors
                start, end, rad, z = grid.centre(i), grid.centre(j), 0.1, 0.5
            ax.add_patch(FancyArrowPatch(
                start, end, arrowstyle="-", connectionstyle=f"arc3,rad={rad:.3f}",
                lw=lw(link.weight), color="#d9480f", alpha=0.55, zorder=z,
                shrinkA=0, shrinkB=0, capstyle="round"))
        handles: list[Any] = [Patch(facecolor=fills[0], edgecolor="#52606d",
                                    label="aisle: number, products/capacity, main products")]
        shown_weights = sorted({strongest, (strongest + weakest) / 2, weakest}, reverse=True)
        for weight in shown_weights if links else []:
            handles.append(Line2D([], [], color="#d9480f", alpha=0.5, lw=lw(weight),
                                  label=f"link between aisles, weight {_number(weight)}"))
        handles.append(Line2D([], [], color="#9aa5b1", lw=1.2, ls=(0, (4, 3)),
                              label="walking order (aisle 1 first)"))
        handles.append(Line2D([], [], color="#1f2933", marker="D", ls="", markersize=5,
                              label="◆ fixed product (does not move)"))
        fig.legend(handles=handles, loc="lower center", ncol=3 if fig_w >= 12 else 2, fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / fig_h, va="top")
        # a temporary sibling replaced into place: never half a picture at ``path``
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "svg":
                fig.savefig(tmp, format="svg", metadata={"Date": None})
            else:
                fig.savefig(tmp, format="png", dpi=110 if len(plan.aisles) > 30 else 130)
            tmp.replace(path)
        finally:
            plt.close(fig)
            tmp.unlink(missing_ok=True)


# -- the interactive affinity graph -------------------------------------------------------------


def _plotly_source() -> str:
    from basketry.monitoring.report_html import plotly_js

    source = plotly_js()
    if source is None:
        raise PictureError("the affinity graph needs plotly (its plotly.js is inlined in the "
                           "page): pip install 'basketry[monitor]'")
    # "</script" cannot occur inside a script block; plotly.js writes it only in strings
    return source.decode("utf-8").replace("</script", "<\\/script")


def _positions(nodes: list[str], edges: list[tuple[str, str, float]], aisle_of: dict[str, int],
               seed: int) -> dict[str, tuple[float, float]]:
    """Force layouts (networkx ``spring_layout``, seeded) in two steps: the aisles as points
    pulled together by the affinity between them, then each aisle's products around its point
    by the edges within it. Two small layouts rather than one of the whole graph: networkx's
    layout of more than 500 nodes loops in Python (8 s for 1,300 products, 0.3 s this way)."""
    try:
        import networkx as nx
    except ImportError:
        raise PictureError("the affinity graph's layout needs networkx: "
                           "pip install 'basketry[layout]'") from None
    members: dict[int, list[str]] = defaultdict(list)
    for item in nodes:
        members[aisle_of[item]].append(item)
    strongest = max((w for _, _, w in edges), default=1.0) or 1.0
    between = nx.Graph()
    between.add_nodes_from(sorted(members))
    within = {aisle: nx.Graph() for aisle in members}
    for aisle, items in members.items():
        within[aisle].add_nodes_from(items)
    for a, b, w in edges:
        x, y = aisle_of[a], aisle_of[b]
        if x == y:
            within[x].add_edge(a, b, weight=w / strongest)
        else:
            old = between.get_edge_data(x, y, {"weight": 0.0})["weight"]
            between.add_edge(x, y, weight=old + w / strongest)
    centres = nx.spring_layout(between, seed=seed, weight="weight")
    biggest = max(len(v) for v in members.values())
    # a cluster's radius grows with its products, within the spacing of the aisles' layout
    spacing = 0.45 / math.sqrt(len(members))
    pos: dict[str, tuple[float, float]] = {}
    for aisle, items in members.items():
        local = nx.spring_layout(within[aisle], seed=seed, weight="weight") \
            if len(items) > 1 else {items[0]: (0.0, 0.0)}
        radius = spacing * math.sqrt(len(items) / biggest)
        cx, cy = centres[aisle]
        for item in items:
            pos[item] = (float(cx + radius * local[item][0]), float(cy + radius * local[item][1]))
    return pos


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def write_affinity_graph(plan: LayoutPlan, path: Path, *, max_edges: int = 2000,
                         seed: int = 0) -> None:
    """The item affinity graph of ``plan`` as one HTML page that works offline: products as
    points coloured by aisle (placed by seeded force layouts: the aisles, then each aisle's
    products around it), the ``max_edges`` strongest
    edges as lines whose width is their weight, hover text with label, code, aisle and
    position, and a menu to show one aisle or all of them."""
    path = Path(path)
    source = _plotly_source()
    slots = {s.item: s for a in plan.aisles for s in a.items}
    kept = sorted((e for e in plan.edges if e.a in slots and e.b in slots and e.a != e.b),
                  key=lambda e: -e.weight)[:max(int(max_edges), 0)]
    linked = {i for e in kept for i in (e.a, e.b)}
    # a big store shows the products the kept edges link (the others would be noise)
    nodes = (list(slots) if len(slots) <= ALL_NODES_UNDER
             else [i for i in slots if i in linked])
    aisle_of = {i: slots[i].aisle for i in nodes}
    edges = [(e.a, e.b, e.weight) for e in kept]
    pos = _positions(nodes, edges, aisle_of, seed) if nodes else {}
    figure = _figure(plan, nodes, edges, slots, pos)
    title = f"Product affinity graph · {summary_line(plan)}"
    evaluation = evaluation_line(plan.evaluation)
    caption = (f"{len(nodes):,} products shown of {plan.n_items:,}"
               f"{' (those the strongest edges link)' if len(nodes) < plan.n_items else ''}, "
               f"the {len(edges):,} strongest affinity edges of the plan (a wider line: a "
               "stronger affinity). Colours are aisles; aisles with more affinity between them "
               "stand closer, each with its products around it (force layouts). Hover a point "
               "for the product, its aisle and shelf position; the menu shows one aisle.")
    payload = json.dumps(figure, separators=(",", ":"), allow_nan=False)
    # a "</script>" inside a label must not end the block
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{_html_escape(title)}</title>\n<style>{_CSS}</style></head>\n"
        '<body data-ready="false">\n'
        f"<header><h1>{_html_escape(title)}</h1>"
        + (f'<p class="evaluation">{_html_escape(evaluation)}</p>' if evaluation else "")
        + f'<p class="caption">{_html_escape(caption)}</p></header>\n'
        '<div id="graph"></div>\n'
        f'<script type="application/json" id="graph-data">{payload}</script>\n'
        f"<script>{source}</script>\n<script>{_SCRIPT}</script>\n</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _figure(plan: LayoutPlan, nodes: list[str], edges: list[tuple[str, str, float]],
            slots: dict[str, Slot], pos: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The plotly figure as plain data: edge traces (within each aisle, then between aisles,
    by width class), one point trace per aisle, and the menu's visibility per choice."""
    aisles = [a.aisle for a in plan.aisles]
    colours = dict(zip(aisles, aisle_colours(len(aisles)), strict=True))
    strongest = max((w for _, _, w in edges), default=0.0)

    def width_class(w: float) -> int:
        if strongest <= 0:
            return 0
        return min(WIDTH_CLASSES - 1, int(WIDTH_CLASSES * w / strongest))

    groups: dict[tuple[int | None, int], list[tuple[str, str]]] = defaultdict(list)
    for a, b, w in edges:
        owner = slots[a].aisle if slots[a].aisle == slots[b].aisle else None
        groups[(owner, width_class(w))].append((a, b))
    traces: list[dict[str, Any]] = []
    owners: list[int | None] = []  # the aisle each trace belongs to (None: between aisles)
    for (owner, cls), pairs in sorted(groups.items(), key=lambda g: (g[0][0] is None,
                                                                      g[0][0] or 0, g[0][1])):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for a, b in pairs:
            xs += [round(pos[a][0], 4), round(pos[b][0], 4), None]
            ys += [round(pos[a][1], 4), round(pos[b][1], 4), None]
        traces.append({
            "type": "scatter", "mode": "lines", "x": xs, "y": ys, "hoverinfo": "skip",
            "showlegend": False, "name": f"edges {owner or 'between aisles'} {cls}",
            "line": {"width": round(0.5 + 1.2 * cls, 2),
                     "color": colours[owner] if owner is not None else "#9aa5b1"},
            "opacity": 0.35 + 0.1 * cls})
        owners.append(owner)
    by_aisle: dict[int, list[str]] = defaultdict(list)
    for item in nodes:
        by_aisle[slots[item].aisle].append(item)
    degree: dict[str, float] = defaultdict(float)
    for a, b, w in edges:
        degree[a] += w
        degree[b] += w
    top_degree = max(degree.values(), default=0.0)
    for aisle in aisles:
        members = by_aisle.get(aisle, [])
        if not members:
            continue
        text = []
        for item in members:
            s = slots[item]
            text.append(f"<b>{_html_escape(s.name)}</b><br>code {_html_escape(item)}"
                        f"<br>aisle {s.aisle}, position {s.position}"
                        + (" (fixed)" if s.fixed else "")
                        + (f"<br>category {_html_escape(s.category)}" if s.category else ""))
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"aisle {aisle}",
            "x": [round(pos[i][0], 4) for i in members],
            "y": [round(pos[i][1], 4) for i in members],
            "customdata": members, "text": text,
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"color": colours[aisle],
                       "size": [round(6 + 10 * (degree[i] / top_degree if top_degree else 0), 1)
                                for i in members],
                       "symbol": ["diamond" if slots[i].fixed else "circle" for i in members],
                       "line": {"width": 0.5, "color": "#ffffff"}}})
        owners.append(aisle)
    buttons = [{"label": "All aisles", "method": "restyle",
                "args": [{"visible": [True] * len(traces)}]}]
    for aisle in aisles:
        if aisle in by_aisle:
            buttons.append({"label": f"Aisle {aisle}", "method": "restyle",
                            "args": [{"visible": [o == aisle for o in owners]}]})
    layout = {
        "hovermode": "closest", "showlegend": len(by_aisle) <= 40,
        "legend": {"title": {"text": "aisles"}, "itemsizing": "constant"},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
        "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
        "updatemenus": [{"type": "dropdown", "buttons": buttons, "x": 0, "y": 1.0,
                         "xanchor": "left", "yanchor": "bottom", "showactive": True}],
    }
    return {"data": traces, "layout": layout}


_CSS = """
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  sans-serif; color: #1f2933; background: #f5f7fa; }
header { padding: 14px 20px 6px; background: #fff; border-bottom: 1px solid #e4e7eb; }
h1 { font-size: 1.2rem; margin: 0 0 4px; }
p { margin: 2px 0 6px; }
.caption { color: #616e7c; font-size: .85rem; max-width: 70em; }
#graph { width: 100%; height: calc(100vh - 140px); min-height: 420px; background: #fff; }
"""

# draws the figure; body[data-ready] tells a test (and a person) when it is done
_SCRIPT = """
(function () {
  var figure = JSON.parse(document.getElementById("graph-data").textContent);
  Plotly.newPlot("graph", figure.data, figure.layout,
                 {responsive: true, displaylogo: false}).then(function () {
    document.body.dataset.ready = "true";
  });
})();
"""
