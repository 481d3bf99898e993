"""Basket lines in one compiled pass over the bytes (ASCII input).

Same rules as the general (pyarrow) path of ``readers._read_basket_lines``: lines end at
``\\n``; a line is trimmed of whitespace (ASCII 9-13 and 28-32, as ``str.isspace``); with the
whitespace separator a trimmed line splits on runs of whitespace, otherwise on the separator
byte and each token is trimmed; an empty token of a non-empty line is a blank item.

With the whitespace separator those tokens are the maximal runs of non-whitespace bytes of a
line, and ``\\n`` (itself whitespace) only counts the lines: one loop reads each byte once, a
token's digits building its direct-table index as they are read. With another separator each
line is found, then trimmed, then split (the line's trimming decides whether a whitespace
separator at its ends makes blank items).
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
#: The longest token read as a direct-table index (10**6 - 1 < _DIRECT).
_DIRECT_DIGITS = 6


@njit(cache=True, inline="always")
def _is_space(c):
    return (9 <= c <= 13) or (28 <= c <= 32)


@njit(cache=True)
def _grow(a, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _rehash(table):
    """The hash table (code, hash, key, length per slot) at twice the capacity."""
    h_code, h_hash, h_key, h_len = table
    hcap = h_code.shape[0]
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
    return n_code, n_hash, n_key, n_len


@njit(cache=True)
def _tokens(buf, sep, pos, p, le, line, items_read, blank, n_tok, n_unique, t_line, t_code,
            direct, table, u_start, u_end, u_value):
    """The tokens from a state of the scan until the end, a full output array or a hash table
    to grow: the state then (pos, p, le, line, items_read, blank, n_tok, n_unique), rehash (the
    hash table is half full: grow it before the next token) and done.

    State: ``p`` the next byte (of a token, or of whitespace before one); ``line`` the index of
    the current line; with a separator, ``le`` the trimmed end of the current line (``p > le``:
    no token left in it) and ``pos`` the start of the next line.

    The arrays are replaced (grown) by the caller, between calls, never in this loop: a loop
    that may replace an array ran 2-3 times slower. The lookup of a token's code, shared by both
    modes, is inline in the loop for the same reason: as a function (even ``inline="always"``)
    it took and released a reference to each of its array arguments at each token."""
    n = buf.shape[0]
    t_cap = t_line.shape[0]
    u_cap = u_start.shape[0]
    h_code, h_hash, h_key, h_len = table
    mask = np.uint64(h_code.shape[0] - 1)
    rehash = False
    done = False
    while True:
        if sep < 0:
            # whitespace until the next token; \n, itself whitespace, counts the lines
            while p < n and _is_space(buf[p]):
                if buf[p] == 10:
                    line += 1
                p += 1
            if p == n:
                done = True
                break
            if n_tok == t_cap or n_unique == u_cap:
                break
            ts = p
            b = buf[p]
            # the digits build the direct-table index as they are read (a longer run wraps
            # around: it is not used)
            value = 0
            while 48 <= b <= 57:
                value = value * 10 + (b - 48)
                p += 1
                if p == n:
                    break
                b = buf[p]
            if p < n and not _is_space(b):
                # not a decimal integer: the rest of the token
                value = -1
                p += 1
                while p < n and not _is_space(buf[p]):
                    p += 1
            elif p - ts > _DIRECT_DIGITS or (buf[ts] == 48 and p - ts > 1):
                value = -1
            te = p
            items_read += 1
        else:
            if p > le:
                if pos >= n:
                    done = True
                    break
                # the next line [ls, le), trimmed
                le = pos
                while le < n and buf[le] != 10:
                    le += 1
                ls = pos
                pos = le + 1
                while ls < le and _is_space(buf[ls]):
                    ls += 1
                while le > ls and _is_space(buf[le - 1]):
                    le -= 1
                line += 1
                if ls == le:
                    p = le + 1
                    continue
                p = ls
            if n_tok == t_cap or n_unique == u_cap:
                break
            # one token [ts, te)
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
            if te - ts <= _DIRECT_DIGITS and (buf[ts] != 48 or te - ts == 1):
                for k in range(ts, te):
                    d = buf[k] - 48
                    if d < 0 or d > 9:
                        value = -1
                        break
                    value = value * 10 + d
            else:
                value = -1
        # the token's code, a new one (its first occurrence recorded) when not seen yet
        if value >= 0:
            # the direct table is never initialised (a sparse set): an entry counts only when
            # the code it holds records this value, so only the pages of values seen are touched
            c = direct[value]
            if c < 0 or c >= n_unique or u_value[c] != value:
                c = direct[value] = n_unique
                u_start[c] = ts
                u_end[c] = te
                u_value[c] = value
                n_unique += 1
        else:
            # key: the first 8 bytes packed (compared without touching the buffer), hash of all
            h = _FNV
            key = np.uint64(0)
            for k in range(ts, te):
                b8 = np.uint64(buf[k])
                h = (h ^ b8) * _PRIME
                if k - ts < 8:
                    key |= b8 << np.uint64(8 * (k - ts))
            h ^= h >> np.uint64(32)
            tl = te - ts
            slot = (h * _MIX) & mask
            while True:
                c = h_code[slot]
                if c < 0:
                    c = h_code[slot] = n_unique
                    h_hash[slot] = h
                    h_key[slot] = key
                    h_len[slot] = tl
                    u_start[c] = ts
                    u_end[c] = te
                    u_value[c] = -1
                    n_unique += 1
                    rehash = 2 * n_unique > h_code.shape[0]
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
        t_line[n_tok] = line
        t_code[n_tok] = c
        n_tok += 1
        if rehash:
            break
    return pos, p, le, line, items_read, blank, n_tok, n_unique, rehash, done


@njit(cache=True)
def tokenize(buf, sep):
    """Tokens of the lines of ``buf`` (uint8). ``sep``: separator byte, or -1 for whitespace.

    Returns n_lines, items_read, blank, per kept token its line and its dictionary code (int32,
    codes in order of first appearance), and per code the start/end (int64) of its first
    occurrence."""
    n = buf.shape[0]
    # room for every token when they average 3 bytes or more with their separator (grown
    # otherwise); pages past the tokens found are never touched, so they cost no memory
    cap = n // 3 + 16
    t_line = np.empty(cap, dtype=np.int32)
    t_code = np.empty(cap, dtype=np.int32)
    hcap = 4096  # grown with the vocabulary: a small table stays in cache
    table = (
        np.full(hcap, -1, dtype=np.int32),  # code
        np.empty(hcap, dtype=np.uint64),  # hash
        np.empty(hcap, dtype=np.uint64),  # key
        np.empty(hcap, dtype=np.int64),  # length
    )
    u_start = np.empty(1024, dtype=np.int64)
    u_end = np.empty(1024, dtype=np.int64)
    u_value = np.empty(1024, dtype=np.int32)  # per code: its direct-table value, or -1
    direct = np.empty(_DIRECT, dtype=np.int32)  # a sparse set: see _tokens
    n_unique = 0
    n_tok = 0
    items_read = 0
    blank = 0
    pos = 0
    # whitespace: line 0 from byte 0; separator: no line read yet
    p = 0 if sep < 0 else 1
    le = 0
    line = 0 if sep < 0 else -1
    while True:
        pos, p, le, line, items_read, blank, n_tok, n_unique, rehash, done = _tokens(
            buf, sep, pos, p, le, line, items_read, blank, n_tok, n_unique, t_line, t_code,
            direct, table, u_start, u_end, u_value)
        if done:
            break
        if rehash:
            table = _rehash(table)
        if n_tok == t_line.shape[0]:
            t_line = _grow(t_line, 2 * n_tok)
            t_code = _grow(t_code, 2 * n_tok)
        if n_unique == u_start.shape[0]:
            u_start = _grow(u_start, 2 * n_unique)
            u_end = _grow(u_end, 2 * n_unique)
            u_value = _grow(u_value, 2 * n_unique)
    n_lines = line + 1
    if sep < 0 and (n == 0 or buf[n - 1] == 10):
        # the whitespace scan counted the \n: a file ending in one has no empty line after it
        n_lines = line
    # views, not copies: a copy would touch as many fresh pages again (on a virtual machine a
    # fresh page costs ~3 us: a tenth of the read of a 4 MB file), and the untouched room
    # after the tokens costs nothing
    return (
        n_lines,
        items_read,
        blank,
        t_line[:n_tok],
        t_code[:n_tok],
        u_start[:n_unique],
        u_end[:n_unique],
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
    # views (see tokenize): a line's repeated items and empty lines leave unused room at most
    return indptr[: rows + 1], out[:k], dups
