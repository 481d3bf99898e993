"""The in-memory form of a transaction history: baskets as CSR arrays of integer item ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Baskets:
    """Baskets in compressed sparse row (CSR) form, plus the vocabulary that names the items.

    The items of basket ``b`` are ``indices[indptr[b]:indptr[b + 1]]``: integer ids into
    ``items``, unique and sorted ascending within each basket. Never a dense one-hot matrix.
    """

    indptr: np.ndarray  # int64, shape (n_baskets + 1,)
    indices: np.ndarray  # int32, shape (nnz,)
    items: np.ndarray  # object array of str, item id -> item string
    labels: np.ndarray | None = None  # object array of str|None, item id -> description
    timestamps: np.ndarray | None = None  # datetime64[ns] per basket (earliest of its rows)
    basket_ids: np.ndarray | None = None  # object array of str per basket (transaction id)
    customers: np.ndarray | None = None  # object array of str|None per basket
    source: str = ""  # where the baskets came from (path or description)
    report: dict = field(default_factory=dict)  # counts of what reading kept and dropped

    @property
    def n_baskets(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    def basket(self, b: int) -> list[str]:
        """The item strings of basket ``b`` (for display and tests, not for hot paths)."""
        return [str(self.items[i]) for i in self.indices[self.indptr[b] : self.indptr[b + 1]]]

    def item_counts(self) -> np.ndarray:
        """Number of baskets containing each item (int64, indexed by item id)."""
        return np.bincount(self.indices, minlength=self.n_items).astype(np.int64)

    def subset(self, mask_or_index: np.ndarray) -> Baskets:
        """The baskets selected by a boolean mask or an index array, same vocabulary."""
        sel = np.asarray(mask_or_index)
        if sel.dtype == bool:
            sel = np.flatnonzero(sel)
        starts = self.indptr[sel]
        lengths = self.indptr[sel + 1] - starts
        indptr = np.zeros(sel.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # gather positions of every selected basket's items without a Python loop
        offsets = np.repeat(starts - indptr[:-1], lengths)
        positions = np.arange(indptr[-1], dtype=np.int64) + offsets

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[sel]

        return Baskets(
            indptr=indptr,
            indices=self.indices[positions],
            items=self.items,
            labels=self.labels,
            timestamps=take(self.timestamps),
            basket_ids=take(self.basket_ids),
            customers=take(self.customers),
            source=self.source,
            report=dict(self.report),
        )

    @classmethod
    def from_lists(
        cls, baskets: Iterable[Sequence[str]], items: Sequence[str] | None = None
    ) -> Baskets:
        """Build from Python lists of item strings (small data, tests, the Python API).

        Duplicates within a basket are dropped; empty baskets are kept as empty rows.
        The vocabulary is sorted by item string unless ``items`` gives it.
        """
        rows = [list(dict.fromkeys(str(x) for x in basket)) for basket in baskets]
        vocab = sorted({x for row in rows for x in row}) if items is None else list(items)
        index = {item: i for i, item in enumerate(vocab)}
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter((index[x] for r in rows for x in sorted(r, key=index.__getitem__)),
                           dtype=np.int32, count=int(indptr[-1]))
        return cls(indptr=indptr, indices=flat, items=np.array(vocab, dtype=object))
