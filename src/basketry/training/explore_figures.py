"""`basketry explore`'s interactive figures as plain plotly data (no plotly import: the page
inlines plotly.js and draws them): the rules' support × confidence scatter, the rule graph with
its lift slider, the grouped matrix, item frequencies and basket sizes. Hover texts use labels."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from basketry.training.explore_data import RuleSelection, size_bin_labels
from basketry.training.explore_graph import GroupedMatrix, RuleGraph
from basketry.training.pages import figure_layout

#: viridis at five stops: the lift colour scale of every figure (the static ones use viridis)
VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
COLORSCALE = [[i / (len(VIRIDIS) - 1), c] for i, c in enumerate(VIRIDIS)]
#: Lift classes of the graph's slider, and edge widths by support.
LIFT_CLASSES = 4
WIDTH_CLASSES = 4
#: Item bars shown.
TOP_ITEMS = 30

def escape(text: object) -> str:
    """``text`` safe in plotly's text (which reads <b>, <br> and entities)."""
    return html.escape(str(text), quote=False)


def _r(x: float, digits: int = 6) -> float:
    return float(f"{float(x):.{digits}g}")


def rule_hover(selection: RuleSelection, i: int) -> str:
    """Rule ``i`` for a hover box: the rule in labels, its measures, its codes."""
    return (f"<b>{escape(selection.rule_text(i))}</b><br>"
            f"support {selection.support[i]:.4f} · confidence {selection.confidence[i]:.3f} · "
            f"lift {selection.lift[i]:.2f} · {int(selection.count[i]):,} baskets<br>"
            f"<span style='color:#616e7c'>codes {escape(selection.rule_codes(i))}</span>")


def scatter_figure(selection: RuleSelection) -> dict[str, Any]:
    """Support × confidence, one point per rule, coloured by lift (arulesViz's scatter)."""
    n = len(selection)
    data = [{
        "type": "scatter", "mode": "markers", "name": "rules",
        "x": [_r(v) for v in selection.support], "y": [_r(v) for v in selection.confidence],
        "text": [rule_hover(selection, i) for i in range(n)],
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {"color": [_r(v, 4) for v in selection.lift], "colorscale": COLORSCALE,
                   "showscale": True, "colorbar": {"title": {"text": "lift"}},
                   "size": 8, "opacity": 0.85, "line": {"width": 0.5, "color": "#ffffff"}},
    }] if n else []
    return {"data": data, "empty": "The model has no rule.", "layout": figure_layout(
        xaxis={"title": {"text": "support"}, "type": "log", "gridcolor": "#e4e7eb"},
        yaxis={"title": {"text": "confidence"}, "gridcolor": "#e4e7eb"})}


def lift_thresholds(lift: np.ndarray, classes: int = LIFT_CLASSES) -> list[float]:
    """The lower bounds of the lift classes (quantiles of ``lift``, distinct, ascending)."""
    if lift.size == 0:
        return []
    qs = np.quantile(lift, np.linspace(0, 1, classes + 1)[:-1])
    return sorted({_r(q, 4) for q in qs} | {_r(float(lift.min()), 4)})


def _class_of(value: float, bounds: list[float]) -> int:
    return max(i for i, b in enumerate(bounds) if _r(value, 4) >= b)


def _colour(fraction: float) -> str:
    """A colour of the viridis stops at ``fraction`` in [0, 1], interpolated."""
    fraction = min(max(fraction, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(fraction), len(VIRIDIS) - 2)
    t = fraction - i
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in VIRIDIS[i:i + 2])
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def graph_figure(selection: RuleSelection, graph: RuleGraph) -> dict[str, Any]:
    """Items as points, each rule's antecedent → consequent edges as lines (wider: more
    support; colour: lift class), an arrow at each edge's middle with the rule on hover, and
    a slider showing the rules from a lift up (points of the items they link)."""
    if not graph.rules:
        return {"data": [], "layout": figure_layout(), "empty": "The model has no rule."}
    lift = selection.lift[graph.rules]
    support = selection.support[graph.rules]
    bounds = lift_thresholds(lift)
    lo, hi = float(lift.min()), float(lift.max())
    smax = float(support.max())
    pos = graph.pos

    def width_class(s: float) -> int:
        return min(WIDTH_CLASSES - 1, int(WIDTH_CLASSES * s / smax)) if smax > 0 else 0

    traces: list[dict[str, Any]] = []
    owner: list[int] = []  # each trace's lift class: shown while the slider is at or below it
    lines: dict[tuple[int, int], tuple[list[float | None], list[float | None]]] = {}
    arrows: dict[int, dict[str, list[Any]]] = {}
    for a, b, r in graph.edges:
        cls = _class_of(selection.lift[r], bounds)
        xs, ys = lines.setdefault((cls, width_class(selection.support[r])), ([], []))
        (x0, y0), (x1, y1) = pos[a], pos[b]
        xs += [_r(x0, 4), _r(x1, 4), None]
        ys += [_r(y0, 4), _r(y1, 4), None]
        arrow = arrows.setdefault(cls, {"x": [], "y": [], "angle": [], "text": [], "lift": []})
        arrow["x"].append(_r(x0 + 0.6 * (x1 - x0), 4))
        arrow["y"].append(_r(y0 + 0.6 * (y1 - y0), 4))
        # plotly turns a marker clockwise from pointing up
        arrow["angle"].append(round(math.degrees(math.atan2(x1 - x0, y1 - y0)), 1))
        arrow["text"].append(rule_hover(selection, r))
        arrow["lift"].append(_r(selection.lift[r], 4))
    for (cls, width), (xs, ys) in sorted(lines.items()):
        colour = _colour((bounds[cls] - lo) / (hi - lo) if hi > lo else 1.0)
        traces.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys,
                       "name": f"rules, lift ≥ {bounds[cls]:g}", "showlegend": False,
                       "hoverinfo": "skip", "opacity": 0.6,
                       "line": {"width": round(1 + 1.5 * width, 1), "color": colour}})
        owner.append(cls)
    for cls, arrow in sorted(arrows.items()):
        traces.append({"type": "scatter", "mode": "markers", "x": arrow["x"], "y": arrow["y"],
                       "name": f"rule arrows, lift ≥ {bounds[cls]:g}", "showlegend": False,
                       "text": arrow["text"], "hovertemplate": "%{text}<extra></extra>",
                       "marker": {"symbol": "triangle-up", "angle": arrow["angle"], "size": 9,
                                  "color": arrow["lift"], "colorscale": COLORSCALE,
                                  "cmin": _r(lo, 4), "cmax": _r(hi, 4),
                                  "line": {"width": 0.5, "color": "#1f2933"}}})
        owner.append(cls)
    # the colour bar on a trace of no point, which the slider never hides
    traces.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None],
                   "name": "lift scale", "showlegend": False, "hoverinfo": "skip",
                   "marker": {"color": [_r(lo, 4)], "colorscale": COLORSCALE, "cmin": _r(lo, 4),
                              "cmax": _r(hi, 4), "showscale": True,
                              "colorbar": {"title": {"text": "lift"}}}})
    owner.append(-1)
    # an item's points belong to the strongest class of its rules: shown while that class is
    best: dict[int, int] = {}
    degree: dict[int, float] = {}
    for a, b, r in graph.edges:
        cls = _class_of(selection.lift[r], bounds)
        for node in (a, b):
            best[node] = max(best.get(node, 0), cls)
            degree[node] = degree.get(node, 0.0) + float(selection.support[r])
    dmax = max(degree.values())
    for cls in sorted(set(best.values())):
        members = [n for n in range(len(graph.nodes)) if best[n] == cls]
        traces.append({
            "type": "scatter", "mode": "markers+text", "name": "items", "showlegend": False,
            "x": [_r(pos[n][0], 4) for n in members], "y": [_r(pos[n][1], 4) for n in members],
            "text": [escape(_short(selection.names[graph.nodes[n]])) for n in members],
            "customdata": [escape(f"{selection.names[graph.nodes[n]]} "
                                  f"(code {selection.items[graph.nodes[n]]})") for n in members],
            "hovertemplate": "<b>%{customdata}</b><extra></extra>",
            "textposition": "top center", "textfont": {"size": 9, "color": "#52606d"},
            "marker": {"size": [round(7 + 9 * degree[n] / dmax, 1) for n in members],
                       "color": "#cbd2d9", "line": {"width": 1, "color": "#52606d"}}})
        owner.append(cls)
    steps = [{"label": f"{b:g}", "method": "restyle",
              "args": [{"visible": [o < 0 or o >= i for o in owner]}]}
             for i, b in enumerate(bounds)]
    return {"data": traces, "layout": figure_layout(
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
        sliders=[{"active": 0, "steps": steps, "x": 0.05, "len": 0.6, "y": 0,
                  "yanchor": "top", "currentvalue": {"prefix": "rules with lift ≥ "}}])}


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def matrix_figure(matrix: GroupedMatrix) -> dict[str, Any]:
    """Antecedent groups × consequents: a bubble per cell, sized by support, coloured by lift."""
    if not matrix.cells:
        return {"data": [], "layout": figure_layout(), "empty": "The model has no rule."}
    smax = max(c[4] for c in matrix.cells)
    hover = []
    for g, row, n, lift, support in matrix.cells:
        members = matrix.group_members[g]
        shown = "<br>".join(escape(_short(m, 70)) for m in members[:8])
        more = f"<br>… and {len(members) - 8} more" if len(members) > 8 else ""
        hover.append(f"<b>{escape(matrix.consequents[row])}</b> from {n} rule(s) of group "
                     f"{g + 1}<br>mean lift {lift:.2f} · support {support:.4f}<br>"
                     f"antecedents:<br>{shown}{more}")
    data = [{
        "type": "scatter", "mode": "markers", "name": "groups",
        "x": [c[0] for c in matrix.cells], "y": [c[1] for c in matrix.cells], "text": hover,
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {"size": [round(8 + 28 * math.sqrt(c[4] / smax), 1) for c in matrix.cells],
                   "color": [_r(c[3], 4) for c in matrix.cells], "colorscale": COLORSCALE,
                   "showscale": True, "colorbar": {"title": {"text": "mean lift"}},
                   "line": {"width": 0.5, "color": "#1f2933"}}}]
    return {"data": data, "layout": figure_layout(
        margin={"l": 20, "r": 20, "t": 10, "b": 20},
        xaxis={"tickmode": "array", "tickvals": list(range(len(matrix.groups))),
               "ticktext": [escape(g) for g in matrix.groups], "tickangle": -40,
               "gridcolor": "#eef0f3", "zeroline": False, "automargin": True,
               "title": {"text": "antecedent groups (LHS)"}},
        yaxis={"tickmode": "array", "tickvals": list(range(len(matrix.consequents))),
               "ticktext": [escape(_short(c, 32)) for c in matrix.consequents],
               "autorange": "reversed", "gridcolor": "#eef0f3", "zeroline": False,
               "automargin": True})}


def top_items(selection: RuleSelection, top: int = TOP_ITEMS) -> list[int]:
    """The ``top`` most frequent items (baskets holding them; ties by code)."""
    order = np.lexsort((np.array(selection.items, dtype=object).astype(str),
                        -selection.item_counts))
    return [int(i) for i in order[:top] if selection.item_counts[i] > 0]


def items_figure(selection: RuleSelection, top: int = TOP_ITEMS) -> dict[str, Any]:
    """Horizontal bars: the most frequent items' support, labelled."""
    chosen = top_items(selection, top)
    n = max(selection.n_baskets, 1)
    data = [{
        "type": "bar", "orientation": "h", "name": "items",
        "y": [escape(_short(selection.names[i], 36)) for i in chosen],
        "x": [_r(selection.item_counts[i] / n) for i in chosen],
        "customdata": [[escape(selection.names[i]), escape(selection.items[i]),
                        int(selection.item_counts[i])] for i in chosen],
        "hovertemplate": "<b>%{customdata[0]}</b><br>code %{customdata[1]}<br>"
                         "%{customdata[2]:,} baskets (support %{x:.4f})<extra></extra>",
        "marker": {"color": "#2f6fde"}}] if chosen else []
    return {"data": data, "empty": "The model has no item.", "layout": figure_layout(
        margin={"l": 20, "r": 20, "t": 10, "b": 50},
        xaxis={"title": {"text": "support (share of training baskets)"},
               "gridcolor": "#e4e7eb"},
        yaxis={"autorange": "reversed", "automargin": True})}


def sizes_figure(edges: list[int] | None, counts: list[int] | None) -> dict[str, Any]:
    """The basket-size histogram (bars per size bin)."""
    if not edges or not counts:
        return {"data": [], "layout": figure_layout(),
                "empty": "This model carries no training profile (an older basketry wrote "
                         "it): no basket sizes to show."}
    data = [{"type": "bar", "name": "baskets", "x": size_bin_labels(edges), "y": counts,
             "hovertemplate": "%{y:,} baskets of %{x} items<extra></extra>",
             "marker": {"color": "#2f6fde"}}]
    return {"data": data, "layout": figure_layout(
        xaxis={"title": {"text": "items in the basket"}, "type": "category",
               "automargin": True},
        yaxis={"title": {"text": "baskets"}, "gridcolor": "#e4e7eb"})}
