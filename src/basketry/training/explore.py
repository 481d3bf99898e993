"""`basketry explore`: a model's rules as one interactive, offline HTML page (and, on request,
the same figures as PNG or SVG for reports).

The page: the rules' support × confidence scatter coloured by lift, the rule graph (filterable
by lift), the grouped matrix (antecedent groups × consequents), item frequencies and the
training basket-size histogram, every hover in labels. A model of millions of rules is cut to
its top N by lift (:mod:`basketry.training.explore_data`) and the page says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from basketry.training.explore_data import DEFAULT_TOP, RuleSelection, select_rules
from basketry.training.explore_figures import (
    graph_figure,
    items_figure,
    matrix_figure,
    scatter_figure,
    sizes_figure,
)
from basketry.training.explore_graph import (
    GRAPH_RULES,
    GroupedMatrix,
    RuleGraph,
    grouped_matrix,
    rule_graph,
)
from basketry.training.pages import (
    Figure,
    cards_html,
    check_page_path,
    plotly_source,
    render_page,
    write_text_atomic,
)

__all__ = ["DEFAULT_TOP", "Explored", "describe", "explore_model", "render_explore_page"]


@dataclass(frozen=True)
class Explored:
    """What :func:`explore_model` wrote."""

    page: Path
    selection: RuleSelection
    pictures: list[Path] = field(default_factory=list)


def render_explore_page(selection: RuleSelection, *, graph_rules: int = GRAPH_RULES,
                        seed: int = 0) -> str:
    """The page of ``selection`` as HTML text."""
    graph = rule_graph(selection, graph_rules, seed)
    matrix = grouped_matrix(selection, seed=seed)
    return _page(selection, graph, matrix)


def explore_model(model_dir: str | os.PathLike[str], out: Path, *, top: int = DEFAULT_TOP,
                  picture_dir: Path | None = None, picture_format: str = "png",
                  graph_rules: int = GRAPH_RULES, seed: int = 0) -> Explored:
    """Read and verify the model at ``model_dir`` (``ModelError`` if it fails, nothing
    written), write its page to ``out`` and, with ``picture_dir``, each figure as
    ``picture_dir/NAME.picture_format``."""
    from basketry.model import read_artifact

    out = Path(out)
    check_page_path(out)
    if picture_format not in ("png", "svg"):
        raise ValueError(f"picture format {picture_format!r}: png or svg")
    plotly_source()  # plotly missing: said before the model is read
    selection = select_rules(read_artifact(model_dir), top)
    graph = rule_graph(selection, graph_rules, seed)
    matrix = grouped_matrix(selection, seed=seed)
    write_text_atomic(out, _page(selection, graph, matrix))
    pictures: list[Path] = []
    if picture_dir is not None:
        from basketry.training.explore_static import write_static

        pictures = write_static(selection, graph, matrix, picture_dir, picture_format)
    return Explored(page=out, selection=selection, pictures=pictures)


def _page(selection: RuleSelection, graph: RuleGraph, matrix: GroupedMatrix) -> str:
    s = selection
    n = len(s)
    title = f"Rules of model {s.model_version[:12]}"
    subtitle = (f"{s.n_rules:,} rules mined from {s.n_baskets:,} baskets; "
                f"{len(s.items):,} items. Hover any point for the rule in words.")
    notice = ""
    if s.capped:
        notice = (f'<p class="notice">This model has {s.n_rules:,} rules: the page shows the '
                  f"{n:,} with the highest lift (ties: more baskets). "
                  "<code>basketry explore --top N</code> shows more or fewer.</p>")
    lifts = f"{float(s.lift.min()):.2f} to {float(s.lift.max()):.2f}" if n else "none"
    cards = cards_html([
        ("rules shown", f"{n:,}", f"of {s.n_rules:,} in the model"),
        ("lift", lifts, "of the rules shown"),
        ("baskets", f"{s.n_baskets:,}", "training data"),
        ("items", f"{len(s.items):,}", "in the model"),
    ])
    figures = [
        Figure("scatter", "Rules: support × confidence",
               f"One point per rule ({n:,}), coloured by lift; support on a log axis.",
               scatter_figure(s), 520),
        Figure("graph", "Rule graph",
               f"The {len(graph.rules):,} rules of highest lift: items are points, each rule an "
               "arrow from its antecedent items to its consequent (wider: more support; "
               "colour: lift). The slider shows only the rules from a lift up.",
               graph_figure(s, graph), 720),
        Figure("matrix", "Grouped matrix",
               "Antecedent itemsets (LHS) clustered by their lift over the consequents (RHS, "
               "rows); a bubble per group and consequent: its size the rules' support, its "
               "colour their mean lift. Hover for the group's antecedents.",
               matrix_figure(matrix), 640),
        Figure("items", "Item frequency",
               "The most frequent items of the training data (share of baskets holding them).",
               items_figure(s), 640),
        Figure("sizes", "Basket sizes",
               "Training baskets by their number of distinct items (from the model's profile).",
               sizes_figure(s.size_edges, s.size_counts), 380),
    ]
    return render_page(title, subtitle, notice + cards, figures)


def describe(explored: Explored) -> str:
    """One line for the command: what was written."""
    s = explored.selection
    shown = (f"the top {len(s):,} of {s.n_rules:,} rules by lift" if s.capped
             else f"{len(s):,} rules")
    return f"wrote {explored.page} ({shown}, {explored.page.stat().st_size / 1e6:.1f} MB)"

