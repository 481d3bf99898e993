"""Rule generation from frequent itemsets (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from basketry.mining._kernels import build_row_table, lookup_row


@njit(cache=True)
def _push(z_out, x_out, y_out, n, z, x, y):
    if n >= z_out.shape[0]:
        cap = 2 * z_out.shape[0]
        z2 = np.empty(cap, dtype=np.int64)
        x2 = np.empty(cap, dtype=np.int64)
        y2 = np.empty(cap, dtype=np.int64)
        z2[:n] = z_out[:n]
        x2[:n] = x_out[:n]
        y2[:n] = y_out[:n]
        z_out, x_out, y_out = z2, x2, y2
    z_out[n] = z
    x_out[n] = x
    y_out[n] = y
    return z_out, x_out, y_out


@njit(cache=True)
def _find(sorted_masks, n, key):
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_masks[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo < n and sorted_masks[lo] == key


@njit(cache=True)
def generate_rules(
    indptr,
    indices,
    counts,
    is_a,
    is_c,
    n_baskets,
    multi,
    max_cons_len,
    conf_floor,
    lift_floor,
    max_rules,
):
    """All rules X -> Y from the itemsets Z (rows of the CSR): Y a non-empty proper subset of Z
    in the consequent items (one item unless ``multi``), X = Z - Y within the antecedent items.

    Rules whose confidence is below ``conf_floor`` or lift below ``lift_floor`` (float, already
    lowered by a safety margin; exact filtering is done by the caller) are skipped; with
    ``multi``, consequents are grown level-wise and only from passing rules (confidence is
    anti-monotone in the consequent). Returns row ids (z, x, y) per rule and whether mining
    stopped because more than ``max_rules`` (>= 0) rules were found."""
    n = indptr.shape[0] - 1
    table, mask = build_row_table(indptr, indices)
    n_items = is_a.shape[0]
    single_row = np.full(n_items, -1, dtype=np.int64)
    for r in range(n):
        if indptr[r + 1] - indptr[r] == 1:
            single_row[indices[indptr[r]]] = r
    z_out = np.empty(1024, dtype=np.int64)
    x_out = np.empty(1024, dtype=np.int64)
    y_out = np.empty(1024, dtype=np.int64)
    n_out = 0
    buf = np.empty(64, dtype=np.int32)
    ybuf = np.empty(64, dtype=np.int32)
    cur = np.empty(16, dtype=np.int64)
    nxt = np.empty(16, dtype=np.int64)
    nf = np.float64(n_baskets)
    stopped = False
    for r in range(n):
        s = indptr[r]
        ln = indptr[r + 1] - s
        if ln < 2:
            continue
        n_z = counts[r]
        n_non_a = 0
        req = np.int64(0)
        allowed = np.int64(0)
        for q in range(ln):
            it = indices[s + q]
            if not is_a[it]:
                n_non_a += 1
                req |= np.int64(1) << q
            if is_c[it]:
                allowed |= np.int64(1) << q
        if allowed == 0:
            continue
        if not multi:
            if n_non_a > 1:
                continue
            for q in range(ln):
                if not (allowed >> q) & 1:
                    continue
                if req != 0 and req != (np.int64(1) << q):
                    continue
                w = 0
                for t in range(ln):
                    if t != q:
                        buf[w] = indices[s + t]
                        w += 1
                x = lookup_row(table, mask, indptr, indices, buf, ln - 1)
                y = single_row[indices[s + q]]
                if x < 0 or y < 0:
                    return z_out[:0], x_out[:0], y_out[:0], False, True
                if n_z < conf_floor * counts[x]:
                    continue
                if lift_floor > 0 and n_z * nf < lift_floor * (counts[x] * np.float64(counts[y])):
                    continue
                z_out, x_out, y_out = _push(z_out, x_out, y_out, n_out, r, x, y)
                n_out += 1
            if max_rules >= 0 and n_out > max_rules:
                stopped = True
                break
            continue
        if ln > 62:
            return z_out[:0], x_out[:0], y_out[:0], False, True
        # multi-consequent: level-wise growth of passing consequents (bit masks)
        n_cur = 0
        size = 1
        while True:
            n_next = 0
            cands_from = 1 if size == 1 else n_cur
            for ci in range(cands_from):
                if size == 1:
                    base = np.int64(0)
                    hb = -1
                else:
                    base = cur[ci]
                    hb = 63
                    while not (base >> hb) & 1:
                        hb -= 1
                for q in range(hb + 1, ln):
                    if not (allowed >> q) & 1:
                        continue
                    ym = base | (np.int64(1) << q)
                    if size > 1:
                        ok = True
                        for t in range(ln):
                            if (
                                (ym >> t) & 1
                                and t != q
                                and not _find(cur, n_cur, ym & ~(np.int64(1) << t))
                            ):
                                ok = False
                                break
                        if not ok:
                            continue
                    w = 0
                    wy = 0
                    for t in range(ln):
                        if (ym >> t) & 1:
                            ybuf[wy] = indices[s + t]
                            wy += 1
                        else:
                            buf[w] = indices[s + t]
                            w += 1
                    x = lookup_row(table, mask, indptr, indices, buf, w)
                    if x < 0:
                        return z_out[:0], x_out[:0], y_out[:0], False, True
                    if n_z < conf_floor * counts[x]:
                        continue
                    if n_next >= nxt.shape[0]:
                        bigger = np.empty(2 * nxt.shape[0], dtype=np.int64)
                        bigger[:n_next] = nxt[:n_next]
                        nxt = bigger
                    nxt[n_next] = ym
                    n_next += 1
                    if (req & ~ym) != 0:
                        continue
                    y = lookup_row(table, mask, indptr, indices, ybuf, wy)
                    if y < 0:
                        return z_out[:0], x_out[:0], y_out[:0], False, True
                    if lift_floor > 0 and n_z * nf < lift_floor * (
                        counts[x] * np.float64(counts[y])
                    ):
                        continue
                    z_out, x_out, y_out = _push(z_out, x_out, y_out, n_out, r, x, y)
                    n_out += 1
            if n_next == 0 or size + 1 > max_cons_len or size + 1 >= ln:
                break
            # the next level's masks, sorted for binary search
            tmp = np.sort(nxt[:n_next])
            if cur.shape[0] < n_next:
                cur = np.empty(nxt.shape[0], dtype=np.int64)
            cur[:n_next] = tmp
            n_cur = n_next
            size += 1
        if max_rules >= 0 and n_out > max_rules:
            stopped = True
            break
    return z_out[:n_out].copy(), x_out[:n_out].copy(), y_out[:n_out].copy(), stopped, False
