"""Planted changes for synthetic histories: a change of known kind, size and start day, applied
to the baskets drawn from that day on (``basketry generate --drift``), so that drift detection
can be measured against a known truth (``bench/drift.py``).

The kinds (``KIND:DAY[:SIZE]``):

- ``popularity:DAY:SIZE`` — the :data:`TOP_ITEMS` most popular items are drawn ``1 + SIZE``
  times as often among a basket's random items (the other items proportionally less).
- ``new-items:DAY:SHARE`` — :data:`NEW_ITEMS` items absent before the day (named after the
  catalogue, ``i<n_items>``...) take a ``SHARE`` of the random draws, evenly.
- ``break-rule:DAY[:N]`` — the N (default 1) most frequent planted patterns lose their last
  item (the *consequent*): it is moved from each basket holding the pattern to a random basket
  of the same period that has neither, so the item keeps its frequency but no longer comes
  with its antecedent (the rest of the pattern).
- ``basket-size:DAY:FACTOR`` — the mean number of random items per basket is multiplied by
  FACTOR (added draws above 1, dropped ones below; every basket keeps at least one item).

The changes draw from a random stream of their own (seeded by the spec's seed), so a history
without changes is exactly what it was before they existed, and the baskets before the day are
the same with or without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: How many of the most popular items a ``popularity`` change lifts.
TOP_ITEMS = 10
#: How many items a ``new-items`` change brings.
NEW_ITEMS = 10
KINDS = ("popularity", "new-items", "break-rule", "basket-size")
_NEEDS_SIZE = {"popularity": "SIZE", "new-items": "SHARE", "basket-size": "FACTOR"}
_STREAM = 0x5D21F7  # the changes' own random stream, beside the spec's seed


@dataclass(frozen=True)
class Drift:
    """One planted change: ``kind`` from :data:`KINDS`, from ``day`` (0 = the first day) on."""

    kind: str
    day: int
    size: float = 1.0

    def __str__(self) -> str:
        return f"{self.kind}:{self.day}:{self.size:g}"


def parse_drift(text: str) -> Drift:
    """``KIND:DAY[:SIZE]`` as a :class:`Drift`; ValueError in one line when it is not one."""
    parts = text.split(":")
    kind = parts[0]
    if kind not in KINDS or not 2 <= len(parts) <= 3:
        raise ValueError(f"drift {text!r}: expected KIND:DAY[:SIZE] with KIND one of "
                         f"{', '.join(KINDS)}")
    if kind in _NEEDS_SIZE and len(parts) != 3:
        raise ValueError(f"drift {text!r}: {kind} needs {kind}:DAY:{_NEEDS_SIZE[kind]}")
    try:
        day = int(parts[1])
        size = float(parts[2]) if len(parts) == 3 else 1.0
    except ValueError:
        raise ValueError(f"drift {text!r}: DAY must be a whole number and SIZE a number"
                         ) from None
    return Drift(kind, day, size)


def drift_problems(drifts: tuple[Drift, ...], days: int, mean_basket_size: float) -> list[str]:
    """What is wrong with ``drifts`` for a history of ``days`` days (empty when nothing)."""
    problems = []
    for d in drifts:
        if d.kind not in KINDS:
            problems.append(f"drift {d}: unknown kind (one of {', '.join(KINDS)})")
        elif not 0 <= d.day < days:
            problems.append(f"drift {d}: day must be in [0, {days})")
        elif d.kind == "popularity" and not d.size > 0:
            problems.append(f"drift {d}: SIZE must be > 0")
        elif d.kind == "new-items" and not 0 < d.size <= 1:
            problems.append(f"drift {d}: SHARE must be in (0, 1]")
        elif d.kind == "break-rule" and not (d.size >= 1 and d.size == int(d.size)):
            problems.append(f"drift {d}: the number of rules must be a whole number >= 1")
        elif d.kind == "basket-size" and not (d.size > 0 and d.size * mean_basket_size >= 1):
            problems.append(f"drift {d}: FACTOR must be > 0 and leave a mean basket size >= 1")
    return problems


@dataclass
class Entries:
    """The drawn (basket, item) pairs before each basket is sorted: ``own`` marks a random
    draw, ``pattern`` the planted pattern an entry belongs to (-1 for a random draw)."""

    basket: np.ndarray  # int64
    item: np.ndarray  # int32
    own: np.ndarray  # bool
    pattern: np.ndarray  # int64

    def keep(self, mask: np.ndarray) -> None:
        self.basket, self.item = self.basket[mask], self.item[mask]
        self.own, self.pattern = self.own[mask], self.pattern[mask]

    def add(self, basket: np.ndarray, item: np.ndarray) -> None:
        self.basket = np.concatenate((self.basket, basket.astype(np.int64)))
        self.item = np.concatenate((self.item, item.astype(np.int32)))
        self.own = np.concatenate((self.own, np.ones(basket.shape[0], dtype=bool)))
        self.pattern = np.concatenate((self.pattern, np.full(basket.shape[0], -1, np.int64)))


@dataclass(frozen=True)
class Catalogue:
    """What the changes need of the drawn history: popularity and the planted patterns."""

    cdf: np.ndarray  # cumulative draw probability over item ids
    top: np.ndarray  # item ids by popularity rank (the most popular first), TOP_ITEMS of them
    top_weight: np.ndarray  # their draw probabilities
    pattern_ptr: np.ndarray
    pattern_items: np.ndarray
    n_items: int
    mean_basket_size: float


def apply_drifts(entries: Entries, first_basket: np.ndarray, drifts: tuple[Drift, ...],
                 catalogue: Catalogue, n_baskets: int, seed: int) -> tuple[int, list[dict]]:
    """Apply ``drifts`` in order to ``entries`` (changed in place); ``first_basket[i]`` is the
    first basket of the day of ``drifts[i]`` (baskets are in time order). Returns the number of
    items the catalogue has now and what was planted (JSON, for the history's report)."""
    rng = np.random.Generator(np.random.PCG64([seed, _STREAM]))
    n_items = catalogue.n_items
    planted: list[dict[str, Any]] = []
    for d, first in zip(drifts, first_basket.tolist(), strict=True):
        after = entries.basket >= first
        record: dict[str, Any] = {"kind": d.kind, "day": d.day, "size": d.size,
                                  "first_basket": int(first)}
        if d.kind == "popularity":
            # a draw is replaced by a top item with probability r: the top's share P becomes
            # (1 - r) P + r = P (1 + SIZE), every other item's falls by (1 - r)
            p = float(catalogue.top_weight.sum())
            r = min(p * d.size / (1.0 - p), 1.0)
            hit = np.flatnonzero(after & entries.own & (rng.random(entries.item.shape[0]) < r))
            pick = np.searchsorted(np.cumsum(catalogue.top_weight) / p, rng.random(hit.size))
            entries.item[hit] = catalogue.top[np.minimum(pick, catalogue.top.size - 1)]
            record["items"] = [f"i{i}" for i in catalogue.top.tolist()]
        elif d.kind == "new-items":
            hit = np.flatnonzero(after & entries.own & (rng.random(entries.item.shape[0]) < d.size))
            entries.item[hit] = n_items + rng.integers(0, NEW_ITEMS, size=hit.size)
            record["items"] = [f"i{i}" for i in range(n_items, n_items + NEW_ITEMS)]
            n_items += NEW_ITEMS
        elif d.kind == "basket-size":
            _scale_sizes(entries, first, d.size, catalogue, n_baskets, rng)
        else:
            record["rules"] = _break_rules(entries, first, int(d.size), catalogue, n_baskets, rng)
        planted.append(record)
    return n_items, planted


def _scale_sizes(entries: Entries, first: int, factor: float, catalogue: Catalogue,
                 n_baskets: int, rng: np.random.Generator) -> None:
    """The mean number of random draws of the baskets from ``first`` on, times ``factor``."""
    mean = catalogue.mean_basket_size
    if factor >= 1:
        extra = rng.poisson((factor - 1.0) * mean, size=n_baskets - first)
        basket = np.repeat(np.arange(first, n_baskets, dtype=np.int64), extra)
        entries.add(basket, np.searchsorted(catalogue.cdf, rng.random(basket.size)))
        return
    # every basket keeps its first random draw (a basket has at least one); the others stay
    # with the probability that makes the mean 1 + q (mean - 1) = factor * mean
    q = (factor * mean - 1.0) / (mean - 1.0) if mean > 1 else 1.0
    own = np.flatnonzero(entries.own & (entries.basket >= first))
    own = own[np.argsort(entries.basket[own], kind="stable")]
    first_own = np.ones(own.size, dtype=bool)
    first_own[1:] = entries.basket[own[1:]] != entries.basket[own[:-1]]
    drop = own[~first_own & (rng.random(own.size) >= q)]
    mask = np.ones(entries.item.shape[0], dtype=bool)
    mask[drop] = False
    entries.keep(mask)


def _break_rules(entries: Entries, first: int, n_rules: int, catalogue: Catalogue,
                 n_baskets: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The consequent of the ``n_rules`` most frequent planted patterns (of two distinct items
    or more) moved out of the baskets from ``first`` on that hold the pattern."""
    ptr, items = catalogue.pattern_ptr, catalogue.pattern_items
    broken: list[dict[str, Any]] = []
    for p in range(ptr.shape[0] - 1):  # patterns are drawn Zipf: the lowest index most often
        if len(broken) == n_rules:
            break
        members = items[ptr[p] : ptr[p + 1]]
        consequent = int(members[-1])
        antecedent = sorted(set(members.tolist()) - {consequent})
        if not antecedent:
            continue
        move = np.flatnonzero((entries.pattern == p) & (entries.item == consequent)
                              & (entries.basket >= first))
        holders = np.zeros(n_baskets, dtype=bool)
        holders[entries.basket[(entries.item == consequent) | (entries.pattern == p)]] = True
        free = np.flatnonzero(~holders[first:]) + first
        if move.size and free.size:
            targets = rng.choice(free, size=min(move.size, free.size), replace=False)
            entries.basket[move[: targets.size]] = targets
            entries.pattern[move[: targets.size]] = -1
        broken.append({"antecedent": [f"i{i}" for i in antecedent],
                       "consequent": f"i{consequent}", "baskets_changed": int(move.size)})
    return broken
