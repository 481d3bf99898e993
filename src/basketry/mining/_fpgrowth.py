"""FP-Growth on flat arrays (numba).

The FP-tree is three parallel arrays (parent, item, count); a per-item header lists the nodes of
each item. Items are recoded so that id 0 is the most frequent; a path from the root has strictly
increasing ids. Mining is depth-first with an explicit stack of conditional trees that live in
one growable arena: a conditional tree is pushed on top of the arena and released when its
frame is popped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_HMULT = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _slot(parent, item, mask):
    key = (np.uint64(parent + 1) << np.uint64(32)) | np.uint64(item)
    h = key * _HMULT
    return (h ^ (h >> np.uint64(31))) & mask


@njit(cache=True)
def _row_less(indptr, indices, a, b, d):
    """Row a < row b lexicographically, both equal before depth d (a shorter row first)."""
    pa = indptr[a] + d
    pb = indptr[b] + d
    ea = indptr[a + 1]
    eb = indptr[b + 1]
    while pa < ea and pb < eb:
        x = indices[pa]
        y = indices[pb]
        if x != y:
            return x < y
        pa += 1
        pb += 1
    return (ea - pa) < (eb - pb)


@njit(cache=True)
def sort_rows(indptr, indices, n_items):
    """Lexicographic order of the non-empty rows (ids ascending within a row): MSD radix sort,
    a counting sort by the item at the current depth for large ranges, a comparison sort of
    the keys for middle ones, insertion sort for small ones."""
    n = indptr.shape[0] - 1
    m = 0
    for r in range(n):
        if indptr[r + 1] > indptr[r]:
            m += 1
    order = np.empty(m, dtype=np.int64)
    k = 0
    for r in range(n):
        if indptr[r + 1] > indptr[r]:
            order[k] = r
            k += 1
    buf = np.empty(m, dtype=np.int64)
    keys = np.empty(m, dtype=np.int32)
    cnt = np.zeros(n_items + 2, dtype=np.int64)
    st_lo = np.empty(64, dtype=np.int64)
    st_hi = np.empty(64, dtype=np.int64)
    st_d = np.empty(64, dtype=np.int64)
    sp = 0
    st_lo[0] = 0
    st_hi[0] = m
    st_d[0] = 0
    while sp >= 0:
        lo = st_lo[sp]
        hi = st_hi[sp]
        d = st_d[sp]
        sp -= 1
        size = hi - lo
        if size <= 24:
            for i in range(lo + 1, hi):
                v = order[i]
                j = i - 1
                while j >= lo and _row_less(indptr, indices, v, order[j], d):
                    order[j + 1] = order[j]
                    j -= 1
                order[j + 1] = v
            continue
        for i in range(lo, hi):
            r = order[i]
            p = indptr[r] + d
            keys[i] = indices[p] if p < indptr[r + 1] else -1
        if size >= 2 * n_items:
            cnt[:] = 0
            for i in range(lo, hi):
                cnt[keys[i] + 2] += 1
            for v in range(n_items + 1):
                cnt[v + 1] += cnt[v]
            for i in range(lo, hi):
                kk = keys[i] + 1
                buf[lo + cnt[kk]] = order[i]
                cnt[kk] += 1
            order[lo:hi] = buf[lo:hi]
            for i in range(lo, hi):
                r = order[i]
                p = indptr[r] + d
                keys[i] = indices[p] if p < indptr[r + 1] else -1
        else:
            # sort (key, position) packed in one int64 (np.sort: np.argsort here crashed when
            # loaded from numba's cache, numba 0.68)
            packed = np.empty(size, dtype=np.int64)
            for i in range(size):
                packed[i] = (np.int64(keys[lo + i] + 1) << 32) | i
            packed.sort()
            for i in range(size):
                buf[lo + i] = order[lo + (packed[i] & 0xFFFFFFFF)]
            order[lo:hi] = buf[lo:hi]
            for i in range(size):
                keys[lo + i] = np.int32((packed[i] >> 32) - 1)
        # ranges of equal keys go one level deeper (rows that ended are equal: done)
        g = lo
        while g < hi:
            h = g + 1
            while h < hi and keys[h] == keys[g]:
                h += 1
            if keys[g] >= 0 and h - g > 1:
                sp += 1
                if sp >= st_lo.shape[0]:
                    st_lo = _grow_i64(st_lo, 2 * sp)
                    st_hi = _grow_i64(st_hi, 2 * sp)
                    st_d = _grow_i64(st_d, 2 * sp)
                st_lo[sp] = g
                st_hi[sp] = h
                st_d[sp] = d + 1
            g = h
    return order


@njit(cache=True)
def build_tree(indptr, indices, n_items):
    """FP-tree of recoded baskets (ids ascending within each basket), built from the baskets in
    lexicographic order: each shares its longest common prefix with the previous one, so the
    tree grows along one path and needs no hash table.

    Returns parent, item, count (int32; arrays with room after the tree, for the conditional
    trees of ``mine``), the number of tree nodes, header start offsets (per item), header node
    ids (with room after them too), and per-item work weights (sum of node depths)."""
    order = sort_rows(indptr, indices, n_items)
    m = order.shape[0]
    # pass 1: the number of nodes
    n_nodes = 0
    prev = -1
    for q in range(m):
        r = order[q]
        s = indptr[r]
        ln = indptr[r + 1] - s
        lcp = 0
        if prev >= 0:
            ps = indptr[prev]
            pl = indptr[prev + 1] - ps
            while lcp < ln and lcp < pl and indices[ps + lcp] == indices[s + lcp]:
                lcp += 1
        n_nodes += ln - lcp
        prev = r
    cap = n_nodes + max(1024, n_nodes // 4)
    parent = np.empty(cap, dtype=np.int32)
    item = np.empty(cap, dtype=np.int32)
    count = np.zeros(cap, dtype=np.int32)
    weight = np.zeros(n_items, dtype=np.float64)
    hstart = np.zeros(n_items + 1, dtype=np.int64)
    path = np.empty(64, dtype=np.int32)
    n = 0
    prev = -1
    for q in range(m):
        r = order[q]
        s = indptr[r]
        ln = indptr[r + 1] - s
        if ln > path.shape[0]:
            path = _grow_i32(path, 2 * ln)
        lcp = 0
        if prev >= 0:
            ps = indptr[prev]
            pl = indptr[prev + 1] - ps
            while lcp < ln and lcp < pl and indices[ps + lcp] == indices[s + lcp]:
                lcp += 1
        for d in range(lcp):
            count[path[d]] += 1
        cur = path[lcp - 1] if lcp > 0 else -1
        for d in range(lcp, ln):
            it = indices[s + d]
            parent[n] = cur
            item[n] = it
            count[n] = 1
            hstart[it + 1] += 1
            weight[it] += d + 1
            path[d] = n
            cur = n
            n += 1
        prev = r
    for i in range(n_items):
        hstart[i + 1] += hstart[i]
    fill = hstart[:-1].copy()
    hnodes = np.empty(cap, dtype=np.int32)
    for v in range(n):
        it = item[v]
        hnodes[fill[it]] = v
        fill[it] += 1
    return parent, item, count, n, hstart, hnodes, weight


@njit(cache=True)
def _grow_i32(a, need):
    if need <= a.shape[0]:
        return a
    cap = a.shape[0] * 2
    while cap < need:
        cap *= 2
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _grow_i64(a, need):
    if need <= a.shape[0]:
        return a
    cap = a.shape[0] * 2
    while cap < need:
        cap *= 2
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _emit(o_len, o_cnt, o_items, n_out, n_oitems, prefix, ln, extra, n_extra, count):
    """Append the itemset prefix[:ln] + extra[:n_extra] with ``count`` to the output."""
    if n_out >= o_len.shape[0]:
        o_len = _grow_i32(o_len, n_out + 1)
        o_cnt = _grow_i64(o_cnt, n_out + 1)
    total = ln + n_extra
    o_items = _grow_i32(o_items, n_oitems + total)
    o_len[n_out] = total
    o_cnt[n_out] = count
    for q in range(ln):
        o_items[n_oitems + q] = prefix[q]
    for q in range(n_extra):
        o_items[n_oitems + ln + q] = extra[q]
    return o_len, o_cnt, o_items


@njit(cache=True, nogil=True)
def mine(
    a_parent,
    a_item,
    a_count,
    n0,
    g_hstart,
    g_hnodes,
    item_counts,
    top_lo,
    top_hi,
    min_count,
    max_len,
    is_non_a,
    limit_non_a,
    max_out,
):
    """Mine all frequent itemsets whose largest (least frequent) item is in [top_lo, top_hi).

    ``item_counts``: support of each recoded item. ``is_non_a``: per item, 1 if outside the
    allowed antecedents; with ``limit_non_a`` itemsets hold at most one such item. ``max_out``:
    stop (returning stopped=True) once more than this many itemsets were found (-1: no limit).
    ``a_parent``, ``a_item``, ``a_count``, ``g_hnodes``: the tree of ``build_tree`` in its
    first ``n0`` nodes (never written), the rest scratch.
    Returns (lengths int32, items int32 flat in mining order: decreasing ids, counts, stopped)."""
    n_items = item_counts.shape[0]
    # arena of tree nodes: the global tree [0, n0), then the conditional trees (the arrays come
    # from build_tree with room after the tree; grown here when needed)
    h_nodes = g_hnodes
    # item arena: per frame, its frequent items (ascending), supports, header ranges
    i_cap = max(16, 4 * n_items)
    i_item = np.empty(i_cap, dtype=np.int32)
    i_count = np.empty(i_cap, dtype=np.int64)
    i_hs = np.empty(i_cap, dtype=np.int64)
    i_he = np.empty(i_cap, dtype=np.int64)
    for i in range(n_items):
        i_item[i] = i
        i_count[i] = item_counts[i]
        i_hs[i] = g_hstart[i]
        i_he[i] = g_hstart[i + 1]
    # frames
    f_cap = 64
    f_ilo = np.empty(f_cap, dtype=np.int64)
    f_pos = np.empty(f_cap, dtype=np.int64)
    f_atop = np.empty(f_cap, dtype=np.int64)
    f_htop = np.empty(f_cap, dtype=np.int64)
    f_itop = np.empty(f_cap, dtype=np.int64)
    f_nona = np.empty(f_cap, dtype=np.int64)
    f_stop = np.empty(f_cap, dtype=np.int64)
    # scratch
    cnt = np.zeros(n_items, dtype=np.int64)
    local = np.full(n_items, -1, dtype=np.int64)
    touched = np.empty(n_items, dtype=np.int32)
    prefix = np.empty(n_items + 1, dtype=np.int32)
    # hash of (parent, item) -> child for building conditional trees; grown on demand (a
    # conditional tree never has more nodes than the global tree)
    hmax = 16
    while hmax < 2 * n0 + 16:
        hmax *= 2
    hcap = min(hmax, 1 << 16)
    hkey_parent = np.full(hcap, -2, dtype=np.int32)
    hkey_item = np.empty(hcap, dtype=np.int32)
    hval = np.empty(hcap, dtype=np.int32)
    used_slots = np.empty(1024, dtype=np.int64)
    path = np.empty(n_items + 1, dtype=np.int32)
    lcount = np.zeros(n_items + 1, dtype=np.int64)
    extra = np.empty(n_items + 1, dtype=np.int32)
    chain_node = np.empty(n_items + 1, dtype=np.int64)
    next_pos = np.empty(n_items + 1, dtype=np.int64)
    nona_at = np.empty(n_items + 1, dtype=np.int64)
    # output
    o_len = np.empty(1024, dtype=np.int32)
    o_cnt = np.empty(1024, dtype=np.int64)
    o_items = np.empty(4096, dtype=np.int32)
    n_out = 0
    n_oitems = 0
    stopped = False

    sp = 0
    f_ilo[0] = 0
    f_pos[0] = top_hi - 1
    f_stop[0] = top_lo
    f_atop[0] = n0
    f_htop[0] = n0
    f_itop[0] = n_items
    f_nona[0] = 0
    while sp >= 0:
        k = f_pos[sp]
        if k < f_stop[sp]:
            sp -= 1
            continue
        f_pos[sp] = k - 1
        idx = f_ilo[sp] + k
        j = i_item[idx]
        depth = sp  # prefix[0:sp] are the items of the enclosing frames
        prefix[depth] = j
        # emit prefix[0..depth]
        ln = depth + 1
        if n_out >= o_len.shape[0]:
            o_len = _grow_i32(o_len, n_out + 1)
            o_cnt = _grow_i64(o_cnt, n_out + 1)
        o_items = _grow_i32(o_items, n_oitems + ln)
        o_len[n_out] = ln
        o_cnt[n_out] = i_count[idx]
        for q in range(ln):
            o_items[n_oitems + q] = prefix[q]
        n_out += 1
        n_oitems += ln
        if max_out >= 0 and n_out > max_out:
            stopped = True
            break
        if max_len >= 0 and ln >= max_len:
            continue
        nona = f_nona[sp] + is_non_a[j]
        restrict = limit_non_a and nona >= 1
        # pass 1: conditional item supports
        hs = i_hs[idx]
        he = i_he[idx]
        n_touched = 0
        n_elems = 0
        for q in range(hs, he):
            v = h_nodes[q]
            c = a_count[v]
            p = a_parent[v]
            while p != -1:
                it = a_item[p]
                if not (restrict and is_non_a[it]):
                    if cnt[it] == 0:
                        touched[n_touched] = it
                        n_touched += 1
                    cnt[it] += c
                    n_elems += 1
                p = a_parent[p]
        n_freq = 0
        for q in range(n_touched):
            it = touched[q]
            if cnt[it] >= min_count:
                touched[n_freq] = it
                n_freq += 1
            else:
                cnt[it] = 0
        if n_freq == 0:
            continue
        if n_freq == 1 or (max_len >= 0 and ln + 1 >= max_len):
            # the conditional tree would only yield these itemsets: no need to build it
            for q in range(n_freq):
                it = touched[q]
                extra[0] = it
                o_len, o_cnt, o_items = _emit(
                    o_len, o_cnt, o_items, n_out, n_oitems, prefix, ln, extra, 1, cnt[it]
                )
                n_out += 1
                n_oitems += ln + 1
                cnt[it] = 0
            if max_out >= 0 and n_out > max_out:
                stopped = True
                break
            continue
        freq = np.sort(touched[:n_freq])
        # new frame's item arena
        ilo = f_itop[sp]
        if ilo + n_freq > i_item.shape[0]:
            i_item = _grow_i32(i_item, ilo + n_freq)
            i_count = _grow_i64(i_count, ilo + n_freq)
            i_hs = _grow_i64(i_hs, ilo + n_freq)
            i_he = _grow_i64(i_he, ilo + n_freq)
        for q in range(n_freq):
            it = freq[q]
            i_item[ilo + q] = it
            i_count[ilo + q] = cnt[it]
            cnt[it] = 0
            local[it] = q
            lcount[q] = 0
        # pass 2: insert the filtered prefix paths into a new tree on top of the arena
        base = f_atop[sp]
        if base + n_elems > a_parent.shape[0]:
            a_parent = _grow_i32(a_parent, base + n_elems)
            a_item = _grow_i32(a_item, base + n_elems)
            a_count = _grow_i32(a_count, base + n_elems)
        if n_elems > used_slots.shape[0]:
            used_slots = _grow_i64(used_slots, n_elems)
        m = 16
        while m < 2 * n_elems + 16:
            m *= 2
        if m > hmax:
            m = hmax
        if m > hcap:
            hcap = m
            hkey_parent = np.full(hcap, -2, dtype=np.int32)
            hkey_item = np.empty(hcap, dtype=np.int32)
            hval = np.empty(hcap, dtype=np.int32)
        mask = np.uint64(m - 1)
        top = base
        for q in range(hs, he):
            v = h_nodes[q]
            c = a_count[v]
            p = a_parent[v]
            plen = 0
            while p != -1:
                it = a_item[p]
                if local[it] >= 0:
                    path[plen] = it
                    plen += 1
                p = a_parent[p]
            cur = -1
            for r in range(plen - 1, -1, -1):
                it = path[r]
                h = _slot(cur, it, mask)
                while True:
                    kp = hkey_parent[h]
                    if kp == -2:
                        hkey_parent[h] = cur
                        hkey_item[h] = it
                        hval[h] = top
                        used_slots[top - base] = h
                        a_parent[top] = cur
                        a_item[top] = it
                        a_count[top] = c
                        lcount[local[it]] += 1
                        cur = top
                        top += 1
                        break
                    if kp == cur and hkey_item[h] == it:
                        cur = hval[h]
                        a_count[cur] += c
                        break
                    h = (h + np.uint64(1)) & mask
        for q in range(top - base):
            hkey_parent[used_slots[q]] = -2
        # header of the new tree
        hlo = f_htop[sp]
        nn = top - base
        if hlo + nn > h_nodes.shape[0]:
            h_nodes = _grow_i32(h_nodes, hlo + nn)
        acc = hlo
        for q in range(n_freq):
            i_hs[ilo + q] = acc
            i_he[ilo + q] = acc
            acc += lcount[q]
        for v in range(base, top):
            li = ilo + local[a_item[v]]
            h_nodes[i_he[li]] = v
            i_he[li] += 1
        # a single path: every combination of its items, without recursion
        chain = nn == n_freq
        if chain:
            for v in range(base, top):
                pv = a_parent[v]
                want = local[a_item[v]] - 1
                if (pv == -1 and want != -1) or (pv != -1 and local[a_item[pv]] != want):
                    chain = False
                    break
        for q in range(n_freq):
            local[freq[q]] = -1
        if chain:
            for q in range(n_freq):
                chain_node[q] = h_nodes[i_hs[ilo + q]]
            kd = 0
            next_pos[0] = 0
            while kd >= 0:
                pp = next_pos[kd]
                if pp >= n_freq:
                    kd -= 1
                    continue
                next_pos[kd] = pp + 1
                it = a_item[chain_node[pp]]
                na = (nona if kd == 0 else nona_at[kd - 1]) + is_non_a[it]
                if limit_non_a and na >= 2:
                    continue
                nona_at[kd] = na
                extra[kd] = it
                o_len, o_cnt, o_items = _emit(
                    o_len, o_cnt, o_items, n_out, n_oitems, prefix, ln, extra, kd + 1,
                    a_count[chain_node[pp]],
                )
                n_out += 1
                n_oitems += ln + kd + 1
                if max_out >= 0 and n_out > max_out:
                    break
                if (max_len < 0 or ln + kd + 1 < max_len) and pp + 1 < n_freq:
                    kd += 1
                    next_pos[kd] = pp + 1
            if max_out >= 0 and n_out > max_out:
                stopped = True
                break
            continue
        # push the frame
        sp += 1
        if sp >= f_cap:
            f_cap *= 2
            f_ilo = _grow_i64(f_ilo, f_cap)
            f_pos = _grow_i64(f_pos, f_cap)
            f_atop = _grow_i64(f_atop, f_cap)
            f_htop = _grow_i64(f_htop, f_cap)
            f_itop = _grow_i64(f_itop, f_cap)
            f_nona = _grow_i64(f_nona, f_cap)
            f_stop = _grow_i64(f_stop, f_cap)
        f_ilo[sp] = ilo
        f_pos[sp] = n_freq - 1
        f_stop[sp] = 0
        f_atop[sp] = top
        f_htop[sp] = hlo + nn
        f_itop[sp] = ilo + n_freq
        f_nona[sp] = nona
    return o_len[:n_out].copy(), o_items[:n_oitems].copy(), o_cnt[:n_out].copy(), stopped
