"""Basket lines in one compiled pass over the bytes (ASCII input).

Same rules as the general (pyarrow) path of ``readers._read_basket_lines``: lines end at
``\\n``; a line is trimmed of whitespace (ASCII 9-13 and 28-32, as ``str.isspace``); with the
whitespace separator a trimmed line splits on runs of whitespace, otherwise on the separator
byte and each token is trimmed; an empty token of a non-empty line is a blank item.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Tokens that are decimal integers below this (no sign, no leading zero) find their code in a
#: direct table instead of the hash table: the FIMI files' item ids, read at half the cost.
_DIRECT = 1 << 20


@njit(cache=True, inline="always")
def _is_space(c):
    return (9 <= c <= 13) or (28 <= c <= 32)


@njit(cache=True)
def _grow(a, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _first_seen(u_start, u_end, code, ts, te):
    """Record where the token of a new ``code`` first occurs (the arrays grown when full)."""
    if code >= u_start.shape[0]:
        u_start = _grow(u_start, 2 * code)
        u_end = _grow(u_end, 2 * code)
    u_start[code] = ts
    u_end[code] = te
    return u_start, u_end


@njit(cache=True)
def tokenize(buf, sep):
    """Tokens of the lines of ``buf`` (uint8). ``sep``: separator byte, or -1 for whitespace.

    Returns n_lines, items_read, blank, per kept token: line, start, end (int64) and its
    dictionary code (int32, in order of first appearance), and per code the start/end of its
    first occurrence."""
    n = buf.shape[0]
    # upper bound of tokens: separators + lines + 1
    cap = n // 6 + 16
    t_line = np.empty(cap, dtype=np.int32)
    t_code = np.empty(cap, dtype=np.int32)
    hcap = 4096  # grown with the vocabulary: a small table stays in cache
    h_code = np.full(hcap, -1, dtype=np.int32)
    h_hash = np.empty(hcap, dtype=np.uint64)
    h_key = np.empty(hcap, dtype=np.uint64)
    h_len = np.empty(hcap, dtype=np.int64)
    u_start = np.empty(1024, dtype=np.int64)
    u_end = np.empty(1024, dtype=np.int64)
    direct = np.full(_DIRECT, -1, dtype=np.int32)
    n_unique = 0
    n_tok = 0
    n_lines = 0
    items_read = 0
    blank = 0
    pos = 0
    while pos < n:
        # the line [pos, le)
        le = pos
        while le < n and buf[le] != 10:
            le += 1
        nxt = le + 1
        ls = pos
        while ls < le and _is_space(buf[ls]):
            ls += 1
        while le > ls and _is_space(buf[le - 1]):
            le -= 1
        line = n_lines
        n_lines += 1
        if ls == le:
            pos = nxt
            continue
        p = ls
        while p <= le:
            # one token [ts, te)
            if sep < 0:
                if p == le:
                    break
                ts = p
                te = p
                while te < le and not _is_space(buf[te]):
                    te += 1
                q = te
                while q < le and _is_space(buf[q]):
                    q += 1
                p = q
            else:
                ts = p
                te = p
                while te < le and buf[te] != sep:
                    te += 1
                p = te + 1
                while ts < te and _is_space(buf[ts]):
                    ts += 1
                while te > ts and _is_space(buf[te - 1]):
                    te -= 1
            items_read += 1
            if te == ts:
                blank += 1
                continue
            # a short decimal integer without a leading zero: its value indexes the direct table
            value = 0
            tl = te - ts
            if tl <= 6 and (buf[ts] != 48 or tl == 1):
                for k in range(ts, te):
                    d = buf[k] - 48
                    if d < 0 or d > 9:
                        value = -1
                        break
                    value = value * 10 + d
            else:
                value = -1
            if 0 <= value < _DIRECT:
                c = direct[value]
                if c < 0:
                    u_start, u_end = _first_seen(u_start, u_end, n_unique, ts, te)
                    c = direct[value] = n_unique
                    n_unique += 1
            else:
                # key: the first 8 bytes packed (compared without touching the buffer), hash of all
                h = _FNV
                key = np.uint64(0)
                for k in range(ts, te):
                    b = np.uint64(buf[k])
                    h = (h ^ b) * _PRIME
                    if k - ts < 8:
                        key |= b << np.uint64(8 * (k - ts))
                h ^= h >> np.uint64(32)
                tl = te - ts
                mask = np.uint64(hcap - 1)
                slot = (h * _MIX) & mask
                while True:
                    c = h_code[slot]
                    if c < 0:
                        u_start, u_end = _first_seen(u_start, u_end, n_unique, ts, te)
                        h_code[slot] = n_unique
                        h_hash[slot] = h
                        h_key[slot] = key
                        h_len[slot] = tl
                        c = n_unique
                        n_unique += 1
                        if 2 * n_unique > hcap:
                            # grow and rehash
                            ncap = 2 * hcap
                            n_code = np.full(ncap, -1, dtype=np.int32)
                            n_hash = np.empty(ncap, dtype=np.uint64)
                            n_key = np.empty(ncap, dtype=np.uint64)
                            n_len = np.empty(ncap, dtype=np.int64)
                            nmask = np.uint64(ncap - 1)
                            for s in range(hcap):
                                if h_code[s] >= 0:
                                    z = (h_hash[s] * _MIX) & nmask
                                    while n_code[z] >= 0:
                                        z = (z + np.uint64(1)) & nmask
                                    n_code[z] = h_code[s]
                                    n_hash[z] = h_hash[s]
                                    n_key[z] = h_key[s]
                                    n_len[z] = h_len[s]
                            h_code = n_code
                            h_hash = n_hash
                            h_key = n_key
                            h_len = n_len
                            hcap = ncap
                        break
                    if h_hash[slot] == h and h_key[slot] == key and h_len[slot] == tl:
                        if tl <= 8:
                            break
                        us = u_start[c]
                        same = True
                        for k in range(8, tl):
                            if buf[us + k] != buf[ts + k]:
                                same = False
                                break
                        if same:
                            break
                    slot = (slot + np.uint64(1)) & mask
            if n_tok >= t_line.shape[0]:
                t_line = _grow(t_line, 2 * n_tok)
                t_code = _grow(t_code, 2 * n_tok)
            t_line[n_tok] = line
            t_code[n_tok] = c
            n_tok += 1
        pos = nxt
    return (
        n_lines,
        items_read,
        blank,
        t_line[:n_tok].copy(),
        t_code[:n_tok].copy(),
        u_start[:n_unique].copy(),
        u_end[:n_unique].copy(),
    )


@njit(cache=True)
def group_lines(t_line, ids, n_lines):
    """CSR of the lines' item ids (sorted, unique; lines without items dropped): indptr,
    indices, and the number of repeated items merged. Tokens come in line order."""
    n = t_line.shape[0]
    indptr = np.zeros(n_lines + 1, dtype=np.int64)
    out = np.empty(n, dtype=np.int32)
    k = 0
    rows = 0
    dups = 0
    p = 0
    while p < n:
        line = t_line[p]
        q = p
        while q < n and t_line[q] == line:
            q += 1
        start = k
        for r in range(p, q):
            out[k] = ids[r]
            k += 1
        if k - start > 1:
            if k - start > 32:
                out[start:k] = np.sort(out[start:k])
            else:
                for i in range(start + 1, k):
                    v = out[i]
                    j = i - 1
                    while j >= start and out[j] > v:
                        out[j + 1] = out[j]
                        j -= 1
                    out[j + 1] = v
            w = start + 1
            for i in range(start + 1, k):
                if out[i] != out[w - 1]:
                    out[w] = out[i]
                    w += 1
            dups += k - w
            k = w
        rows += 1
        indptr[rows] = k
        p = q
    return indptr[: rows + 1].copy(), out[:k].copy(), dups
