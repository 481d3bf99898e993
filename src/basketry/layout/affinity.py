"""The item affinity graph: pair co-occurrence counts, from a model's rules or from baskets, and
the weightings that turn them into edge weights.

From a model, the pair counts are the rules with one item on each side (``count`` = baskets
holding both); longer rules are not used. From baskets, pairs are counted sparsely (the basket x
item incidence matrix in CSR times its transpose): never a dense baskets x items matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from basketry.model.layout import LayoutError

#: The weightings, each a function of (pair count, both item counts, number of baskets).
WEIGHTINGS = ("excess", "significant", "lift", "pmi", "confidence", "jaccard", "count",
              "excess_count")
DEFAULT_WEIGHTING = "excess"
#: ``excess_count``: the share of the plain count added to the excess (measured: docs/layout.md)
COUNT_SHARE = 0.125


@dataclass(frozen=True)
class PairCounts:
    """How often each item and each pair of items was bought (pairs ``i < j``, unique)."""

    items: np.ndarray  # object array of item codes
    labels: list[str | None]
    counts: np.ndarray  # int64 baskets holding each item
    n_baskets: int
    i: np.ndarray  # int32
    j: np.ndarray  # int32
    pair: np.ndarray  # int64 baskets holding both
    source: str = "data"
    model_version: str | None = None

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])


@dataclass(frozen=True)
class Affinity:
    """The weighted affinity graph: ``weights`` is the symmetric CSR matrix over ``pairs.items``
    (zero diagonal, only positive weights kept)."""

    pairs: PairCounts
    weighting: str
    weights: sp.csr_matrix

    @property
    def n_items(self) -> int:
        return self.pairs.n_items

    def strongest_edges(self, limit: int) -> list[tuple[int, int, float]]:
        """The ``limit`` heaviest edges ``(i, j, weight)`` with ``i < j``."""
        upper = sp.triu(self.weights, k=1).tocoo()
        if upper.nnz == 0:
            return []
        top = np.argsort(-upper.data, kind="stable")[:limit]
        return [(int(upper.row[k]), int(upper.col[k]), float(upper.data[k])) for k in top]


def count_pairs(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Upper-triangular pair counts (i < j) of baskets in CSR form, counted sparsely."""
    n = indptr.shape[0] - 1
    data = np.ones(indices.shape[0], dtype=np.int32)
    x = sp.csr_matrix((data, indices.astype(np.int32, copy=False), indptr), shape=(n, n_items))
    x.sum_duplicates()
    x.data[:] = 1
    co = (x.T.tocsr() @ x).tocsr()
    return sp.triu(co, k=1, format="csr")


def pairs_from_baskets(baskets: object, *, min_pair_count: int = 2) -> PairCounts:
    """Pair counts of ``basketry.data.Baskets`` (pairs bought together fewer than
    ``min_pair_count`` times are noise for a shelf plan and dropped)."""
    indptr = np.asarray(baskets.indptr)  # type: ignore[attr-defined]
    indices = np.asarray(baskets.indices)  # type: ignore[attr-defined]
    items = np.asarray(baskets.items, dtype=object)  # type: ignore[attr-defined]
    raw_labels = getattr(baskets, "labels", None)
    labels = [None if v is None or v != v else str(v) for v in raw_labels] if raw_labels \
        is not None else [None] * items.shape[0]
    counts = np.bincount(indices, minlength=items.shape[0]).astype(np.int64)
    upper = count_pairs(indptr, indices, items.shape[0]).tocoo()
    keep = upper.data >= min_pair_count
    pairs = PairCounts(items=items, labels=labels, counts=counts,
                       n_baskets=int(indptr.shape[0] - 1),
                       i=upper.row[keep].astype(np.int32), j=upper.col[keep].astype(np.int32),
                       pair=upper.data[keep].astype(np.int64), source="data")
    bought = np.flatnonzero(counts > 0)  # a subset of baskets keeps the whole vocabulary
    return pairs if bought.shape[0] == counts.shape[0] else restrict(pairs, bought)


def pairs_from_model(model_dir: str | object) -> PairCounts:
    """Pair counts from a model artifact: its items (codes, labels, counts) and its rules with
    one item on each side."""
    from basketry.model import read_artifact

    artifact = read_artifact(model_dir)  # type: ignore[arg-type]
    items = np.asarray(artifact.items.column("item").to_pylist(), dtype=object)
    labels = artifact.items.column("label").to_pylist()
    counts = np.asarray(artifact.items.column("count").to_numpy(), dtype=np.int64)
    rules = artifact.rules
    ante = rules.column("antecedent").combine_chunks()
    cons = rules.column("consequent").combine_chunks()
    ante_len = np.diff(np.asarray(ante.offsets))
    cons_len = np.diff(np.asarray(cons.offsets))
    single = (ante_len == 1) & (cons_len == 1)
    a_first = np.asarray(ante.values)[np.asarray(ante.offsets)[:-1][single]]
    c_first = np.asarray(cons.values)[np.asarray(cons.offsets)[:-1][single]]
    pair = np.asarray(rules.column("count").to_numpy())[single]
    lo, hi = np.minimum(a_first, c_first), np.maximum(a_first, c_first)
    # a pair appears once per direction that passed the confidence threshold: keep one
    key = lo.astype(np.int64) * items.shape[0] + hi
    _, first = np.unique(key, return_index=True)
    return PairCounts(items=items, labels=labels, counts=counts,
                      n_baskets=int(artifact.manifest["counts"]["n_baskets"]),
                      i=lo[first].astype(np.int32), j=hi[first].astype(np.int32),
                      pair=pair[first].astype(np.int64), source="model",
                      model_version=artifact.version)


def pair_weights(pairs: PairCounts, weighting: str, *, alpha: float = 0.01) -> np.ndarray:
    """The weight of each pair under ``weighting`` (0 where the pair is not an affinity)."""
    if weighting not in WEIGHTINGS:
        raise LayoutError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    c = pairs.pair.astype(np.float64)
    ci = pairs.counts[pairs.i].astype(np.float64)
    cj = pairs.counts[pairs.j].astype(np.float64)
    n = float(pairs.n_baskets)
    if c.size == 0:
        return c
    lift = c * n / np.maximum(ci * cj, 1.0)
    if weighting == "count":
        return c
    if weighting == "excess":
        # baskets holding the pair beyond what independence predicts (n x leverage)
        return np.maximum(c - ci * cj / n, 0.0)
    if weighting == "excess_count":
        # the full layout's refinement objective: the excess, plus a share of the occurrences
        # (the evaluation counts all of them); a larger share pulls bestsellers together away
        # from the groups they are bought with beyond chance
        return np.maximum(c - ci * cj / n, 0.0) + COUNT_SHARE * c
    if weighting == "lift":
        # only pairs bought together more often than chance attract each other
        return np.where(lift > 1.0, lift, 0.0)
    if weighting == "pmi":
        return np.maximum(np.log(lift), 0.0)
    if weighting == "confidence":
        return np.where(lift > 1.0, c / np.maximum(np.minimum(ci, cj), 1.0), 0.0)
    if weighting == "jaccard":
        return np.where(lift > 1.0, c / np.maximum(ci + cj - c, 1.0), 0.0)
    # significant: the count, kept where a one-sided hypergeometric (Fisher) test says the pair
    # is above independence, Benjamini-Hochberg over the pairs tested
    from scipy.stats import hypergeom

    p = hypergeom.sf(c - 1, n, ci, cj)
    keep = _benjamini_hochberg(p, alpha)
    return np.where(keep, c, 0.0)


def _benjamini_hochberg(p: np.ndarray, alpha: float) -> np.ndarray:
    m = p.shape[0]
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    passed = np.flatnonzero(ranked <= alpha)
    keep = np.zeros(m, dtype=bool)
    if passed.size:
        keep[order[: passed[-1] + 1]] = True
    return keep


def build_affinity(pairs: PairCounts, weighting: str = DEFAULT_WEIGHTING) -> Affinity:
    """The symmetric affinity matrix of ``pairs`` under ``weighting``."""
    w = pair_weights(pairs, weighting)
    keep = w > 0
    i, j, w = pairs.i[keep], pairs.j[keep], w[keep]
    m = pairs.n_items
    mat = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                        shape=(m, m)).tocsr()
    mat.sum_duplicates()
    return Affinity(pairs=pairs, weighting=weighting, weights=mat)


def restrict(pairs: PairCounts, keep_items: Sequence[int] | np.ndarray) -> PairCounts:
    """``pairs`` over a subset of items (renumbered in the order given)."""
    keep_items = np.asarray(keep_items, dtype=np.int64)
    new = np.full(pairs.n_items, -1, dtype=np.int64)
    new[keep_items] = np.arange(keep_items.shape[0])
    a, b = new[pairs.i], new[pairs.j]
    ok = (a >= 0) & (b >= 0)
    lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
    return PairCounts(items=pairs.items[keep_items],
                      labels=[pairs.labels[k] for k in keep_items.tolist()],
                      counts=pairs.counts[keep_items], n_baskets=pairs.n_baskets,
                      i=lo.astype(np.int32), j=hi.astype(np.int32), pair=pairs.pair[ok],
                      source=pairs.source, model_version=pairs.model_version)
