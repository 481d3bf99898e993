"""`basketry explore`'s figures as static pictures for reports (PNG or SVG, matplotlib): the same
data as the interactive page, drawn by :func:`write_static`. matplotlib is imported when a
picture is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from basketry.training.explore_data import RuleSelection, size_bin_labels
from basketry.training.explore_figures import top_items
from basketry.training.explore_graph import GroupedMatrix, RuleGraph

#: The pictures written, by name (file stem).
PICTURES = ("scatter", "graph", "matrix", "items", "basket-sizes")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def write_static(selection: RuleSelection, graph: RuleGraph, matrix: GroupedMatrix,
                 folder: Path, fmt: str) -> list[Path]:
    """Each picture of :data:`PICTURES` as ``folder/NAME.fmt`` (``png`` or ``svg``); the paths
    written. A picture with nothing to draw says so in words."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    draw = {"scatter": lambda ax: _scatter(ax, selection),
            "graph": lambda ax: _graph(ax, selection, graph),
            "matrix": lambda ax: _matrix(ax, matrix),
            "items": lambda ax: _items(ax, selection),
            "basket-sizes": lambda ax: _sizes(ax, selection)}
    sizes = {"matrix": (12, 8), "graph": (10, 8), "items": (9, 8)}
    written = []
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "basketry",
                         "font.family": "DejaVu Sans", "font.size": 9}):
        for name in PICTURES:
            fig, ax = plt.subplots(figsize=sizes.get(name, (8, 5.5)))
            try:
                draw[name](ax)
                fig.tight_layout()
                path = folder / f"{name}.{fmt}"
                tmp = folder / f".{name}.{fmt}.tmp"
                try:
                    if fmt == "svg":
                        fig.savefig(tmp, format="svg", metadata={"Date": None})
                    else:
                        fig.savefig(tmp, format="png", dpi=120)
                    tmp.replace(path)
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(path)
            finally:
                plt.close(fig)
    return written


def _nothing(ax: Any, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#616e7c")


def _scatter(ax: Any, s: RuleSelection) -> None:
    if not len(s):
        return _nothing(ax, "The model has no rule.")
    points = ax.scatter(s.support, s.confidence, c=s.lift, cmap="viridis", s=16,
                        edgecolors="white", linewidths=0.3)
    ax.set_xscale("log")
    ax.set_xlabel("support")
    ax.set_ylabel("confidence")
    ax.set_title(f"{len(s):,} rules of model {s.model_version[:12]}"
                 + (f" (top {len(s):,} of {s.n_rules:,} by lift)" if s.capped else ""))
    ax.figure.colorbar(points, ax=ax, label="lift")
    ax.grid(alpha=0.3)


def _graph(ax: Any, s: RuleSelection, g: RuleGraph) -> None:
    if not g.rules:
        return _nothing(ax, "The model has no rule.")
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    lift = s.lift[g.rules]
    norm = Normalize(float(lift.min()), float(lift.max()))
    smax = float(s.support[g.rules].max())
    cmap = colormaps["viridis"]
    for a, b, r in g.edges:
        (x0, y0), (x1, y1) = g.pos[a], g.pos[b]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "-|>", "color": cmap(norm(s.lift[r])), "alpha": 0.7,
            "lw": 0.6 + 2.5 * s.support[r] / smax, "shrinkA": 4, "shrinkB": 5})
    ax.scatter(g.pos[:, 0], g.pos[:, 1], s=22, color="#cbd2d9", edgecolors="#52606d",
               linewidths=0.6, zorder=3)
    for n, item in enumerate(g.nodes):
        ax.text(g.pos[n, 0], g.pos[n, 1] + 0.03, _short(s.names[item], 22), fontsize=6,
                ha="center", va="bottom", color="#1f2933", zorder=4)
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_title(f"The {len(g.rules)} rules of highest lift: items linked antecedent → "
                 "consequent (width: support)")
    from matplotlib.cm import ScalarMappable

    ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="lift", shrink=0.7)


def _matrix(ax: Any, m: GroupedMatrix) -> None:
    if not m.cells:
        return _nothing(ax, "The model has no rule.")
    x, y, _, lift, support = (np.array(v) for v in zip(*m.cells, strict=True))
    points = ax.scatter(x, y, s=20 + 500 * np.sqrt(support / support.max()), c=lift,
                        cmap="viridis", edgecolors="#1f2933", linewidths=0.4)
    ax.set_xticks(range(len(m.groups)), [_short(g, 40) for g in m.groups], rotation=40,
                  ha="right", fontsize=7)
    ax.set_yticks(range(len(m.consequents)), [_short(c, 36) for c in m.consequents], fontsize=7)
    ax.set_ylim(len(m.consequents) - 0.5, -0.5)
    ax.set_xlim(-0.5, len(m.groups) - 0.5)
    ax.set_xlabel("antecedent groups (LHS)")
    ax.set_title("Grouped matrix: size is support, colour is mean lift")
    ax.figure.colorbar(points, ax=ax, label="mean lift")
    ax.grid(alpha=0.2)


def _items(ax: Any, s: RuleSelection) -> None:
    chosen = top_items(s)
    if not chosen:
        return _nothing(ax, "The model has no item.")
    n = max(s.n_baskets, 1)
    ax.barh(range(len(chosen)), [s.item_counts[i] / n for i in chosen], color="#2f6fde")
    ax.set_yticks(range(len(chosen)), [_short(s.names[i], 36) for i in chosen], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("support (share of training baskets)")
    ax.set_title(f"The {len(chosen)} most frequent items")
    ax.grid(axis="x", alpha=0.3)


def _sizes(ax: Any, s: RuleSelection) -> None:
    if not s.size_edges or not s.size_counts:
        return _nothing(ax, "This model carries no training profile: no basket sizes.")
    labels = size_bin_labels(s.size_edges)
    ax.bar(range(len(labels)), s.size_counts, color="#2f6fde")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_xlabel("items in the basket")
    ax.set_ylabel("baskets")
    total = sum(s.size_counts)
    ax.set_title(f"Basket sizes of the {total:,} training baskets")
    ax.grid(axis="y", alpha=0.3)
