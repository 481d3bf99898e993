"""Building the result common to every format: item ids in string order, the CSR of unique
(basket, item) pairs, and the totals of the report.
"""

from __future__ import annotations

import numpy as np

from basketry.data._compiled import kernels
from basketry.data._lazy import LazyModule

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")


def _sorted_vocabulary(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Map dictionary codes (all >= 0) to ids in string order over the codes actually used."""
    used = np.bincount(codes, minlength=len(dictionary)) > 0 if codes.size else np.zeros(
        len(dictionary), dtype=bool
    )
    used_idx = np.flatnonzero(used)
    used_dict = dictionary.take(pa.array(used_idx))
    order = pc.array_sort_indices(used_dict).to_numpy(zero_copy_only=False)
    new_id = np.full(len(dictionary), -1, dtype=np.int32)
    new_id[used_idx[order]] = np.arange(order.shape[0], dtype=np.int32)
    vocab = used_dict.take(pa.array(order)).to_numpy(zero_copy_only=False).astype(object)
    return new_id[codes], vocab


def _group(
    basket: np.ndarray, item: np.ndarray, n_baskets: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """CSR of unique (basket, item) pairs; empty baskets removed.

    Returns indptr, indices, the original basket number of every kept basket, and how many
    duplicate pairs were merged. Linear time (a counting sort by basket, compiled).
    """
    indptr, indices, present, dups = kernels.group_pairs(
        np.ascontiguousarray(basket, dtype=np.int32), np.ascontiguousarray(item, dtype=np.int32),
        int(n_baskets),
    )
    return indptr, indices, present, int(dups)


def _add_totals(report: dict, indptr: np.ndarray, vocab: np.ndarray) -> None:
    report["n_baskets"] = int(indptr.shape[0] - 1)
    report["n_items"] = int(vocab.shape[0])
    report["n_entries"] = int(indptr[-1])
