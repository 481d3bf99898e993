"""A scikit-learn style estimator: baskets in, frequent itemsets and association rules out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.data.baskets import Baskets
from basketry.mining._params import (
    MemoryBudget,
    check_algorithm,
    check_max,
    check_n_jobs,
    check_range,
    min_count_from_support,
    resolve_memory_budget,
)
from basketry.mining.errors import BudgetExceeded, MiningError
from basketry.mining.itemsets import FrequentItemsets, as_baskets, frequent_itemsets
from basketry.mining.rules import COUNTS, MEASURES, Rules, association_rules

if TYPE_CHECKING:  # pandas and pyarrow are imported when a table is asked for (~80 MB, ~0.5 s)
    import pandas as pd
    import pyarrow as pa


def _tuples(indptr: np.ndarray, indices: np.ndarray, names: np.ndarray) -> list[tuple[str, ...]]:
    strs = names[indices].tolist() if indices.size else []
    bounds = indptr.tolist()
    return [tuple(strs[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]


def _size(n: int | None) -> str:
    return "none" if n is None else f"{n / 2**30:.3g} GB"


class AssociationMiner:
    """Mine frequent itemsets and association rules from baskets.

    Parameters are stored as given and validated in :meth:`fit` (scikit-learn convention).
    ``n_jobs`` is the number of threads FP-Growth uses (None or -1: one per core, fewer when
    the tree copies extra threads need would take over a quarter of the available memory); it
    changes the time a fit takes, never its result, and is not recorded with a saved model.
    After ``fit``: ``itemsets_`` and ``rules_`` (pandas DataFrames, built lazily),
    ``rules_table()`` (pyarrow), ``n_baskets_``, ``min_count_``, ``items_``, ``item_counts_``,
    and the array results ``frequent_itemsets_`` and ``rules_arrays_``.

    Without ``max_itemsets``/``max_rules``, the limits are what ``memory_budget`` holds: bytes
    or a size such as ``"4G"``, ``"off"`` for none, or None: ``$BASKETRY_MEMORY_BUDGET`` when
    set, else half the memory this process may still take (MemAvailable, the cgroup limit,
    RLIMIT_AS/RLIMIT_DATA, the smallest). Past a limit, or short of memory, ``fit`` raises
    ``BudgetExceeded`` (a ``MiningError``) with advice; it never lets a ``MemoryError`` out.
    """

    def __init__(
        self,
        min_support: float | int = 0.01,
        min_confidence: float | None = 0.2,
        min_lift: float | None = None,
        max_p_value: float | None = None,
        max_len: int | None = None,
        algorithm: str = "fpgrowth",
        consequents: Iterable[str] | None = None,
        antecedents: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        multi_consequent: bool = False,
        max_itemsets: int | None = None,
        max_rules: int | None = None,
        n_jobs: int | None = None,
        memory_budget: int | str | None = None,
    ) -> None:
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.min_lift = min_lift
        self.max_p_value = max_p_value
        self.max_len = max_len
        self.algorithm = algorithm
        self.consequents = consequents
        self.antecedents = antecedents
        self.exclude = exclude
        self.multi_consequent = multi_consequent
        self.max_itemsets = max_itemsets
        self.max_rules = max_rules
        self.n_jobs = n_jobs
        self.memory_budget = memory_budget

    _PARAMS = (
        "min_support",
        "min_confidence",
        "min_lift",
        "max_p_value",
        "max_len",
        "algorithm",
        "consequents",
        "antecedents",
        "exclude",
        "multi_consequent",
        "max_itemsets",
        "max_rules",
        "n_jobs",
        "memory_budget",
    )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> AssociationMiner:
        for name, value in params.items():
            if name not in self._PARAMS:
                raise MiningError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"AssociationMiner({args})"

    def validate(self, n_baskets: int | None = None) -> int:
        """Check the parameters as :meth:`fit` does (``MiningError`` naming the first bad one);
        the minimum count they give on ``n_baskets`` baskets (None: no data yet, so a count
        is not checked against it, and a fraction gives the count on one basket)."""
        return self._validate(n_baskets)

    def _validate(self, n_baskets: int | None) -> int:
        check_range("min_confidence", self.min_confidence, 0.0, 1.0)
        check_range("min_lift", self.min_lift, 0.0, None)
        check_range("max_p_value", self.max_p_value, 0.0, 1.0, low_open=True)
        check_max("max_len", self.max_len)
        check_max("max_itemsets", self.max_itemsets)
        check_max("max_rules", self.max_rules)
        check_algorithm(self.algorithm)
        check_n_jobs(self.n_jobs)
        if self.memory_budget is not None and not isinstance(self.memory_budget, MemoryBudget):
            resolve_memory_budget(self.memory_budget)
        if not isinstance(self.multi_consequent, bool | np.bool_):
            raise MiningError(
                f"multi_consequent must be True or False, got {self.multi_consequent!r}"
            )
        return min_count_from_support(self.min_support, n_baskets)

    def fit(
        self,
        baskets: Baskets | Iterable[Iterable[str]],
        progress: Callable[[float], None] | None = None,
    ) -> AssociationMiner:
        """Mine ``baskets`` (a ``Baskets`` or an iterable of iterables of item strings)."""
        b = as_baskets(baskets)
        self.min_count_ = self._validate(b.n_baskets)
        # measured once: the itemsets' own allocations must not shrink the rules' budget twice
        budget = resolve_memory_budget(self.memory_budget)
        out_of_memory = False
        try:
            fi, rules = self._mine(b, budget, progress)
        except MemoryError:
            # a last resort (the budget should stop mining first): left here, the error and its
            # frames are gone, so what they held is freed before the one-line error is raised
            out_of_memory = True
        if out_of_memory:
            raise BudgetExceeded(
                f"mining ran out of memory (memory budget: "
                f"{_size(budget.bytes)}, {budget.source}); raise min_support, set max_len, "
                "or lower max_itemsets / max_rules",
                what="memory",
                found=0,
                limit=budget.bytes or 0,
            )
        self.frequent_itemsets_: FrequentItemsets = fi
        self.rules_arrays_: Rules = rules
        self.n_baskets_ = b.n_baskets
        self.items_ = b.items
        self.item_counts_ = fi.item_counts
        self._itemsets_df: pd.DataFrame | None = None
        self._rules_df: pd.DataFrame | None = None
        if progress is not None:
            progress(1.0)
        return self

    def _mine(
        self, b: Baskets, budget: MemoryBudget, progress: Callable[[float], None] | None
    ) -> tuple[FrequentItemsets, Rules]:
        mining_progress = None
        if progress is not None:
            def mining_progress(f: float) -> None:
                progress(0.9 * f)
        fi = frequent_itemsets(
            b,
            self.min_support,
            algorithm=self.algorithm,
            max_len=self.max_len,
            exclude=self.exclude,
            antecedents=self.antecedents,
            consequents=self.consequents,
            multi_consequent=bool(self.multi_consequent),
            max_itemsets=self.max_itemsets,
            progress=mining_progress,
            n_jobs=self.n_jobs,
            memory_budget=budget,
        )
        rules = association_rules(
            fi,
            min_confidence=self.min_confidence,
            min_lift=self.min_lift,
            max_p_value=self.max_p_value,
            multi_consequent=bool(self.multi_consequent),
            max_rules=self.max_rules,
            memory_budget=budget,
        )
        return fi, rules

    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_arrays_"):
            raise MiningError("this AssociationMiner is not fitted yet: call fit(baskets) first")

    @property
    def itemsets_(self) -> pd.DataFrame:
        """Frequent itemsets: itemset (tuple of item strings), count, support, length."""
        self._check_fitted()
        if self._itemsets_df is None:
            import pandas as pd

            fi = self.frequent_itemsets_
            self._itemsets_df = pd.DataFrame(
                {
                    "itemset": _tuples(fi.indptr, fi.indices, self.items_),
                    "count": fi.counts,
                    "support": fi.counts / float(fi.n_baskets) if fi.n_baskets else fi.counts * 0.0,
                    "length": np.diff(fi.indptr),
                }
            )
        return self._itemsets_df

    @property
    def rules_(self) -> pd.DataFrame:
        """Rules with antecedent/consequent as tuples of item strings and every measure."""
        self._check_fitted()
        if self._rules_df is None:
            import pandas as pd

            r = self.rules_arrays_
            cols: dict[str, Any] = {
                "antecedent": _tuples(r.antecedent_indptr, r.antecedent_indices, self.items_),
                "consequent": _tuples(r.consequent_indptr, r.consequent_indices, self.items_),
                "count": r.count,
                "antecedent_count": r.antecedent_count,
                "consequent_count": r.consequent_count,
            }
            cols.update(r.measures)
            self._rules_df = pd.DataFrame(cols)
        return self._rules_df

    def rules_table(self) -> pa.Table:
        """The rules as a pyarrow Table: antecedent/consequent as list<int32> item ids (into
        ``items_``), the counts and every measure; sorted by antecedent ids, then consequent
        ids."""
        import pyarrow as pa

        # from the arrays' buffers, not pa.array: that imports pandas where it is installed
        from basketry.model.columns import list_array, primitive_array

        self._check_fitted()
        r = self.rules_arrays_
        arrays = [
            list_array(r.antecedent_indptr, r.antecedent_indices, pa.int32()),
            list_array(r.consequent_indptr, r.consequent_indices, pa.int32()),
        ]
        names = ["antecedent", "consequent"]
        for name in COUNTS:
            arrays.append(primitive_array(getattr(r, name), pa.int64()))
            names.append(name)
        for name in MEASURES:
            arrays.append(primitive_array(r.measures[name], pa.float64()))
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)
