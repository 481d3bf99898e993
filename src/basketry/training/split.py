"""Train/test splits of baskets: by time when the baskets have timestamps, else seeded random.

Both parts keep the full vocabulary of the input (ids are shared); ``training_vocabulary``
then narrows the training part to the items it contains, as a deployed model would know them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from basketry.data import Baskets, DataError


@dataclass(frozen=True)
class Split:
    """A train/test split and how it was made (JSON-ready ``describe()``)."""

    train: Baskets
    test: Baskets
    method: str  # "time" or "random"
    cutoff: np.datetime64 | None = None  # time split: train < cutoff <= test
    test_days: float | None = None
    test_fraction: float | None = None
    seed: int | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "n_train": self.train.n_baskets,
                               "n_test": self.test.n_baskets}
        if self.method == "time":
            out.update(cutoff=str(self.cutoff), test_days=self.test_days)
        else:
            out.update(test_fraction=self.test_fraction, seed=self.seed)
        return out


def time_split(baskets: Baskets, test_days: float) -> Split:
    """Train on baskets before ``last timestamp - test_days``, test on those at or after it."""
    if baskets.timestamps is None:
        raise DataError(f"{baskets.source or 'the data'} has no timestamps; a time split "
                        "needs them (use a random split: --test-fraction)")
    if not test_days > 0:
        raise DataError(f"test days must be > 0, got {test_days}")
    stamps = baskets.timestamps.astype("datetime64[ns]")
    if np.isnat(stamps).any():
        raise DataError("some baskets have no timestamp; a time split needs all of them")
    cutoff = stamps.max() - np.timedelta64(round(test_days * 86_400e9), "ns")
    test = stamps >= cutoff
    _check_sizes(int((~test).sum()), int(test.sum()), f"{test_days:g} test days")
    return Split(train=baskets.subset(~test), test=baskets.subset(test), method="time",
                 cutoff=cutoff, test_days=float(test_days))


def random_split(baskets: Baskets, test_fraction: float, seed: int = 0) -> Split:
    """Each basket goes to the test part with probability ``test_fraction`` (seeded; the same
    seed and data give the same split)."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test fraction must be in (0, 1), got {test_fraction}")
    draw = np.random.default_rng(seed).random(baskets.n_baskets)
    test = draw < test_fraction
    _check_sizes(int((~test).sum()), int(test.sum()), f"test fraction {test_fraction:g}")
    return Split(train=baskets.subset(~test), test=baskets.subset(test), method="random",
                 test_fraction=float(test_fraction), seed=int(seed))


def split_baskets(
    baskets: Baskets,
    *,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    default_test_days: float = 30.0,
    default_test_fraction: float = 0.2,
) -> Split:
    """The split the ``train`` command makes: by time when asked with ``test_days`` or when the
    data has timestamps and no fraction is given; by a seeded random draw otherwise."""
    if test_days is not None and test_fraction is not None:
        raise DataError("give either test days (time split) or a test fraction, not both")
    if test_days is not None:
        return time_split(baskets, test_days)
    if test_fraction is None and baskets.timestamps is not None:
        return time_split(baskets, default_test_days)
    return random_split(baskets, default_test_fraction if test_fraction is None
                        else test_fraction, seed)


def _check_sizes(n_train: int, n_test: int, what: str) -> None:
    if n_train == 0 or n_test == 0:
        raise DataError(f"{what} leaves {n_train} training and {n_test} test baskets; "
                        "both parts need baskets")


def training_vocabulary(train: Baskets) -> tuple[Baskets, np.ndarray]:
    """``train`` with its vocabulary narrowed to the items it contains (ids renumbered in the
    same order), and the map from the old ids to the new ones (-1: not in training)."""
    present = np.bincount(train.indices, minlength=train.n_items) > 0
    old_to_new = np.full(train.n_items, -1, dtype=np.int32)
    old_to_new[present] = np.arange(int(present.sum()), dtype=np.int32)
    narrowed = Baskets(
        indptr=train.indptr,
        indices=old_to_new[train.indices],
        items=train.items[present],
        labels=None if train.labels is None else train.labels[present],
        timestamps=train.timestamps,
        basket_ids=train.basket_ids,
        customers=train.customers,
        source=train.source,
        report=dict(train.report),
    )
    return narrowed, old_to_new
