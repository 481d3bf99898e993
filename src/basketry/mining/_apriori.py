"""Level-wise Apriori on recoded CSR baskets (numba counting)."""

from __future__ import annotations

import numpy as np
from numba import njit

from basketry.mining._kernels import build_row_table, lookup_row


@njit(cache=True)
def count_pairs(indptr, indices, m):
    """Triangular pair counts: pair (a < b) at a * m - a * (a + 1) // 2 + (b - a - 1)."""
    counts = np.zeros(m * (m - 1) // 2, dtype=np.int32)
    for t in range(indptr.shape[0] - 1):
        s = indptr[t]
        e = indptr[t + 1]
        for p in range(s, e):
            a = np.int64(indices[p])
            off = a * m - a * (a + 1) // 2 - a - 1
            for q in range(p + 1, e):
                counts[off + indices[q]] += 1
    return counts


@njit(cache=True)
def frequent_pairs(counts, m, min_count, is_non_a, limit_non_a):
    n = 0
    for v in counts:
        if v >= min_count:
            n += 1
    rows = np.empty((n, 2), dtype=np.int32)
    cnt = np.empty(n, dtype=np.int64)
    k = 0
    idx = 0
    for a in range(m):
        for b in range(a + 1, m):
            v = counts[idx]
            idx += 1
            if v >= min_count and not (limit_non_a and is_non_a[a] and is_non_a[b]):
                rows[k, 0] = a
                rows[k, 1] = b
                cnt[k] = v
                k += 1
    return rows[:k].copy(), cnt[:k].copy()


@njit(cache=True)
def generate_candidates(prev):
    """Apriori-gen: join (k-1)-itemsets (lexicographically sorted rows of ``prev``) sharing their
    first k-2 items, keep the candidates whose every (k-1)-subset is in ``prev``."""
    n, km1 = prev.shape
    k = km1 + 1
    indptr = np.arange(n + 1).astype(np.int64) * km1
    flat = prev.reshape(-1).copy()
    table, mask = build_row_table(indptr, flat)
    out = np.empty((max(16, n), k), dtype=np.int32)
    n_out = 0
    sub = np.empty(km1, dtype=np.int32)
    cand = np.empty(k, dtype=np.int32)
    g = 0
    while g < n:
        h = g + 1
        while h < n:
            same = True
            for q in range(km1 - 1):
                if prev[h, q] != prev[g, q]:
                    same = False
                    break
            if not same:
                break
            h += 1
        for i in range(g, h):
            for j in range(i + 1, h):
                for q in range(km1):
                    cand[q] = prev[i, q]
                cand[km1] = prev[j, km1 - 1]
                ok = True
                for drop in range(km1 - 1):
                    w = 0
                    for q in range(k):
                        if q != drop:
                            sub[w] = cand[q]
                            w += 1
                    if lookup_row(table, mask, indptr, flat, sub, km1) < 0:
                        ok = False
                        break
                if ok:
                    if n_out >= out.shape[0]:
                        bigger = np.empty((2 * out.shape[0], k), dtype=np.int32)
                        bigger[:n_out] = out[:n_out]
                        out = bigger
                    out[n_out] = cand
                    n_out += 1
        g = h
    return out[:n_out].copy()
