"""Shared fixtures for the mining tests: the real data sets (read only) and brute-force helpers."""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import cache

from basketry.data.baskets import Baskets
from tests.shared_data import shared_file


@cache
def load_lists(name: str) -> list[list[str]]:
    path = shared_file(name)
    sep = "," if name.endswith(".csv") else None
    with path.open() as f:
        return [line.strip().split(sep) for line in f if line.strip()]


@cache
def load_baskets(name: str) -> Baskets:
    return Baskets.from_lists(load_lists(name))


def brute_itemsets(rows: list[frozenset[int]], n_items: int, min_count: int, max_len=None):
    """Every frequent itemset (sorted id tuple -> count) by enumeration."""
    out: dict[tuple[int, ...], int] = {}
    top = n_items if max_len is None else min(max_len, n_items)
    for k in range(1, top + 1):
        found = False
        for combo in itertools.combinations(range(n_items), k):
            s = set(combo)
            c = sum(1 for r in rows if s <= r)
            if c >= min_count:
                out[combo] = c
                found = True
        if not found:
            break
    return out


def brute_rules(itemsets: dict, n: int, *, multi: bool, min_conf=None, min_lift=None):
    """Rules (antecedent, consequent) -> (n_xy, n_x, n_y) with exact Fraction thresholds."""
    out = {}
    conf = None if min_conf is None else Fraction(repr(min_conf))
    lift = None if min_lift is None else Fraction(repr(min_lift))
    for z, nz in itemsets.items():
        if len(z) < 2:
            continue
        sizes = range(1, len(z)) if multi else [1]
        for k in sizes:
            for y in itertools.combinations(z, k):
                x = tuple(i for i in z if i not in y)
                nx, ny = itemsets[x], itemsets[y]
                if conf is not None and Fraction(nz, nx) < conf:
                    continue
                if lift is not None and Fraction(nz * n, nx * ny) < lift:
                    continue
                out[(x, y)] = (nz, nx, ny)
    return out


def rows_of(b: Baskets) -> list[frozenset[int]]:
    return [
        frozenset(b.indices[b.indptr[i] : b.indptr[i + 1]].tolist()) for i in range(b.n_baskets)
    ]
