"""Validation of mining parameters and exact threshold arithmetic."""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from basketry.mining._memory import memory_headroom
from basketry.mining.errors import MiningError

ALGORITHMS = ("fpgrowth", "apriori")


def exact_fraction(value: float | int | Fraction) -> Fraction:
    """The exact decimal value a user meant: ``Fraction(repr(x))`` (0.1 is exactly 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    return Fraction(repr(float(value)))


def min_count_from_support(min_support: float | int, n_baskets: int | None) -> int:
    """The integer minimum count for ``min_support`` on ``n_baskets`` baskets.

    A float in (0, 1] is a fraction of the baskets: ``ceil(Fraction(repr(s)) * n_baskets)``,
    at least 1. An int in [1, n_baskets] is an absolute count (no basket count known, None:
    any int >= 1, and a fraction gives the count on one basket).
    """
    on = "" if n_baskets is None else f" (the data has {n_baskets:,} baskets)"
    most = "" if n_baskets is None else f" <= {n_baskets:,}"
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real):
        raise MiningError(
            f"min_support must be a fraction in (0, 1] or an absolute count >= 1{most} (int), "
            f"got {min_support!r}{on}"
        )
    if isinstance(min_support, numbers.Integral):
        count = int(min_support)
        if count < 1:
            raise MiningError(f"min_support {min_support!r} is not a count >= 1 (an int is an "
                              f"absolute count; write a fraction with a point){on}")
        if n_baskets is not None and count > n_baskets:
            # no itemset can reach it: an empty model would be silently useless
            raise MiningError(
                f"min_support count {count:,} is larger than the number of baskets "
                f"({n_baskets:,}): give a count <= {n_baskets:,} or a fraction in (0, 1]"
            )
        return count
    value = float(min_support)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise MiningError(f"min_support {min_support!r} is not a fraction in (0, 1] (write a "
                          f"count as an integer >= 1{most}){on}")
    return max(1, math.ceil(exact_fraction(value) * (1 if n_baskets is None else n_baskets)))


def parse_min_support(text: str) -> float | int:
    """``min_support`` as a user writes it (an option, a variable, a grid value): ``"25"`` is
    an absolute count, ``"0.01"`` or ``"1.0"`` a fraction (so ``1`` is never ambiguous: an
    integer is a count, a number with a point or exponent is a fraction). The one text parser
    of thresholds; checked as :func:`min_count_from_support` checks numbers (``MiningError``)."""
    text = text.strip()
    value: float | int
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise MiningError(f"min_support {text!r} is not a number (a fraction with a "
                              "point such as 0.01, or a count written as an integer such as "
                              "25)") from None
    min_count_from_support(value, None)
    return value


def check_range(
    name: str,
    value: float | None,
    low: float,
    high: float | None,
    *,
    low_open: bool = False,
) -> float | None:
    """Check ``value`` (None allowed) lies in [low, high] (or (low, high]); return it as float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MiningError(f"{name} must be a number, got {value!r}")
    v = float(value)
    left = "(" if low_open else "["
    right = f"{high}]" if high is not None else "inf)"
    bad_low = v <= low if low_open else v < low
    bad_high = high is not None and v > high
    if math.isnan(v) or bad_low or bad_high or (high is None and math.isinf(v)):
        raise MiningError(f"{name} must be in {left}{low}, {right}, got {value!r}")
    return v


def check_max(name: str, value: int | None, minimum: int = 1) -> int | None:
    """A positive integer limit (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise MiningError(f"{name} must be an int >= {minimum} or None, got {value!r}")
    return int(value)


def check_n_jobs(n_jobs: int | None) -> int:
    """The number of threads ``n_jobs`` asks for: None or -1 = every core this process may
    use, else an int >= 1."""
    if n_jobs is None or (not isinstance(n_jobs, bool) and n_jobs == -1):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise MiningError(f"n_jobs must be an int >= 1, -1 (every core) or None (every core), "
                          f"got {n_jobs!r}")
    return int(n_jobs)


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise MiningError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return algorithm


def as_item_set(name: str, value: Iterable | None) -> list | None:
    """A user-given set of items (strings or ids); a bare string is one item."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise MiningError(f"{name} must be an iterable of items or None, got {value!r}") from None


# --- the memory budget -----------------------------------------------------------------------
# Without max_itemsets / max_rules, mining stops (BudgetExceeded, with advice) before its
# itemsets or rules would need more than MEMORY_FRACTION of the memory this process may still
# take (the smallest of MemAvailable, the cgroup limit and RLIMIT_AS/RLIMIT_DATA, see
# _memory.py). The other half is room for what is not counted: the baskets' FP-tree, the
# caller's copies, other processes.
MEMORY_BUDGET_ENV = "BASKETRY_MEMORY_BUDGET"
MEMORY_FRACTION = 0.5
MEMORY_OFF = ("off", "none", "unlimited")
# Peak bytes one itemset / one rule costs while it is mined and kept, measured (one process per
# case, n_jobs default = 2 threads, Python 3.11, numpy 2): the peak RSS (VmHWM, reset through
# /proc/self/clear_refs) of frequent_itemsets minus the RSS before it, over the itemsets found.
# Itemsets: 165-188 on chess.dat at supports 0.6-0.4 (255k-6.4M itemsets, 7.4-9.2 items
# each), 168 on mushroom.dat at 0.05 (3.8M); stopped by the budget, 64-128 per itemset of the
# limit (two threads can each overshoot it once). Rules: association_rules with every measure
# computed, 170-184 per rule on chess.dat at 0.6/0.5 and mushroom.dat at 0.1 (1.9M-10.6M
# rules), plus 32 for rules_table(). Rounded up.
BYTES_PER_ITEMSET = 200
BYTES_PER_RULE = 250
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?")


def parse_memory_size(value: int | str) -> int | None:
    """Bytes from an int or a string such as ``4G``, ``512M``, ``1.5GB``, ``2000000000``
    (units are powers of 1024); None for ``off`` (no budget)."""
    bad = MiningError(f"memory_budget must be a size such as 4G or 512M, or 'off', got {value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | str):
        raise bad
    if isinstance(value, numbers.Integral):
        size = float(value)
    else:
        text = value.strip().lower()
        if text in MEMORY_OFF:
            return None
        match = _SIZE.fullmatch(text)
        if match is None:
            raise bad
        size = float(match[1]) * _UNITS[match[2]]
    if not math.isfinite(size) or size < 1:
        raise bad
    return int(size)


def _gb(n: float) -> str:
    return f"{n / 2**30:.3g} GB" if n >= 2**30 else f"{n / 2**20:.3g} MB"


@dataclass(frozen=True)
class MemoryBudget:
    """The bytes mining may use (None: no budget) and where that figure came from."""

    bytes: int | None
    source: str

    def max_itemsets(self, given: int | None) -> Limit:
        """The itemset limit: ``given`` when set, else what the budget holds."""
        if given is not None or self.bytes is None:
            return Limit(given, None)
        n = max(1, self.bytes // BYTES_PER_ITEMSET)
        return Limit(n, f"the default: {BYTES_PER_ITEMSET} bytes an itemset in a memory budget "
                        f"of {_gb(self.bytes)}, {self.source}")

    def max_rules(self, given: int | None, used: int = 0) -> Limit:
        """The rule limit: ``given`` when set, else what the budget holds after the ``used``
        bytes (the itemsets the rules come from)."""
        if given is not None or self.bytes is None:
            return Limit(given, None)
        n = max(1, (self.bytes - used) // BYTES_PER_RULE)
        return Limit(n, f"the default: {BYTES_PER_RULE} bytes a rule in a memory budget of "
                        f"{_gb(self.bytes)}, {self.source}, less {_gb(used)} of itemsets")


@dataclass(frozen=True)
class Limit:
    """A limit on itemsets or rules (``value`` None: none), and how it was derived when it is
    the default (``note``; None when the user gave it)."""

    value: int | None
    note: str | None

    def describe(self, name: str) -> str:
        """``max_itemsets=1,000`` and, for a default, how it was derived and how to change it."""
        text = f"{name}={self.value:,}"
        if self.note is None:
            return text
        return f"{text} ({self.note}; set {name} or {MEMORY_BUDGET_ENV} to change it)"


def resolve_memory_budget(value: MemoryBudget | int | str | None = None) -> MemoryBudget:
    """The budget ``value`` asks for: a ``MemoryBudget`` as is, a size (bytes, ``4G``), ``off``,
    or None: ``$BASKETRY_MEMORY_BUDGET`` when set, else MEMORY_FRACTION of the memory this
    process may still take (no budget when that is unknown)."""
    if isinstance(value, MemoryBudget):
        return value
    if value is not None:
        size = parse_memory_size(value)
        return MemoryBudget(size, f"memory_budget={value!r}")
    env = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if env:
        try:
            size = parse_memory_size(env)
        except MiningError:
            raise MiningError(f"{MEMORY_BUDGET_ENV} must be a size such as 4G or 512M, or "
                              f"'off', got {env!r}") from None
        return MemoryBudget(size, f"{MEMORY_BUDGET_ENV}={env}")
    room = memory_headroom()
    if room is None:
        return MemoryBudget(None, "no memory limit known")
    size = max(1, int(room[0] * MEMORY_FRACTION))
    return MemoryBudget(size, f"{MEMORY_FRACTION:.0%} of the {_gb(room[0])} {room[1]} leaves")
