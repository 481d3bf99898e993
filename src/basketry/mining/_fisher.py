"""One-sided Fisher exact test (hypergeometric upper tail), vectorised in numba.

The point probability follows Loader's saddle-point expansion (as R's ``dhyper``), which keeps
full relative precision where plain log-gamma differences lose digits to cancellation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LN_2PI = math.log(2.0 * math.pi)
# stirlerr(n) = log(n!) - log(sqrt(2 pi n) (n/e)^n) for n = 0..15 (lgamma is exact enough here)
_STIRLERR = np.array(
    [0.0]
    + [
        math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - 0.5 * _LN_2PI
        for n in range(1, 16)
    ]
)
# at n = 0 the limit is undefined but never used by the callers (x, n - x > 0 there)


@njit(cache=True)
def _stirlerr(n):
    if n <= 15.0:
        return _STIRLERR[int(n)]
    nn = n * n
    s0 = 1.0 / 12.0
    s1 = 1.0 / 360.0
    s2 = 1.0 / 1260.0
    s3 = 1.0 / 1680.0
    s4 = 1.0 / 1188.0
    if n > 500.0:
        return (s0 - s1 / nn) / n
    if n > 80.0:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35.0:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


@njit(cache=True)
def _bd0(x, np_):
    if abs(x - np_) < 0.1 * (x + np_):
        v = (x - np_) / (x + np_)
        s = (x - np_) * v
        ej = 2.0 * x * v
        v = v * v
        j = 1
        while j < 1000:
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
        return s
    return x * math.log(x / np_) + np_ - x


@njit(cache=True)
def _dbinom_raw(x, n, p, q):
    if p == 0.0:
        return 1.0 if x == 0.0 else 0.0
    if q == 0.0:
        return 1.0 if x == n else 0.0
    if x == 0.0:
        if n == 0.0:
            return 1.0
        lc = -_bd0(n, n * q) - n * p if p < 0.1 else n * math.log(q)
        return math.exp(lc)
    if x == n:
        lc = -_bd0(n, n * p) - n * q if q < 0.1 else n * math.log(p)
        return math.exp(lc)
    if x < 0.0 or x > n:
        return 0.0
    lc = _stirlerr(n) - _stirlerr(x) - _stirlerr(n - x) - _bd0(x, n * p) - _bd0(n - x, n * q)
    lf = _LN_2PI + math.log(x) + math.log1p(-x / n)
    return math.exp(lc - 0.5 * lf)


@njit(cache=True)
def _dhyper(x, r, b, n):
    """P(X = x), X ~ hypergeometric: r successes, b failures, n draws."""
    if x < 0.0 or x < n - b or x > r or x > n:
        return 0.0
    if n == 0.0:
        return 1.0 if x == 0.0 else 0.0
    p = n / (r + b)
    q = (r + b - n) / (r + b)
    p1 = _dbinom_raw(x, r, p, q)
    p2 = _dbinom_raw(n - x, b, p, q)
    p3 = _dbinom_raw(n, r + b, p, q)
    return p1 * p2 / p3


@njit(cache=True)
def fisher_upper(n_xy, n_x, n_y, n_baskets):
    """P(X >= n_xy) for X ~ hypergeometric(population N, n_x successes, n_y draws), per rule."""
    m = n_xy.shape[0]
    out = np.empty(m, dtype=np.float64)
    big_n = np.float64(n_baskets)
    for r in range(m):
        k = np.float64(n_xy[r])
        kk = np.float64(n_x[r])
        nn = np.float64(n_y[r])
        lo = max(0.0, nn - (big_n - kk))
        hi = min(kk, nn)
        if k <= lo:
            out[r] = 1.0
            continue
        if k > hi:
            out[r] = 0.0
            continue
        mode = math.floor((nn + 1.0) * (kk + 1.0) / (big_n + 2.0))
        if k > mode:
            # upper tail: terms decrease from k on
            t = _dhyper(k, kk, big_n - kk, nn)
            s = t
            i = k
            while i < hi and t > 1e-18 * s:
                t *= (kk - i) * (nn - i) / ((i + 1.0) * (big_n - kk - nn + i + 1.0))
                s += t
                i += 1.0
            out[r] = min(s, 1.0)
        else:
            # 1 - lower tail P(X <= k - 1): terms decrease from k - 1 downwards
            i = k - 1.0
            t = _dhyper(i, kk, big_n - kk, nn)
            s = t
            while i > lo and t > 1e-18 * s:
                t *= i * (big_n - kk - nn + i) / ((kk - i + 1.0) * (nn - i + 1.0))
                s += t
                i -= 1.0
            out[r] = max(0.0, 1.0 - s)
    return out
