"""The shapes behind two of `basketry explore`'s pictures, computed once for the interactive page
and the static ones: the rule graph (items as nodes placed by a seeded force layout, one edge per
antecedent item → consequent item of each rule) and the grouped matrix (antecedent itemsets
clustered by their lift profile over the consequents, arulesViz's "grouped matrix")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from basketry.training.explore_data import RuleSelection

#: Rules drawn in the graph: the strongest of the page's (more is a hairball).
GRAPH_RULES = 100
#: Columns (antecedent groups) and rows (consequents) of the grouped matrix.
MATRIX_GROUPS = 20
MATRIX_ROWS = 20


@dataclass(frozen=True)
class RuleGraph:
    """Items as nodes (``pos`` in [-1, 1]²) and an edge per antecedent item → consequent item of
    each rule drawn."""

    nodes: list[int]
    pos: np.ndarray
    rules: list[int]
    #: (node index of the antecedent item, node index of the consequent item, rule index)
    edges: list[tuple[int, int, int]]


def rule_graph(selection: RuleSelection, max_rules: int = GRAPH_RULES, seed: int = 0
               ) -> RuleGraph:
    """The graph of the ``max_rules`` strongest rules of ``selection`` (it is sorted by lift)."""
    rules = list(range(min(max_rules, len(selection))))
    index: dict[int, int] = {}
    edges = []
    for r in rules:
        for a in selection.antecedents[r]:
            for c in selection.consequents[r]:
                ia = index.setdefault(a, len(index))
                ic = index.setdefault(c, len(index))
                edges.append((ia, ic, r))
    pairs = np.array([(a, b) for a, b, _ in edges], dtype=np.int64).reshape(-1, 2)
    pos = spring_layout(len(index), pairs, seed=seed)
    return RuleGraph(nodes=list(index), pos=pos, rules=rules, edges=edges)


def spring_layout(n: int, pairs: np.ndarray, *, seed: int = 0, iterations: int = 120
                  ) -> np.ndarray:
    """Fruchterman–Reingold in numpy (a few hundred nodes at most), seeded, with a weak pull to
    the centre so that unlinked parts stay in view; positions scaled into [-1, 1]²."""
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.zeros((1, 2))
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-1.0, 1.0, size=(n, 2))
    k = np.sqrt(4.0 / n)  # the ideal distance in a 2 × 2 square
    step = 0.2
    for i in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=-1), 1e-3)
        np.fill_diagonal(dist, np.inf)
        disp = (delta * (k * k / dist ** 2)[..., None]).sum(axis=1)  # repulsion
        if pairs.size:
            d = pos[pairs[:, 0]] - pos[pairs[:, 1]]
            length = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            pull = d * (length / k)[:, None]  # attraction: length² / k along the edge
            np.add.at(disp, pairs[:, 0], -pull)
            np.add.at(disp, pairs[:, 1], pull)
        disp -= 0.1 * pos * np.linalg.norm(pos, axis=1)[:, None] / k  # gravity
        length = np.maximum(np.linalg.norm(disp, axis=1), 1e-9)
        pos += disp / length[:, None] * np.minimum(length, step)[:, None]
        step = 0.2 * (1 - (i + 1) / iterations) + 0.005  # cooling
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    return pos / scale if scale > 0 else pos


@dataclass(frozen=True)
class GroupedMatrix:
    """Antecedent groups (columns) × consequents (rows); a cell per (group, consequent) with
    rules: how many, their mean lift and their summed support."""

    groups: list[str]
    #: the antecedents of each group, in words (hover text)
    group_members: list[list[str]]
    consequents: list[str]
    #: (column, row, rules, mean lift, summed support)
    cells: list[tuple[int, int, int, float, float]]


def grouped_matrix(selection: RuleSelection, *, groups: int = MATRIX_GROUPS,
                   rows: int = MATRIX_ROWS, seed: int = 0) -> GroupedMatrix:
    """The grouped matrix of ``selection``: its ``rows`` consequents with the highest lift
    (ties: more rules), and the antecedent itemsets of their rules in at most ``groups``
    clusters (k-means on each antecedent's lift over those consequents, seeded), columns
    ordered by mean lift. A group is named by its most frequent items."""
    by_consequent: dict[tuple[int, ...], list[int]] = {}
    for r, c in enumerate(selection.consequents):
        by_consequent.setdefault(tuple(c), []).append(r)
    kept = sorted(by_consequent, key=lambda c: (-max(selection.lift[r] for r in by_consequent[c]),
                                                -len(by_consequent[c]), c))[:rows]
    row_of = {c: i for i, c in enumerate(kept)}
    rules = [r for c in kept for r in by_consequent[c]]
    antecedents: dict[tuple[int, ...], int] = {}
    for r in rules:
        antecedents.setdefault(tuple(selection.antecedents[r]), len(antecedents))
    if not rules:
        return GroupedMatrix([], [], [], [])
    profile = np.zeros((len(antecedents), len(kept)))
    for r in rules:
        profile[antecedents[tuple(selection.antecedents[r])],
                row_of[tuple(selection.consequents[r])]] = selection.lift[r]
    label_of = _kmeans(profile, min(groups, len(antecedents)), seed)
    # cells and the columns' order (mean lift of their rules, strongest first)
    k = int(label_of.max()) + 1
    group_lift = np.zeros(k)
    group_rules = np.zeros(k)
    for r in rules:
        g = label_of[antecedents[tuple(selection.antecedents[r])]]
        group_lift[g] += selection.lift[r]
        group_rules[g] += 1
    order = np.argsort(-(group_lift / np.maximum(group_rules, 1)), kind="stable")
    column = {int(g): i for i, g in enumerate(order)}
    acc: dict[tuple[int, int], list[float]] = {}
    for r in rules:
        g = column[int(label_of[antecedents[tuple(selection.antecedents[r])]])]
        cell = acc.setdefault((g, row_of[tuple(selection.consequents[r])]), [0, 0.0, 0.0])
        cell[0] += 1
        cell[1] += float(selection.lift[r])
        cell[2] += float(selection.support[r])
    cells = [(g, row, int(n), lift / n, support)
             for (g, row), (n, lift, support) in sorted(acc.items())]
    members: list[list[tuple[int, ...]]] = [[] for _ in range(k)]
    for a, i in antecedents.items():
        members[column[int(label_of[i])]].append(a)
    names = []
    for group in members:
        counts = Counter(item for a in group for item in a)
        top = [selection.names[i] for i, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
        more = f" +{len(top) - 1} item{'s' if len(top) > 2 else ''}" if len(top) > 1 else ""
        names.append(f"{len(group)} LHS: {_cut(top[0])}{more}")
    return GroupedMatrix(
        groups=names,
        group_members=[[selection.side_text(list(a)) for a in group] for group in members],
        consequents=[selection.side_text(list(c)) for c in kept], cells=cells)


def _cut(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 30) -> np.ndarray:
    """Each row's cluster (k-means++ start, seeded); clusters numbered 0..k'-1 with no gap."""
    n = x.shape[0]
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    centres = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = d.sum()
        centres.append(x[int(rng.choice(n, p=d / total))] if total > 0 else x[int(rng.integers(n))])
    c = np.array(centres)
    label = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        label = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1).argmin(axis=1)
        new = np.array([x[label == j].mean(axis=0) if np.any(label == j) else c[j]
                        for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    _, label = np.unique(label, return_inverse=True)
    return label.astype(np.int64)
