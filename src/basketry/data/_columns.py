"""Compiled helpers of the long-format readers: integer transaction ids to codes, and the CSR
grouping of (basket, item) pairs, both in linear time."""

from __future__ import annotations

import numpy as np
from numba import njit

_MIX = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
def int_codes(values):
    """Codes of integer ids in order of first appearance (int32) and the distinct ids in that
    order. Consecutive equal ids (rows grouped by transaction) cost no lookup."""
    n = values.shape[0]
    codes = np.empty(n, dtype=np.int32)
    cap = 1024
    h_key = np.empty(cap, dtype=np.int64)
    h_code = np.full(cap, -1, dtype=np.int32)
    uniq = np.empty(1024, dtype=np.int64)
    n_uniq = 0
    prev_code = -1
    prev = np.int64(0)
    for i in range(n):
        v = values[i]
        if prev_code >= 0 and v == prev:
            codes[i] = prev_code
            continue
        mask = np.uint64(cap - 1)
        slot = (np.uint64(v) * _MIX >> np.uint64(17)) & mask
        while True:
            c = h_code[slot]
            if c < 0:
                c = n_uniq
                h_code[slot] = c
                h_key[slot] = v
                if n_uniq >= uniq.shape[0]:
                    bigger = np.empty(2 * uniq.shape[0], dtype=np.int64)
                    bigger[:n_uniq] = uniq[:n_uniq]
                    uniq = bigger
                uniq[n_uniq] = v
                n_uniq += 1
                if 2 * n_uniq > cap:
                    ncap = 4 * cap
                    n_key = np.empty(ncap, dtype=np.int64)
                    n_code = np.full(ncap, -1, dtype=np.int32)
                    nmask = np.uint64(ncap - 1)
                    for s in range(cap):
                        if h_code[s] >= 0:
                            z = (np.uint64(h_key[s]) * _MIX >> np.uint64(17)) & nmask
                            while n_code[z] >= 0:
                                z = (z + np.uint64(1)) & nmask
                            n_code[z] = h_code[s]
                            n_key[z] = h_key[s]
                    h_key = n_key
                    h_code = n_code
                    cap = ncap
                break
            if h_key[slot] == v:
                break
            slot = (slot + np.uint64(1)) & mask
        codes[i] = c
        prev = v
        prev_code = c
    return codes, uniq[:n_uniq].copy()


@njit(cache=True)
def group_pairs(basket, item, n_baskets):
    """CSR of the unique (basket, item) pairs, baskets without items removed: indptr (int64),
    indices (int32, sorted within a basket), the basket number of each row, duplicates merged.
    A counting sort by basket, then a sort of each (short) basket."""
    n = basket.shape[0]
    start = np.zeros(n_baskets + 1, dtype=np.int64)
    for i in range(n):
        start[basket[i] + 1] += 1
    for b in range(n_baskets):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    out = np.empty(n, dtype=np.int32)
    for i in range(n):
        b = basket[i]
        out[fill[b]] = item[i]
        fill[b] += 1
    indptr = np.zeros(n_baskets + 1, dtype=np.int64)
    present = np.empty(n_baskets, dtype=np.int64)
    rows = 0
    k = 0
    for b in range(n_baskets):
        s = start[b]
        e = start[b + 1]
        if e == s:
            continue
        if e - s > 32:
            out[s:e] = np.sort(out[s:e])
        else:
            for i in range(s + 1, e):
                v = out[i]
                j = i - 1
                while j >= s and out[j] > v:
                    out[j + 1] = out[j]
                    j -= 1
                out[j + 1] = v
        last = out[s]
        out[k] = last
        k += 1
        for i in range(s + 1, e):
            v = out[i]
            if v != last:
                out[k] = v
                k += 1
                last = v
        present[rows] = b
        rows += 1
        indptr[rows] = k
    return indptr[: rows + 1].copy(), out[:k].copy(), present[:rows].copy(), n - k
