"""Validation of mining parameters and exact threshold arithmetic."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from fractions import Fraction

from basketry.mining.errors import MiningError

ALGORITHMS = ("fpgrowth", "apriori")


def exact_fraction(value: float | int | Fraction) -> Fraction:
    """The exact decimal value a user meant: ``Fraction(repr(x))`` (0.1 is exactly 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    return Fraction(repr(float(value)))


def min_count_from_support(min_support: float | int, n_baskets: int) -> int:
    """The integer minimum count for ``min_support``.

    A float in (0, 1] is a fraction of the baskets: ``ceil(Fraction(repr(s)) * n_baskets)``,
    at least 1. An int >= 1 is an absolute count.
    """
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real):
        raise MiningError(
            f"min_support must be a fraction in (0, 1] or an absolute count >= 1 (int), "
            f"got {min_support!r}"
        )
    if isinstance(min_support, numbers.Integral):
        if int(min_support) < 1:
            raise MiningError(
                f"min_support as an absolute count must be >= 1, got {min_support!r}"
            )
        return int(min_support)
    value = float(min_support)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise MiningError(
            f"min_support as a fraction must be in (0, 1] (or an int count >= 1), "
            f"got {min_support!r}"
        )
    return max(1, math.ceil(exact_fraction(value) * n_baskets))


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
