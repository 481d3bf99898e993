"""Walking order: which group of products stands in which aisle so that neighbouring aisles
share much affinity, and the order of the products along each aisle.

Aisles: a path through the inter-aisle affinity graph. With equal capacities and no anchors, a
greedy path from every start (nearest by affinity) then 2-opt (reversing a stretch when the two
new joins are stronger than the two old ones). Otherwise (anchored aisles keep their number,
a group only goes where it fits), pairwise exchanges of groups that fit each other's aisle,
while one gains. Within an aisle: a chain of strongest links (anchors keep their position).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from basketry.layout.aisles import chain_order

#: greedy starts tried (every aisle up to this many)
MAX_STARTS = 64
#: greedy paths improved by 2-opt (the heaviest ones)
TWO_OPT_STARTS = 4


def aisle_links(weights: sp.csr_matrix, aisle: np.ndarray, n_aisles: int) -> np.ndarray:
    """links[a, b]: the summed item-item weight between aisles a and b (zero diagonal)."""
    n = aisle.shape[0]
    placed = aisle >= 0
    z = sp.csr_matrix((np.ones(int(placed.sum())), (np.flatnonzero(placed), aisle[placed])),
                      shape=(n, n_aisles))
    links = np.asarray((z.T @ weights @ z).todense(), dtype=np.float64)
    np.fill_diagonal(links, 0.0)
    return links


def path_weight(links: np.ndarray, order: np.ndarray) -> float:
    return float(links[order[:-1], order[1:]].sum()) if order.shape[0] > 1 else 0.0


def _greedy(links: np.ndarray, start: int) -> np.ndarray:
    n = links.shape[0]
    left = np.ones(n, dtype=bool)
    order = [start]
    left[start] = False
    for _ in range(n - 1):
        row = np.where(left, links[order[-1]], -np.inf)
        nxt = int(np.argmax(row))
        order.append(nxt)
        left[nxt] = False
    return np.asarray(order, dtype=np.int64)


def _two_opt(links: np.ndarray, order: np.ndarray) -> np.ndarray:
    order = order.copy()
    n = order.shape[0]
    improved = True
    while improved:
        improved = False
        for i in range(0, n - 1):
            for j in range(i + 1, n):
                # reverse order[i..j]: joins (i-1, i) and (j, j+1) become (i-1, j) and (i, j+1)
                before = (links[order[i - 1], order[i]] if i > 0 else 0.0) + \
                         (links[order[j], order[j + 1]] if j < n - 1 else 0.0)
                after = (links[order[i - 1], order[j]] if i > 0 else 0.0) + \
                        (links[order[i], order[j + 1]] if j < n - 1 else 0.0)
                if after > before + 1e-12:
                    order[i:j + 1] = order[i:j + 1][::-1].copy()
                    improved = True
    return order


def order_groups(links: np.ndarray, sizes: np.ndarray, capacities: np.ndarray,
                 pinned: np.ndarray) -> np.ndarray:
    """slot_of[group]: the aisle each group of products stands in. Group g starts in aisle g
    (where it was packed, so it fits); ``pinned[g]`` keeps its aisle."""
    n = links.shape[0]
    if n <= 2 and not pinned.any():
        return np.arange(n, dtype=np.int64)
    uniform = bool((capacities == capacities[0]).all())
    if uniform and not pinned.any():
        starts = range(n) if n <= MAX_STARTS else np.linspace(0, n - 1, MAX_STARTS).astype(int)
        greedy = sorted((_greedy(links, int(s)) for s in starts),
                        key=lambda o: -path_weight(links, o))
        best = np.arange(n, dtype=np.int64)
        best_w = path_weight(links, best)
        for start in greedy[:TWO_OPT_STARTS]:  # 2-opt is quadratic: the best few starts
            cand = _two_opt(links, start)
            w = path_weight(links, cand)
            if w > best_w + 1e-12:
                best, best_w = cand, w
        slot_of = np.empty(n, dtype=np.int64)
        slot_of[best] = np.arange(n)
        return slot_of
    # exchanges of groups between slots, keeping every group in a slot it fits
    group_at = np.arange(n, dtype=np.int64)  # slot -> group

    def around(slot: int, order: np.ndarray) -> float:
        g = order[slot]
        w = links[g, order[slot - 1]] if slot > 0 else 0.0
        return w + (links[g, order[slot + 1]] if slot < n - 1 else 0.0)

    free_slots = [s for s in range(n) if not pinned[group_at[s]]]
    improved = True
    while improved:
        improved = False
        for x_i, x in enumerate(free_slots):
            for y in free_slots[x_i + 1:]:
                gx, gy = group_at[x], group_at[y]
                if sizes[gx] > capacities[y] or sizes[gy] > capacities[x]:
                    continue
                before = around(x, group_at) + around(y, group_at)
                trial = group_at.copy()
                trial[x], trial[y] = gy, gx
                after = around(x, trial) + around(y, trial)
                if after > before + 1e-12:
                    group_at = trial
                    improved = True
    slot_of = np.empty(n, dtype=np.int64)
    slot_of[group_at] = np.arange(n)
    return slot_of


def order_within(weights: sp.csr_matrix, members: np.ndarray, fixed_position: np.ndarray,
                 popularity: np.ndarray) -> np.ndarray:
    """``members`` in shelf order: a chain of strongest links (the most popular products first
    among those without links); anchors with a position (1-based in ``fixed_position``, 0 for
    none) keep it."""
    if members.shape[0] == 0:
        return members
    linked = np.asarray(weights[members][:, members].sum(axis=1)).ravel() > 0
    chain = chain_order(weights, members[linked]) if linked.any() else members[:0]
    rest = members[~linked]
    rest = rest[np.argsort(-popularity[rest], kind="stable")]
    flow = np.concatenate([chain, rest])
    pos = fixed_position[flow]
    anchored = flow[pos > 0]
    loose = flow[pos == 0]
    out = np.full(members.shape[0], -1, dtype=np.int64)
    taken = np.zeros(members.shape[0], dtype=bool)
    for item in anchored.tolist():
        p = min(int(fixed_position[item]), members.shape[0]) - 1
        while taken[p]:  # two anchors asking for one position: the next free one
            p = (p + 1) % members.shape[0]
        out[p], taken[p] = item, True
    out[~taken] = loose
    return out
