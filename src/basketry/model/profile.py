"""The training reference a model carries: what production's data is compared with to tell drift.

A model artifact already holds it (docs/model-format.md, "Reference profile"): the items table's
``count`` of every training item (baskets holding it) with the manifest's ``counts.n_baskets``,
and the manifest's ``dataset`` profile written by training, whose ``basket_size.histogram``
(``edges``, ``counts``: bins ``[edges[i], edges[i + 1])``) is the training basket-size
distribution and ``n_entries`` the number of (basket, item) pairs. This module reads them
into one checked object; a model written before the dataset profile existed has none, and
saying so is :class:`ModelProfileMissing` (one line: retrain to get drift detection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from basketry.model.errors import ModelContentError, ModelError


class ModelProfileMissing(ModelError):
    """The model has no training profile to compare production with (an older artifact)."""


@dataclass(frozen=True)
class ReferenceProfile:
    """The training data a model was mined from, as drift detection needs it."""

    model_version: str
    items: list[str]
    labels: list[str | None]
    #: training baskets holding each item (the items table's ``count``)
    item_counts: np.ndarray
    n_baskets: int
    #: basket-size histogram: ``size_counts[i]`` baskets of size in
    #: ``[size_edges[i], size_edges[i + 1])``
    size_edges: np.ndarray
    size_counts: np.ndarray

    @property
    def n_entries(self) -> int:
        return int(self.item_counts.sum())

    @property
    def item_shares(self) -> np.ndarray:
        """Each item's share of the training (basket, item) pairs."""
        return self.item_counts / max(self.n_entries, 1)

    @property
    def size_shares(self) -> np.ndarray:
        return self.size_counts / max(int(self.size_counts.sum()), 1)

    def top_items(self, k: int) -> list[str]:
        """The ``k`` most frequent training items (count desc, then item ascending)."""
        order = np.lexsort((np.array(self.items, dtype=object).astype(str), -self.item_counts))
        return [self.items[i] for i in order[:k]]


def reference_profile(model: Any) -> ReferenceProfile:
    """The reference of a loaded model (:class:`basketry.model.Model`: its items and manifest),
    checked: :class:`ModelProfileMissing` without a dataset profile, ModelContentError when
    its counts disagree with the model's."""
    manifest: Mapping[str, Any] = model.manifest
    where = f"model {model.model_version}"
    dataset = manifest.get("dataset") or {}
    sizes = dataset.get("basket_size") if isinstance(dataset, Mapping) else None
    histogram = sizes.get("histogram") if isinstance(sizes, Mapping) else None
    if not isinstance(histogram, Mapping):
        raise ModelProfileMissing(
            f"{where} has no training profile (dataset.basket_size.histogram in its "
            "manifest): it was written by an older basketry; train it again to detect drift")
    try:
        edges = np.asarray(histogram["edges"], dtype=np.int64)
        counts = np.asarray(histogram["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise ModelContentError(f"{where}: dataset.basket_size.histogram needs integer "
                                "`edges` and `counts`") from None
    n_baskets = int(manifest["counts"]["n_baskets"])
    if (edges.ndim != 1 or counts.ndim != 1 or edges.shape[0] != counts.shape[0] + 1
            or counts.shape[0] == 0 or np.any(np.diff(edges) <= 0) or edges[0] < 0
            or np.any(counts < 0)):
        raise ModelContentError(f"{where}: dataset.basket_size.histogram is not a histogram "
                                "(edges ascending, one count per bin, counts >= 0)")
    if int(counts.sum()) != n_baskets:
        raise ModelContentError(f"{where}: the basket-size histogram counts {int(counts.sum())} "
                                f"baskets, the model {n_baskets}")
    item_counts = np.asarray(model.item_counts, dtype=np.int64)
    return ReferenceProfile(model.model_version, list(model.items), list(model.labels),
                            item_counts, n_baskets, edges, counts)
