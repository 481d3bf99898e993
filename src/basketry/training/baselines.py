"""Item-kNN, the non-rule baseline of the offline evaluation: items similar to the basket's
items by the cosine of their co-occurrence.

``cos(i, j) = n_ij / sqrt(n_i * n_j)`` with ``n_ij`` the training baskets holding both items and
``n_i`` those holding ``i``. Each item keeps its ``neighbours`` most similar items (cosine desc,
item id asc). A basket's score of an item ``y`` is the sum of ``cos(x, y)`` over the basket's
items ``x`` that have ``y`` among their neighbours; the answer is the ``k`` best-scored items not
in the basket (score desc, then popularity: count desc, id asc), filled with the most popular
items when fewer than ``k`` items score. Co-occurrences are counted sparsely, item by item, over
the baskets' CSR and its transpose (never a dense baskets x items or items x items matrix):
the work is the sum of the squared basket sizes, the memory ``n_items * neighbours``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from basketry.data import Baskets

#: Neighbours kept per item (a usual choice for item-kNN; more changes little on the shared data).
NEIGHBOURS = 100


@numba.njit(cache=True)
def _transpose(indptr, indices, n_items):  # pragma: no cover - jit
    """The baskets of each item (CSC of the baskets' CSR): pointers and basket ids."""
    counts = np.zeros(n_items + 1, dtype=np.int64)
    for p in range(indices.shape[0]):
        counts[indices[p] + 1] += 1
    ptr = np.cumsum(counts)
    fill = ptr[:-1].copy()
    baskets = np.empty(indices.shape[0], dtype=np.int64)
    for b in range(indptr.shape[0] - 1):
        for p in range(indptr[b], indptr[b + 1]):
            item = indices[p]
            baskets[fill[item]] = b
            fill[item] += 1
    return ptr, baskets


@numba.njit(cache=True)
def _neighbours(indptr, indices, n_items, keep):  # pragma: no cover - jit
    """Each item's ``keep`` most similar items by cosine (desc, then id asc), as CSR."""
    item_ptr, item_baskets = _transpose(indptr, indices, n_items)
    n = np.diff(item_ptr).astype(np.float64)
    co = np.zeros(n_items, dtype=np.int64)
    touched = np.empty(n_items, dtype=np.int64)
    out_ptr = np.zeros(n_items + 1, dtype=np.int64)
    out_item = np.empty(n_items * min(keep, max(n_items - 1, 0)), dtype=np.int32)
    out_sim = np.empty(out_item.shape[0], dtype=np.float64)
    w = 0
    for i in range(n_items):
        m = 0
        for q in range(item_ptr[i], item_ptr[i + 1]):
            b = item_baskets[q]
            for p in range(indptr[b], indptr[b + 1]):
                j = indices[p]
                if j == i:
                    continue
                if co[j] == 0:
                    touched[m] = j
                    m += 1
                co[j] += 1
        ids = np.sort(touched[:m])
        sims = np.empty(m, dtype=np.float64)
        for t in range(m):
            j = ids[t]
            sims[t] = co[j] / np.sqrt(n[i] * n[j])
            co[j] = 0
        order = np.argsort(-sims, kind="mergesort")  # stable: ties keep ids ascending
        for t in range(min(keep, m)):
            out_item[w] = ids[order[t]]
            out_sim[w] = sims[order[t]]
            w += 1
        out_ptr[i + 1] = w
    return out_ptr, out_item[:w].copy(), out_sim[:w].copy()


@numba.njit(cache=True)
def _top(q_ptr, q_items, nb_ptr, nb_item, nb_sim, popular, k):  # pragma: no cover - jit
    """Each query's top ``k`` items (-1 where fewer exist) and how many came from neighbours."""
    n_items = popular.shape[0]
    position = np.empty(n_items, dtype=np.int64)  # popularity rank of each item
    for r in range(n_items):
        position[popular[r]] = r
    score = np.zeros(n_items, dtype=np.float64)
    in_basket = np.zeros(n_items, dtype=np.bool_)
    touched = np.empty(n_items, dtype=np.int64)
    n_q = q_ptr.shape[0] - 1
    out = np.full((n_q, k), -1, dtype=np.int64)
    scored = np.zeros(n_q, dtype=np.int64)
    for q in range(n_q):
        basket = q_items[q_ptr[q] : q_ptr[q + 1]]
        for x in basket:
            in_basket[x] = True
        m = 0
        for x in basket:
            for e in range(nb_ptr[x], nb_ptr[x + 1]):
                y = nb_item[e]
                if in_basket[y]:
                    continue
                if score[y] == 0.0:
                    touched[m] = y
                    m += 1
                score[y] += nb_sim[e]
        # best first: score desc, then popularity rank asc (a total order)
        keys = np.empty(m, dtype=np.float64)
        for t in range(m):
            keys[t] = position[touched[t]]
        order = np.argsort(keys, kind="mergesort")
        sims = np.empty(m, dtype=np.float64)
        for t in range(m):
            sims[t] = -score[touched[order[t]]]
        best = np.argsort(sims, kind="mergesort")
        n = min(k, m)
        for t in range(n):
            out[q, t] = touched[order[best[t]]]
        scored[q] = n
        for t in range(n):
            in_basket[out[q, t]] = True  # not again as a popular item
        for item in popular:
            if n == k:
                break
            if not in_basket[item]:
                out[q, n] = item
                n += 1
        for t in range(m):
            score[touched[t]] = 0.0
        for x in basket:
            in_basket[x] = False
        for t in range(scored[q]):
            in_basket[out[q, t]] = False
    return out, scored


@dataclass(frozen=True)
class ItemKNN:
    """Each item's nearest items by co-occurrence cosine (CSR: ``ptr``, ``item``, ``cosine``)
    and the popularity order (count desc, id asc) that breaks ties and fills answers."""

    ptr: np.ndarray
    item: np.ndarray
    cosine: np.ndarray
    popular: np.ndarray

    @classmethod
    def fit(cls, baskets: Baskets, neighbours: int = NEIGHBOURS) -> ItemKNN:
        """The neighbours of every item of ``baskets`` (ids as in ``baskets.items``)."""
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        indptr = np.ascontiguousarray(baskets.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(baskets.indices, dtype=np.int32)
        ptr, item, cosine = _neighbours(indptr, indices, int(baskets.n_items), int(neighbours))
        counts = np.bincount(indices, minlength=baskets.n_items)
        popular = np.argsort(-counts, kind="stable").astype(np.int64)
        return cls(ptr=ptr, item=item, cosine=cosine, popular=popular)

    def neighbours_of(self, item: int) -> list[tuple[int, float]]:
        """``(neighbour, cosine)`` of one item, most similar first."""
        lo, hi = int(self.ptr[item]), int(self.ptr[item + 1])
        return list(zip(self.item[lo:hi].tolist(), self.cosine[lo:hi].tolist(), strict=True))

    def top_items(self, q_ptr: np.ndarray, q_items: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The ``(n_queries, k)`` recommended ids for baskets given as CSR (known ids,
        ascending, unique), -1 where fewer than ``k`` items exist, and how many of each row
        were scored by neighbours (the rest are popular items)."""
        return _top(np.ascontiguousarray(q_ptr, dtype=np.int64),
                    np.ascontiguousarray(q_items, dtype=np.int32),
                    self.ptr, self.item, self.cosine, self.popular, int(k))
