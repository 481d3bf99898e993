"""What `basketry explore` shows of a model: its strongest rules (the top N by lift, ties by
count), item names (labels where the model has them), item counts and the training basket-size
histogram. Read from a verified artifact; a model of millions of rules is cut to N here, so the
page and the pictures stay small."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from basketry.model import Artifact

#: Rules shown when the command is not told otherwise.
DEFAULT_TOP = 1_000


@dataclass(frozen=True)
class RuleSelection:
    """The rules a page shows, strongest first, and what they are read against."""

    model_version: str
    #: rules in the model (the page shows ``len(self)`` of them)
    n_rules: int
    n_baskets: int
    items: list[str]
    #: each item's label, or its code when it has none
    names: list[str]
    #: baskets holding each item (training data)
    item_counts: np.ndarray
    antecedents: list[list[int]]
    consequents: list[list[int]]
    support: np.ndarray
    confidence: np.ndarray
    lift: np.ndarray
    count: np.ndarray
    #: the training basket-size histogram (bins ``[edges[i], edges[i + 1])``), when the model
    #: carries its dataset profile
    size_edges: list[int] | None
    size_counts: list[int] | None

    def __len__(self) -> int:
        return len(self.antecedents)

    @property
    def capped(self) -> bool:
        return len(self) < self.n_rules

    def side_text(self, ids: list[int]) -> str:
        return ", ".join(self.names[i] for i in ids)

    def rule_text(self, i: int) -> str:
        """Rule ``i`` in words: ``{A, B} → {C}`` with labels."""
        return (f"{{{self.side_text(self.antecedents[i])}}} → "
                f"{{{self.side_text(self.consequents[i])}}}")

    def rule_codes(self, i: int) -> str:
        return (", ".join(self.items[j] for j in self.antecedents[i]) + " → "
                + ", ".join(self.items[j] for j in self.consequents[i]))


def top_rule_rows(lift: np.ndarray, count: np.ndarray, top: int) -> np.ndarray:
    """Row numbers of the ``top`` rules by lift (ties: higher count, then the earlier row),
    strongest first. Sorts only the candidates at or above the ``top``-th lift, so that a model
    of millions of rules costs one partition, not a full sort."""
    n = lift.shape[0]
    top = max(int(top), 0)
    if top == 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if top < n:
        kth = np.partition(-lift, top - 1)[top - 1]
        candidates = np.flatnonzero(-lift <= kth)
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -count[candidates], -lift[candidates]))
    return candidates[order[:top]].astype(np.int64)


def select_rules(artifact: Artifact, top: int = DEFAULT_TOP) -> RuleSelection:
    """The ``top`` rules of ``artifact`` by lift, with the model's items and profile."""
    rules = artifact.rules
    lift = rules.column("lift").to_numpy()
    count = rules.column("count").to_numpy()
    rows = top_rule_rows(lift, count, top)
    chosen = rules.take(rows)  # strongest first
    items = [str(x) for x in artifact.items.column("item").to_pylist()]
    labels = artifact.items.column("label").to_pylist()
    names = [" ".join(str(label).split()) if label else item
             for item, label in zip(items, labels, strict=True)]
    manifest = artifact.manifest
    edges, counts = _size_histogram(manifest.get("dataset"))
    return RuleSelection(
        model_version=str(manifest["model_version"]),
        n_rules=rules.num_rows,
        n_baskets=int(manifest["counts"]["n_baskets"]),
        items=items, names=names,
        item_counts=artifact.items.column("count").to_numpy().astype(np.int64),
        antecedents=chosen.column("antecedent").to_pylist(),
        consequents=chosen.column("consequent").to_pylist(),
        support=chosen.column("support").to_numpy(),
        confidence=chosen.column("confidence").to_numpy(),
        lift=chosen.column("lift").to_numpy(),
        count=chosen.column("count").to_numpy(),
        size_edges=edges, size_counts=counts)


def _size_histogram(dataset: Any) -> tuple[list[int] | None, list[int] | None]:
    """The basket-size histogram of the manifest's dataset profile, or ``(None, None)`` (a
    model written before the profile existed)."""
    sizes = dataset.get("basket_size") if isinstance(dataset, Mapping) else None
    histogram = sizes.get("histogram") if isinstance(sizes, Mapping) else None
    if not isinstance(histogram, Mapping):
        return None, None
    try:
        edges = [int(e) for e in histogram["edges"]]
        counts = [int(c) for c in histogram["counts"]]
    except (KeyError, TypeError, ValueError):
        return None, None
    return (edges, counts) if len(edges) == len(counts) + 1 else (None, None)


def size_bin_labels(edges: list[int]) -> list[str]:
    """``[1, 2, 11, 16]`` → ``["1", "2–10", "11–15"]``: the bins ``[e_i, e_{i+1})`` in words."""
    return [str(a) if b == a + 1 else f"{a}–{b - 1}" for a, b in pairwise(edges)]
