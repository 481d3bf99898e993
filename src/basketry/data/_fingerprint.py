"""Compiled kernels of the content fingerprint (``basketry.data.profile.fingerprint``)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def ranks_sorted(indptr: np.ndarray, ranks: np.ndarray) -> bool:
    for b in range(indptr.shape[0] - 1):
        for k in range(indptr[b] + 1, indptr[b + 1]):
            if ranks[k - 1] >= ranks[k]:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def sort_segments(indptr: np.ndarray, ranks: np.ndarray) -> None:
    for b in range(indptr.shape[0] - 1):
        lo, hi = indptr[b], indptr[b + 1]
        if hi - lo > 32:
            ranks[lo:hi].sort()
        else:
            for p in range(lo + 1, hi):
                v = ranks[p]
                q = p - 1
                while q >= lo and ranks[q] > v:
                    ranks[q + 1] = ranks[q]
                    q -= 1
                ranks[q + 1] = v


@numba.njit(cache=True, nogil=True)
def gather(indptr: np.ndarray, ranks: np.ndarray, perm: np.ndarray, nnz: int) -> np.ndarray:
    out = np.empty(nnz, dtype=np.uint32)
    pos = 0
    for j in range(perm.shape[0]):
        b = perm[j]
        for k in range(indptr[b], indptr[b + 1]):
            out[pos] = ranks[k]
            pos += 1
    return out


@numba.njit(cache=True, nogil=True)
def pack(
    indptr: np.ndarray, ranks: np.ndarray, baskets: np.ndarray, start: int, slots: int,
    bits: int,
) -> np.ndarray:
    """Per basket, ranks ``start .. start + slots - 1`` (each + 1, 0 past the end) packed
    big-end first into one uint64."""
    out = np.zeros(baskets.shape[0], dtype=np.uint64)
    for j in range(baskets.shape[0]):
        b = baskets[j]
        lo, hi = indptr[b] + start, indptr[b + 1]
        v = np.uint64(0)
        for s in range(slots):
            v <<= np.uint64(bits)
            if lo + s < hi:
                v |= np.uint64(ranks[lo + s]) + np.uint64(1)
        out[j] = v
    return out


@numba.njit(cache=True, nogil=True)
def sort_runs(sub: np.ndarray, key: np.ndarray, bounds: np.ndarray) -> None:
    """Sort ``sub`` and ``key`` in place by ``key`` within each run ``bounds[r]:bounds[r+1]``."""
    for r in range(bounds.shape[0] - 1):
        lo, hi = bounds[r], bounds[r + 1]
        if hi - lo <= 16:
            for p in range(lo + 1, hi):
                k, v = key[p], sub[p]
                q = p - 1
                while q >= lo and key[q] > k:
                    key[q + 1] = key[q]
                    sub[q + 1] = sub[q]
                    q -= 1
                key[q + 1] = k
                sub[q + 1] = v
        else:
            o = np.argsort(key[lo:hi])
            key[lo:hi] = key[lo:hi][o]
            sub[lo:hi] = sub[lo:hi][o]
