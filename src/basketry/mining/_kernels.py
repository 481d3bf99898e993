"""Shared numba kernels: recoding, lexicographic sorting of CSR rows, itemset hashing, tries."""

from __future__ import annotations

import numpy as np
from numba import njit

_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _sort_small(a, s, e):
    """Sort a[s:e] in place: insertion sort for short runs, numpy's sort otherwise."""
    if e - s > 32:
        a[s:e] = np.sort(a[s:e])
        return
    for i in range(s + 1, e):
        v = a[i]
        j = i - 1
        while j >= s and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(cache=True)
def recode_baskets(indptr, indices, new_of_old):
    """Map item ids through ``new_of_old`` (-1 drops the item); sort each basket ascending."""
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    out = np.empty(indices.shape[0], dtype=np.int32)
    k = 0
    for b in range(n):
        start = k
        for p in range(indptr[b], indptr[b + 1]):
            v = new_of_old[indices[p]]
            if v >= 0:
                out[k] = v
                k += 1
        if k - start > 1:
            _sort_small(out, start, k)
        out_ptr[b + 1] = k
    # a view: a copy would touch as many fresh pages again; the dropped items' room is untouched
    return out_ptr, out[:k]


@njit(cache=True, inline="always")
def _cmp_rows(indptr, indices, a, b):
    pa = indptr[a]
    ea = indptr[a + 1]
    pb = indptr[b]
    eb = indptr[b + 1]
    while pa < ea and pb < eb:
        x = indices[pa]
        y = indices[pb]
        if x < y:
            return -1
        if x > y:
            return 1
        pa += 1
        pb += 1
    la = ea - indptr[a]
    lb = eb - indptr[b]
    if la < lb:
        return -1
    if la > lb:
        return 1
    return 0


@njit(cache=True)
def lexsort_rows(indptr, indices):
    """Stable order of the CSR rows, lexicographic by their item sequences (shorter first on ties
    of a common prefix). Bottom-up merge sort."""
    n = indptr.shape[0] - 1
    a = np.arange(n).astype(np.int64)
    buf = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            k = lo
            while i < mid and j < hi:
                if _cmp_rows(indptr, indices, a[j], a[i]) < 0:
                    buf[k] = a[j]
                    j += 1
                else:
                    buf[k] = a[i]
                    i += 1
                k += 1
            while i < mid:
                buf[k] = a[i]
                i += 1
                k += 1
            while j < hi:
                buf[k] = a[j]
                j += 1
                k += 1
            lo = hi
        a, buf = buf, a
        width *= 2
    return a


@njit(cache=True)
def map_sort_rows(indptr, indices, old_of_new):
    """Map ids back through ``old_of_new`` and sort each row ascending (returns new indices)."""
    out = np.empty(indices.shape[0], dtype=np.int32)
    for r in range(indptr.shape[0] - 1):
        s = indptr[r]
        e = indptr[r + 1]
        for p in range(s, e):
            out[p] = old_of_new[indices[p]]
        if e - s > 1:
            _sort_small(out, s, e)
    return out


@njit(cache=True, inline="always")
def _row_hash(indices, s, e):
    h = np.uint64(0x84222325CBF29CE4)
    for p in range(s, e):
        h = (h ^ np.uint64(indices[p] + 1)) * _HASH_MULT
        h ^= h >> np.uint64(29)
    return h


@njit(cache=True)
def build_row_table(indptr, indices):
    """Open-addressing hash table of CSR rows: returns (table of row ids or -1, mask)."""
    n = indptr.shape[0] - 1
    cap = 16
    while cap < 2 * n + 16:
        cap *= 2
    table = np.full(cap, -1, dtype=np.int64)
    mask = np.uint64(cap - 1)
    for r in range(n):
        h = _row_hash(indices, indptr[r], indptr[r + 1]) & mask
        while table[h] != -1:
            h = (h + np.uint64(1)) & mask
        table[h] = r
    return table, mask


@njit(cache=True)
def lookup_row(table, mask, indptr, indices, query, qlen):
    """Row id of the itemset ``query[:qlen]`` (sorted ids) or -1."""
    h = np.uint64(0x84222325CBF29CE4)
    for p in range(qlen):
        h = (h ^ np.uint64(query[p] + 1)) * _HASH_MULT
        h ^= h >> np.uint64(29)
    h &= mask
    while True:
        r = table[h]
        if r == -1:
            return -1
        s = indptr[r]
        if indptr[r + 1] - s == qlen:
            same = True
            for p in range(qlen):
                if indices[s + p] != query[p]:
                    same = False
                    break
            if same:
                return r
        h = (h + np.uint64(1)) & mask


@njit(cache=True)
def build_trie(indptr, indices):
    """Prefix trie of lexicographically sorted CSR rows (first-child / next-sibling arrays).

    Node 0 is the root. Returns first_child, next_sibling, item, row (row id ending there or -1),
    max depth."""
    n = indptr.shape[0] - 1
    cap = indices.shape[0] + 1
    first_child = np.full(cap, -1, dtype=np.int64)
    next_sib = np.full(cap, -1, dtype=np.int64)
    last_child = np.full(cap, -1, dtype=np.int64)
    item = np.full(cap, -1, dtype=np.int32)
    row = np.full(cap, -1, dtype=np.int64)
    maxdepth = 0
    path = np.zeros(64, dtype=np.int64)
    prev_len = 0
    n_nodes = 1
    for r in range(n):
        s = indptr[r]
        e = indptr[r + 1]
        ln = e - s
        if ln > maxdepth:
            maxdepth = ln
        if ln + 1 > path.shape[0]:
            newpath = np.zeros(2 * (ln + 1), dtype=np.int64)
            newpath[: path.shape[0]] = path
            path = newpath
        # common prefix with the previous row (rows are sorted, so shared nodes are on the path)
        lcp = 0
        if r > 0:
            ps = indptr[r - 1]
            while lcp < ln and lcp < prev_len and indices[ps + lcp] == indices[s + lcp]:
                lcp += 1
        node = path[lcp]
        for d in range(lcp, ln):
            c = n_nodes
            n_nodes += 1
            item[c] = indices[s + d]
            if last_child[node] == -1:
                first_child[node] = c
            else:
                next_sib[last_child[node]] = c
            last_child[node] = c
            node = c
            path[d + 1] = c
        if ln > 0:
            row[node] = r
        prev_len = ln
    return first_child[:n_nodes], next_sib[:n_nodes], item[:n_nodes], row[:n_nodes], maxdepth


@njit(cache=True)
def count_trie(t_indptr, t_indices, first_child, next_sib, item, row, maxdepth, counts):
    """Add to ``counts[row]`` the number of baskets containing each itemset of the trie."""
    cur = np.empty(maxdepth + 2, dtype=np.int64)
    pos = np.empty(maxdepth + 2, dtype=np.int64)
    for b in range(t_indptr.shape[0] - 1):
        e = t_indptr[b + 1]
        sp = 0
        cur[0] = first_child[0]
        pos[0] = t_indptr[b]
        while sp >= 0:
            c = cur[sp]
            p = pos[sp]
            while c != -1 and p < e:
                it = item[c]
                ti = t_indices[p]
                if ti < it:
                    p += 1
                elif ti > it:
                    c = next_sib[c]
                else:
                    break
            if c == -1 or p >= e:
                sp -= 1
                continue
            cur[sp] = next_sib[c]
            pos[sp] = p + 1
            if row[c] >= 0:
                counts[row[c]] += 1
            if first_child[c] != -1 and p + 1 < e:
                sp += 1
                cur[sp] = first_child[c]
                pos[sp] = p + 1
    return counts


@njit(cache=True)
def strip_rows(indptr, indices, drop):
    """For each row, the row without the items flagged in ``drop``; unique, non-empty results
    only, and only rows that differ from their source (i.e. rows that had a flagged item)."""
    n = indptr.shape[0] - 1
    o_ptr = np.zeros(n + 1, dtype=np.int64)
    o_idx = np.empty(indices.shape[0], dtype=np.int32)
    k = 0
    r_out = 0
    for r in range(n):
        s = indptr[r]
        e = indptr[r + 1]
        had = False
        start = k
        for p in range(s, e):
            if drop[indices[p]]:
                had = True
            else:
                o_idx[k] = indices[p]
                k += 1
        if had and k > start:
            r_out += 1
            o_ptr[r_out] = k
        else:
            k = start
    o_ptr = o_ptr[: r_out + 1].copy()
    o_idx = o_idx[:k].copy()
    # dedupe
    order = lexsort_rows(o_ptr, o_idx)
    keep = np.zeros(r_out, dtype=np.bool_)
    for q in range(r_out):
        if q == 0 or _cmp_rows(o_ptr, o_idx, order[q - 1], order[q]) != 0:
            keep[order[q]] = True
    u_ptr = np.zeros(r_out + 1, dtype=np.int64)
    u_idx = np.empty(k, dtype=np.int32)
    w = 0
    nu = 0
    for q in range(r_out):
        r = order[q]
        if keep[r]:
            for p in range(o_ptr[r], o_ptr[r + 1]):
                u_idx[w] = o_idx[p]
                w += 1
            nu += 1
            u_ptr[nu] = w
    return u_ptr[: nu + 1].copy(), u_idx[:w].copy()


@njit(cache=True)
def lookup_rows(indptr, indices, q_indptr, q_indices):
    """Row id in (indptr, indices) of each query row, or -1."""
    table, mask = build_row_table(indptr, indices)
    nq = q_indptr.shape[0] - 1
    out = np.empty(nq, dtype=np.int64)
    for r in range(nq):
        s = q_indptr[r]
        out[r] = lookup_row(table, mask, indptr, indices, q_indices[s:], q_indptr[r + 1] - s)
    return out


@njit(cache=True)
def gather_rows(indptr, indices, rows):
    """CSR of the selected rows (in the given order)."""
    m = rows.shape[0]
    out_ptr = np.empty(m + 1, dtype=np.int64)
    out_ptr[0] = 0
    for i in range(m):
        r = rows[i]
        out_ptr[i + 1] = out_ptr[i] + indptr[r + 1] - indptr[r]
    out = np.empty(out_ptr[m], dtype=indices.dtype)
    for i in range(m):
        r = rows[i]
        s = indptr[r]
        o = out_ptr[i]
        for p in range(indptr[r + 1] - s):
            out[o + p] = indices[s + p]
    return out_ptr, out


@njit(cache=True)
def rule_measures(n_xy, n_x, n_y, n_baskets):
    """The float measures of rules (rows: support, antecedent_support, consequent_support,
    confidence, lift, leverage, conviction, zhang, jaccard, certainty, kulczynski).

    N * n_xy - n_x * n_y (the numerator that cancels) is formed exactly in int64."""
    m = n_xy.shape[0]
    out = np.empty((11, m), dtype=np.float64)
    n = np.float64(n_baskets)
    nsq = n * n
    big = np.int64(n_baskets)
    for i in range(m):
        a = n_xy[i]
        b = n_x[i]
        c = n_y[i]
        nxy = np.float64(a)
        nx = np.float64(b)
        ny = np.float64(c)
        diff = np.float64(big * a - b * c)
        out[0, i] = nxy / n
        out[1, i] = nx / n
        out[2, i] = ny / n
        out[3, i] = nxy / nx
        out[4, i] = (nxy / nx) * (n / ny)
        out[5, i] = diff / nsq
        if a == b:
            out[6, i] = np.inf
        else:
            out[6, i] = nx * (n - ny) / (n * (nx - nxy))
        zden = max(nxy * (n - nx), nx * (ny - nxy))
        out[7, i] = 0.0 if zden == 0.0 else diff / zden
        out[8, i] = nxy / (nx + ny - nxy)
        out[9, i] = 0.0 if c == big else diff / (nx * (n - ny))
        out[10, i] = 0.5 * (nxy / nx + nxy / ny)
    return out


@njit(cache=True)
def radix_order(indptr, indices, n_values, length_first):
    """Order of the CSR rows, lexicographic by ids (a row before its extensions); with
    ``length_first``, by length, then lexicographic. LSD radix sort, O(max_len * (rows + ids))."""
    n = indptr.shape[0] - 1
    maxlen = 0
    for r in range(n):
        ln = indptr[r + 1] - indptr[r]
        if ln > maxlen:
            maxlen = ln
    order = np.arange(n).astype(np.int64)
    buf = np.empty(n, dtype=np.int64)
    counts = np.empty(n_values + 2, dtype=np.int64)
    for col in range(maxlen - 1, -1, -1):
        counts[:] = 0
        for r in range(n):
            ln = indptr[r + 1] - indptr[r]
            key = indices[indptr[r] + col] + 1 if col < ln else 0
            counts[key + 1] += 1
        for k in range(n_values + 1):
            counts[k + 1] += counts[k]
        for q in range(n):
            r = order[q]
            ln = indptr[r + 1] - indptr[r]
            key = indices[indptr[r] + col] + 1 if col < ln else 0
            buf[counts[key]] = r
            counts[key] += 1
        order, buf = buf, order
    if length_first:
        lc = np.zeros(maxlen + 2, dtype=np.int64)
        for r in range(n):
            lc[indptr[r + 1] - indptr[r] + 1] += 1
        for k in range(maxlen + 1):
            lc[k + 1] += lc[k]
        for q in range(n):
            r = order[q]
            ln = indptr[r + 1] - indptr[r]
            buf[lc[ln]] = r
            lc[ln] += 1
        order, buf = buf, order
    return order


@njit(cache=True)
def order_by_two_keys(k1, k2, n_keys):
    """Order of the pairs (k1, k2) (keys in [0, n_keys)), by k1 then k2: two stable counting
    sorts (by k2, then by k1), O(pairs + keys)."""
    n = k1.shape[0]
    counts = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(n):
        counts[k2[i] + 1] += 1
    for k in range(n_keys):
        counts[k + 1] += counts[k]
    tmp = np.empty(n, dtype=np.int64)
    for i in range(n):
        key = k2[i]
        tmp[counts[key]] = i
        counts[key] += 1
    counts[:] = 0
    for i in range(n):
        counts[k1[i] + 1] += 1
    for k in range(n_keys):
        counts[k + 1] += counts[k]
    out = np.empty(n, dtype=np.int64)
    for q in range(n):
        i = tmp[q]
        key = k1[i]
        out[counts[key]] = i
        counts[key] += 1
    return out
