"""Grouping products into aisles: communities of the affinity graph (networkx's Louvain, seeded),
fitted to the store's constraints.

Products of a category kept together form one unit (they move as one); anchors are placed
first. Communities larger than an aisle are split again (Louvain at a higher resolution, then by
a chain of strongest links when that no longer splits them); communities are then placed, the
largest units first, then those linked to anchors, each whole into the aisle it has most
affinity with that has room (and no category it must stay apart from; the emptiest on a tie),
else unit by unit. Products without any edge fill the space
left, most popular first, into the emptiest aisles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from basketry.model.layout import LayoutError

#: splitting an oversized community: how many times Louvain is retried at a doubled resolution
SPLIT_DEPTH = 4
#: communities are found on each node's strongest links only (the union of every node's top
#: NEIGHBOURS): Louvain's time grows with the edges, and the weak links of a dense co-purchase
#: graph (popular products bought with everything) blur the groups more than they inform them
NEIGHBOURS = 25


@dataclass(frozen=True)
class Problem:
    """What the aisles must satisfy, over items 0..n-1 (aisles 0-based here)."""

    names: Sequence[str]  # item codes, for errors
    capacities: np.ndarray  # int64 per aisle
    category: np.ndarray  # int64 per item, -1 for none
    category_names: Sequence[str]
    together: frozenset[int]  # category ids kept in one aisle
    conflicts: np.ndarray  # bool C x C: categories that may not share an aisle
    pinned: np.ndarray  # int64 per item: its fixed aisle, -1 when free

    @property
    def n_items(self) -> int:
        return int(self.pinned.shape[0])


def _units(problem: Problem) -> np.ndarray:
    """unit_of[item]: the items of a category kept together share one unit."""
    n = problem.n_items
    key = np.arange(n, dtype=np.int64)
    for c in problem.together:
        members = np.flatnonzero(problem.category == c)
        if members.size:
            key[members] = members[0]
    _, unit_of = np.unique(key, return_inverse=True)
    return unit_of.astype(np.int64)


def _check(problem: Problem, unit_of: np.ndarray, unit_size: np.ndarray) -> np.ndarray:
    """unit_pin[unit]: the aisle a unit is fixed to (-1: free); one-line errors otherwise."""
    caps = problem.capacities
    unit_pin = np.full(unit_size.shape[0], -1, dtype=np.int64)
    for i in np.flatnonzero(problem.pinned >= 0).tolist():
        u, a = unit_of[i], int(problem.pinned[i])
        if a >= caps.shape[0]:
            raise LayoutError(f"fixed product {problem.names[i]!r} is in aisle {a + 1}, but the "
                              f"store has {caps.shape[0]} aisles")
        if unit_pin[u] >= 0 and unit_pin[u] != a:
            cat = problem.category_names[problem.category[i]]
            raise LayoutError(f"category {cat!r} is kept together but its fixed products stand "
                              f"in aisles {min(unit_pin[u], a) + 1} and {max(unit_pin[u], a) + 1}")
        unit_pin[u] = a
    pinned_units = unit_pin >= 0
    need = np.bincount(unit_pin[pinned_units], weights=unit_size[pinned_units],
                       minlength=caps.shape[0]).astype(np.int64)
    over = np.flatnonzero(need > caps)
    if over.size:
        a = int(over[0])
        raise LayoutError(f"aisle {a + 1} has capacity {caps[a]} but its fixed products (and the "
                          f"categories kept with them) need {need[a]} places")
    big = int(unit_size.max()) if unit_size.size else 0
    if big > int(caps.max()):
        u = int(np.argmax(unit_size))
        cat = problem.category_names[problem.category[np.flatnonzero(unit_of == u)[0]]]
        raise LayoutError(f"category {cat!r} is kept together but has {big} products, more than "
                          f"the largest aisle holds ({int(caps.max())})")
    if problem.conflicts.any():
        for a in range(caps.shape[0]):
            here = np.flatnonzero((problem.pinned == a) & (problem.category >= 0))
            cats = np.unique(problem.category[here])
            clash = problem.conflicts[np.ix_(cats, cats)]
            if clash.any():
                x, y = np.argwhere(clash)[0]
                raise LayoutError(
                    f"fixed products put categories {problem.category_names[cats[x]]!r} and "
                    f"{problem.category_names[cats[y]]!r} in aisle {a + 1}, but they are kept "
                    f"apart")
    return unit_pin


def strongest_links(graph: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """``graph`` keeping, for each node, its ``k`` heaviest edges (symmetric: an edge stays
    when it is among the top ``k`` of either end)."""
    graph = graph.tocsr()
    n = graph.shape[0]
    lengths = np.diff(graph.indptr)
    if lengths.size == 0 or lengths.max() <= k:
        return graph
    rows = np.repeat(np.arange(n), lengths)
    order = np.lexsort((-graph.data, rows))
    rank = np.arange(order.shape[0]) - np.repeat(graph.indptr[:-1], lengths)
    keep = order[rank < k]
    top = sp.csr_matrix((graph.data[keep], (rows[keep], graph.indices[keep])), shape=(n, n))
    return top.maximum(top.T).tocsr()


def _louvain(graph: sp.csr_matrix, nodes: np.ndarray, seed: int,
             resolution: float) -> list[np.ndarray]:
    sub = graph[nodes][:, nodes].tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(nodes.shape[0]))
    keep = sub.row < sub.col
    g.add_weighted_edges_from(zip(sub.row[keep].tolist(), sub.col[keep].tolist(),
                                  sub.data[keep].tolist(), strict=True))
    found = nx.community.louvain_communities(g, weight="weight", resolution=resolution,
                                             seed=seed)
    return [nodes[np.fromiter(sorted(c), dtype=np.int64)] for c in found]


def chain_order(graph: sp.csr_matrix, nodes: np.ndarray) -> np.ndarray:
    """``nodes`` in a chain where each next one is the unplaced node most linked to the last
    (restarting from the most linked remaining node): a linear order that keeps neighbours
    close, for cutting a group into pieces or ordering a shelf."""
    if nodes.shape[0] <= 2:
        return nodes
    sub = graph[nodes][:, nodes].tocsr()
    strength = np.asarray(sub.sum(axis=1)).ravel()
    left = np.ones(nodes.shape[0], dtype=bool)
    order = np.empty(nodes.shape[0], dtype=np.int64)
    current = int(np.argmax(strength))
    for k in range(nodes.shape[0]):
        order[k] = current
        left[current] = False
        if k == nodes.shape[0] - 1:
            break
        lo, hi = sub.indptr[current], sub.indptr[current + 1]
        nb, w = sub.indices[lo:hi], sub.data[lo:hi]
        ok = left[nb]
        if ok.any():
            current = int(nb[ok][np.argmax(w[ok])])
        else:
            rest = np.flatnonzero(left)
            current = int(rest[np.argmax(strength[rest])])
    return nodes[order]


def _split(graph: sp.csr_matrix, nodes: np.ndarray, size: np.ndarray, limit: int, seed: int,
           resolution: float, depth: int = 0) -> list[np.ndarray]:
    """Pieces of ``nodes`` each of total size <= ``limit``."""
    if size[nodes].sum() <= limit:
        return [nodes]
    if depth < SPLIT_DEPTH:
        parts = _louvain(graph, nodes, seed, resolution * 2.0)
        if len(parts) > 1:
            out: list[np.ndarray] = []
            for p in parts:
                out += _split(graph, p, size, limit, seed, resolution * 2.0, depth + 1)
            return out
    pieces, start, filled = [], 0, 0
    ordered = chain_order(graph, nodes)
    for k, u in enumerate(ordered.tolist()):
        if filled + size[u] > limit and k > start:
            pieces.append(ordered[start:k])
            start, filled = k, 0
        filled += int(size[u])
    pieces.append(ordered[start:])
    return pieces


def assign_aisles(weights: sp.csr_matrix, popularity: np.ndarray, problem: Problem, *,
                  seed: int = 0, resolution: float = 1.0, neighbours: int = NEIGHBOURS,
                  progress: Callable[[str], None] | None = None) -> np.ndarray:
    """The aisle (0-based) of each item."""
    caps = problem.capacities.astype(np.int64)
    n, n_aisles = problem.n_items, caps.shape[0]
    if n > int(caps.sum()):
        raise LayoutError(f"{n:,} products but the {n_aisles} aisles hold only {int(caps.sum()):,}")
    unit_of = _units(problem)
    n_units = int(unit_of.max()) + 1 if n else 0
    unit_size = np.bincount(unit_of, minlength=n_units).astype(np.int64)
    unit_pin = _check(problem, unit_of, unit_size)
    p = sp.csr_matrix((np.ones(n), (np.arange(n), unit_of)), shape=(n, n_units))
    graph = (p.T @ weights @ p).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    unit_pop = np.bincount(unit_of, weights=popularity.astype(np.float64), minlength=n_units)
    n_cat = problem.conflicts.shape[0]
    unit_cat = np.full(n_units, -1, dtype=np.int64)
    has_cat = problem.category >= 0
    unit_cat[unit_of[has_cat]] = problem.category[has_cat]  # mixed units only via together

    unit_aisle = unit_pin.copy()
    free = caps - np.bincount(unit_pin[unit_pin >= 0], weights=unit_size[unit_pin >= 0],
                              minlength=n_aisles).astype(np.int64)
    cat_count = np.zeros((n_aisles, max(n_cat, 1)), dtype=np.int64)
    if n_cat:
        for i in np.flatnonzero((problem.pinned >= 0) & has_cat).tolist():
            cat_count[problem.pinned[i], problem.category[i]] += 1
        # the rest of a together category joins its anchors' aisle
        for u in np.flatnonzero(unit_pin >= 0).tolist():
            members = np.flatnonzero((unit_of == u) & (problem.pinned < 0) & has_cat)
            np.add.at(cat_count, (np.full(members.shape[0], unit_pin[u]),
                                  problem.category[members]), 1)

    def blocked(units: np.ndarray) -> np.ndarray:
        """blocked[a]: aisle a holds a category some of ``units`` must stay apart from."""
        if not n_cat or not problem.conflicts.any():
            return np.zeros(n_aisles, dtype=bool)
        cats = np.unique(unit_cat[units][unit_cat[units] >= 0])
        if cats.size == 0:
            return np.zeros(n_aisles, dtype=bool)
        if problem.conflicts[np.ix_(cats, cats)].any():
            return np.ones(n_aisles, dtype=bool)  # cannot share any aisle whole
        bad = problem.conflicts[cats].any(axis=0)
        return (cat_count[:, bad] > 0).any(axis=1)

    def affinity(units: np.ndarray) -> np.ndarray:
        rows = graph[units].tocoo()
        where = unit_aisle[rows.col]
        ok = where >= 0
        return np.bincount(where[ok], weights=rows.data[ok], minlength=n_aisles)

    def put(units: np.ndarray, a: int) -> None:
        unit_aisle[units] = a
        free[a] -= int(unit_size[units].sum())
        if n_cat:
            with_cat = units[unit_cat[units] >= 0]
            np.add.at(cat_count, (np.full(with_cat.shape[0], a), unit_cat[with_cat]),
                      unit_size[with_cat])

    if progress:
        progress("finding communities (Louvain)")
    strength = np.asarray(graph.sum(axis=1)).ravel()
    linked = np.flatnonzero((strength > 0) & (unit_pin < 0))
    communities: list[np.ndarray] = []
    if linked.size:
        limit = int(caps.max())
        sparse = strongest_links(graph, neighbours)
        for c in _louvain(sparse, linked, seed, resolution):
            communities += _split(sparse, c, unit_size, limit, seed, resolution)
    if progress:
        progress(f"placing {len(communities):,} groups into {n_aisles} aisles")
    # categories kept together first (the hardest to fit), then the groups drawn to anchors,
    # then the largest; each into the aisle it is most linked to, else the emptiest
    communities.sort(key=lambda c: (-int(unit_size[c].max()), -float(affinity(c).sum()),
                                    -int(unit_size[c].sum())))
    for comm in communities:
        size = int(unit_size[comm].sum())
        room = (free >= size) & ~blocked(comm)
        if room.any():
            aff = affinity(comm)
            score = np.where(room, aff, -np.inf)
            best = np.flatnonzero(score == score.max())
            put(comm, int(best[np.argmax(free[best])]))
            continue
        order = comm[np.lexsort((-strength[comm], -unit_size[comm]))]
        for u in order.tolist():
            one = np.array([u])
            room = (free >= unit_size[u]) & ~blocked(one)
            if not room.any():
                raise LayoutError(_no_room(problem, unit_of, u, int(unit_size[u])))
            score = np.where(room, affinity(one), -np.inf)
            best = np.flatnonzero(score == score.max())
            put(one, int(best[np.argmax(free[best])]))
    lonely = np.flatnonzero(unit_aisle < 0)
    lonely = lonely[np.lexsort((-unit_pop[lonely], -unit_size[lonely]))]
    for u in lonely.tolist():
        one = np.array([u])
        room = (free >= unit_size[u]) & ~blocked(one)
        if not room.any():
            raise LayoutError(_no_room(problem, unit_of, u, int(unit_size[u])))
        candidates = np.flatnonzero(room)
        put(one, int(candidates[np.argmax(free[candidates])]))
    return unit_aisle[unit_of]


def _no_room(problem: Problem, unit_of: np.ndarray, unit: int, size: int) -> str:
    first = int(np.flatnonzero(unit_of == unit)[0])
    what = (f"category {problem.category_names[problem.category[first]]!r} ({size} products, "
            f"kept together)" if size > 1 else f"product {problem.names[first]!r}")
    return (f"no aisle has room for {what} without breaking a category rule: add capacity or "
            f"relax the rules")
