"""Refining a full layout's aisles by local search: moves into free space and swaps between two
aisles, each applied only when it raises the weight of the pairs standing in one aisle.

The evaluation counts co-purchased pairs by occurrences, so a full layout is refined on the
occurrence counts (``build.LayoutParams.refine_weighting``), started from the communities of
the chosen weighting: the communities keep product groups whole, the refinement then brings each
popular product next to the partners it is bought with most (a Kernighan-Lin style pass, greedy,
per pair of aisles).

State: ``m[i, a]``, the weight between item i and the items of aisle a (dense n x aisles: 32 MB
for 20,000 products in 200 aisles); the graph stays sparse (CSR), never items x items. A sweep
visits the pairs of aisles some product would rather stand in (each product's few best other
aisles), and in each pair applies the best move or swap while one gains. Sweeps repeat until
one applies nothing.

For a product i of aisle a and k of aisle b, with ``d_i = m[i, b] - m[i, a]`` and
``e_k = m[k, a] - m[k, b]``: moving i to b gains ``d_i``; swapping i and k gains
``d_i + e_k - 2 w[i, k]``. Since ``w >= 0``, a pair of aisles where no product has a positive
``d`` or ``e`` has no gaining swap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: sweeps over the pairs of aisles, at most (each sweep applies at least one step or stops)
MAX_SWEEPS = 40
#: each product proposes its this many best other aisles as pairs to visit
CANDIDATE_AISLES = 4
#: rows of the m matrix handled at once when the candidate pairs are listed (bounded memory)
CHUNK = 4096


@dataclass(frozen=True)
class Refined:
    aisle: np.ndarray  # the refined assignment
    steps: int  # moves and swaps applied
    sweeps: int
    gain: float  # weight brought into the same aisle (the graph's units)


class _Search:
    def __init__(self, weights: sp.csr_matrix, aisle: np.ndarray, capacities: np.ndarray,
                 movable: np.ndarray, category: np.ndarray | None,
                 conflicts: np.ndarray | None) -> None:
        self.w = weights.tocsr()
        self.n = self.w.shape[0]
        self.aisle = aisle.astype(np.int64).copy()
        self.caps = np.asarray(capacities, dtype=np.int64)
        self.n_aisles = int(self.caps.shape[0])
        placed = self.aisle >= 0
        self.movable = movable & placed
        self.size = np.bincount(self.aisle[placed], minlength=self.n_aisles).astype(np.int64)
        z = sp.csr_matrix((np.ones(int(placed.sum())), (np.flatnonzero(placed),
                                                         self.aisle[placed])),
                          shape=(self.n, self.n_aisles))
        self.m = np.asarray((self.w @ z).todense(), dtype=np.float64)
        self.scratch = np.zeros(self.n)  # one item's weights, dense, while its swaps are tried
        self.category = (category if category is not None
                         else np.full(self.n, -1, dtype=np.int64))
        self.conflicts = conflicts if conflicts is not None and conflicts.any() else None
        if self.conflicts is not None:
            self.cat_count = np.zeros((self.n_aisles, self.conflicts.shape[0]), dtype=np.int64)
            has = placed & (self.category >= 0)
            np.add.at(self.cat_count, (self.aisle[has], self.category[has]), 1)
        total = float(self.w.sum()) / 2.0
        self.eps = 1e-9 * max(total, 1e-300)

    def _may_enter(self, items: np.ndarray, b: int) -> np.ndarray:
        """items that may stand in aisle b (categories kept apart; conservative: the product
        leaving b in a swap still counts)."""
        if self.conflicts is None:
            return np.ones(items.shape[0], dtype=bool)
        blocked = (self.conflicts & (self.cat_count[b] > 0)[None, :]).any(axis=1)
        cats = self.category[items]
        return (cats < 0) | ~blocked[np.maximum(cats, 0)]

    def _apply(self, i: int, b: int) -> None:
        a = int(self.aisle[i])
        lo, hi = self.w.indptr[i], self.w.indptr[i + 1]
        nb, vals = self.w.indices[lo:hi], self.w.data[lo:hi]
        self.m[nb, a] -= vals
        self.m[nb, b] += vals
        self.aisle[i] = b
        self.size[a] -= 1
        self.size[b] += 1
        if self.conflicts is not None and self.category[i] >= 0:
            self.cat_count[a, self.category[i]] -= 1
            self.cat_count[b, self.category[i]] += 1

    def candidate_pairs(self) -> list[tuple[int, int]]:
        """Pairs of aisles (a < b) where some product would gain by standing in the other,
        the most wanted first."""
        rows = np.flatnonzero(self.movable)
        keys: list[np.ndarray] = []
        wants: list[np.ndarray] = []
        k = min(CANDIDATE_AISLES, self.n_aisles - 1)
        if k < 1:
            return []
        for start in range(0, rows.shape[0], CHUNK):
            r = rows[start:start + CHUNK]
            own = self.aisle[r]
            d = self.m[r] - self.m[r, own][:, None]
            d[np.arange(r.shape[0]), own] = -np.inf
            top = np.argpartition(-d, k - 1, axis=1)[:, :k]
            gain = np.take_along_axis(d, top, axis=1)
            ok = gain > self.eps
            a = np.broadcast_to(own[:, None], top.shape)[ok]
            b = top[ok]
            keys.append(np.minimum(a, b) * self.n_aisles + np.maximum(a, b))
            wants.append(gain[ok])
        if not keys:
            return []
        key, want = np.concatenate(keys), np.concatenate(wants)
        uniq, inverse = np.unique(key, return_inverse=True)
        total = np.bincount(inverse, weights=want)
        order = np.argsort(-total, kind="stable")
        return [(int(uniq[x] // self.n_aisles), int(uniq[x] % self.n_aisles)) for x in order]

    def best_step(self, a: int, b: int) -> tuple[float, int, int]:
        """(gain, i, k): the best move (k = -1: i into the other aisle's free space) or swap
        of aisles a and b."""
        ia = np.flatnonzero((self.aisle == a) & self.movable)
        ib = np.flatnonzero((self.aisle == b) & self.movable)
        ia, ib = ia[self._may_enter(ia, b)], ib[self._may_enter(ib, a)]
        d = self.m[ia, b] - self.m[ia, a]
        e = self.m[ib, a] - self.m[ib, b]
        best = (0.0, -1, -1)
        if ia.size and self.size[b] < self.caps[b]:
            x = int(np.argmax(d))
            if d[x] > best[0]:
                best = (float(d[x]), int(ia[x]), -1)
        if ib.size and self.size[a] < self.caps[a]:
            x = int(np.argmax(e))
            if e[x] > best[0]:
                best = (float(e[x]), int(ib[x]), -1)
        if ia.size == 0 or ib.size == 0:
            return best
        e_max = float(e.max())
        # a swap gains at most d_i + max(e): visit i by falling d, stop when that cannot win
        for x in np.argsort(-d, kind="stable").tolist():
            if d[x] + e_max <= best[0]:
                break
            i = int(ia[x])
            lo, hi = self.w.indptr[i], self.w.indptr[i + 1]
            self.scratch[self.w.indices[lo:hi]] = self.w.data[lo:hi]
            g = d[x] + e - 2.0 * self.scratch[ib]
            self.scratch[self.w.indices[lo:hi]] = 0.0
            y = int(np.argmax(g))
            if g[y] > best[0]:
                best = (float(g[y]), i, int(ib[y]))
        return best

    def run(self, max_steps: int, max_sweeps: int) -> Refined:
        steps, sweeps, gained = 0, 0, 0.0
        while sweeps < max_sweeps and steps < max_steps:
            sweeps += 1
            before = steps
            for a, b in self.candidate_pairs():
                while steps < max_steps:
                    gain, i, k = self.best_step(a, b)
                    if gain <= self.eps:
                        break
                    to = b if self.aisle[i] == a else a
                    if k >= 0:
                        self._apply(k, int(self.aisle[i]))
                    self._apply(i, to)
                    steps += 1
                    gained += gain
            if steps == before:
                break
        return Refined(aisle=self.aisle, steps=steps, sweeps=sweeps, gain=gained)


def refine_aisles(weights: sp.csr_matrix, aisle: np.ndarray, capacities: np.ndarray,
                  movable: np.ndarray, *, category: np.ndarray | None = None,
                  conflicts: np.ndarray | None = None, max_steps: int = 1_000_000,
                  max_sweeps: int = MAX_SWEEPS) -> Refined:
    """``aisle`` improved by moves and swaps that raise the same-aisle weight of ``weights``
    (symmetric CSR, zero diagonal): capacities kept, products not ``movable`` (anchors, the
    categories kept together) stay, no aisle gets two categories kept apart."""
    search = _Search(weights, aisle, capacities, movable, category, conflicts)
    return search.run(max_steps, max_sweeps)
