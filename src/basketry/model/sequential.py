"""The sequential part of a model ("after the purchase"): rules from the items of a customer's
order to the items of a later order within a horizon, the items customers buy again, and the
one ranking that evaluation and serving share.

Definitions (docs/model-format.md, "The sequential part"), on customers: an order is
*followed* when the same customer places another order strictly later and at most
``horizon_days`` after it. ``n_customers`` counts the customers with at least one followed
order. For a rule ``X -> y``: ``antecedent_count`` is the customers with a followed order
holding ``X``; ``count`` those with a followed order holding ``X`` and, after it within the
horizon, an order holding ``y``; ``consequent_count`` those with an order holding ``y`` that
follows one of their orders within the horizon. ``support = count / n_customers``,
``confidence = count / antecedent_count``, ``lift = confidence / (consequent_count /
n_customers)``. A repeat row is the rule ``x -> x`` (bought again within the horizon).

Array code only (numpy, pyarrow): the serving install has no numba.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from basketry.model.columns import list_parts, view
from basketry.model.errors import ModelContentError
from basketry.model.format import (
    REPEAT_FILE,
    SEQUENTIAL_COUNT_COLUMNS,
    SEQUENTIAL_RULES_FILE,
)

#: Antecedents hold one item, or two with ``max_antecedent`` 2.
MAX_ANTECEDENT = 2
#: The weight of the sequential rules against buy-again (``parameters.sequential.rule_weight``
#: when the model gives it): chosen on Online Retail's next orders (docs/evaluation.md).
RULE_WEIGHT = 0.25
#: Relative tolerance of the measures against the counts they are derived from.
_RTOL = 1e-9


@dataclass(frozen=True)
class SequentialPart:
    """The sequential tables of a model with what they were mined with.

    ``rules`` follows ``SEQUENTIAL_RULES_SCHEMA`` and ``repeat`` ``REPEAT_SCHEMA`` (item ids
    index the model's items table); ``parameters`` holds at least ``horizon_days``."""

    rules: pa.Table
    repeat: pa.Table
    n_customers: int
    parameters: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The manifest's ``counts.sequential``."""
        return {"n_customers": int(self.n_customers), "n_rules": self.rules.num_rows,
                "n_repeat": self.repeat.num_rows}


def _fail(where: str, column: str, row: int, problem: str) -> ModelContentError:
    return ModelContentError(f"{where}: column {column!r}, row {row}: {problem}")


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _column(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return view(array)


def _check_counts_and_measures(table: pa.Table, n_customers: int, where: str,
                               measures: Sequence[str]) -> None:
    n_xy, n_x, n_y = (_column(table, c).astype(np.int64) for c in SEQUENTIAL_COUNT_COLUMNS)
    checks = (
        ("count", n_xy < 1, "is not >= 1"),
        ("count", n_xy > n_x, "exceeds antecedent_count"),
        ("count", n_xy > n_y, "exceeds consequent_count"),
        ("antecedent_count", n_x > n_customers, f"exceeds n_customers {n_customers}"),
        ("consequent_count", n_y > n_customers, f"exceeds n_customers {n_customers}"),
    )
    for column, bad, problem in checks:
        if bad.any():
            raise _fail(where, column, _first(bad), problem)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = {
            "support": n_xy / n_customers,
            "confidence": n_xy / np.maximum(n_x, 1),
            "lift": (n_xy / np.maximum(n_x, 1)) / (np.maximum(n_y, 1) / n_customers),
        }
    for name in measures:
        values = _column(table, name).astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise _fail(where, name, _first(bad), "is not a finite number")
        bad = ~np.isclose(values, expected[name], rtol=_RTOL, atol=0.0)
        if bad.any():
            i = _first(bad)
            raise _fail(where, name, i, f"{float(values[i])} does not follow from the counts "
                        f"(expected {float(expected[name][i])})")


def check_sequential(part: SequentialPart, n_items: int, where: str) -> None:
    """The sequential tables against ``n_items`` items: ids in range, antecedents of 1 or 2
    ascending ids without the consequent, counts consistent with ``n_customers``, measures
    finite and equal to what the counts give, repeat items unique (``ModelContentError`` naming
    the file, column and row)."""
    horizon = part.parameters.get("horizon_days")
    if isinstance(horizon, bool) or not isinstance(horizon, int | float) \
            or not math.isfinite(horizon) or horizon <= 0:
        raise ModelContentError(f"{where}: field 'parameters.sequential.horizon_days' must be a "
                                f"finite number > 0, got {horizon!r}")
    weight = part.parameters.get("rule_weight", RULE_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise ModelContentError(f"{where}: field 'parameters.sequential.rule_weight' must be a "
                                f"number within [0, 1], got {weight!r}")
    n = part.n_customers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ModelContentError(f"{where}: field 'counts.sequential.n_customers' must be a "
                                f"whole number >= 1, got {n!r}")
    rules_where = f"{where} ({SEQUENTIAL_RULES_FILE})"
    rules = part.rules
    for name in rules.column_names:
        if rules.column(name).null_count:
            raise ModelContentError(f"{rules_where}: column {name!r} holds a null")
    ante = rules.column("antecedent")
    offsets, values = list_parts(ante.combine_chunks() if ante.num_chunks != 1
                                 else ante.chunk(0))
    lengths = np.diff(offsets)
    bad = (lengths < 1) | (lengths > MAX_ANTECEDENT)
    if bad.any():
        raise _fail(rules_where, "antecedent", _first(bad), f"holds {int(lengths[_first(bad)])} "
                    f"items, not 1..{MAX_ANTECEDENT}")
    consequent = _column(rules, "consequent").astype(np.int64)
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    for name, ids, row_of in (("antecedent", values.astype(np.int64), rows),
                              ("consequent", consequent, None)):
        bad = (ids < 0) | (ids >= n_items)
        if bad.any():
            i = _first(bad)
            raise _fail(rules_where, name, int(i if row_of is None else row_of[i]),
                        f"item id {int(ids[i])} is outside 0..{n_items - 1}")
    if values.size:
        step = np.diff(values.astype(np.int64))
        within = np.repeat(lengths, lengths)[1:] > 1
        same_rule = rows[1:] == rows[:-1]
        bad = same_rule & within & (step <= 0)
        if bad.any():
            raise _fail(rules_where, "antecedent", int(rows[1:][_first(bad)]),
                        "item ids are not ascending")
        bad = values.astype(np.int64) == consequent[rows]
        if bad.any():
            raise _fail(rules_where, "consequent", int(rows[_first(bad)]),
                        "the item is also in the antecedent (a repeat belongs to repeat_items)")
    _check_counts_and_measures(rules, n, rules_where, ("support", "confidence", "lift"))
    repeat_where = f"{where} ({REPEAT_FILE})"
    for name in part.repeat.column_names:
        if part.repeat.column(name).null_count:
            raise ModelContentError(f"{repeat_where}: column {name!r} holds a null")
    items = _column(part.repeat, "item").astype(np.int64)
    bad = (items < 0) | (items >= n_items)
    if bad.any():
        raise _fail(repeat_where, "item", _first(bad), f"item id {int(items[_first(bad)])} is "
                    f"outside 0..{n_items - 1}")
    if np.unique(items).shape[0] != items.shape[0]:
        order = np.argsort(items, kind="stable")
        dup = order[1:][np.diff(items[order]) == 0][0]
        raise _fail(repeat_where, "item", int(dup), f"item id {int(items[dup])} is repeated")
    _check_counts_and_measures(part.repeat, n, repeat_where, ("confidence", "lift"))


def part_from_manifest(manifest: Mapping[str, Any], rules: pa.Table, repeat: pa.Table,
                       where: str) -> SequentialPart:
    """The part the manifest's ``counts.sequential`` and ``parameters.sequential`` describe,
    with its counts checked against the tables."""
    counts = manifest.get("counts", {}).get("sequential")
    params = (manifest.get("parameters") or {}).get("sequential")
    if not isinstance(counts, Mapping) or not isinstance(params, Mapping):
        raise ModelContentError(f"{where}: the model lists {SEQUENTIAL_RULES_FILE} but lacks "
                                "the objects 'counts.sequential' and 'parameters.sequential'")
    for key, table in (("n_rules", rules), ("n_repeat", repeat)):
        if counts.get(key) != table.num_rows:
            raise ModelContentError(f"{where}: field 'counts.sequential.{key}' is "
                                    f"{counts.get(key)!r} but the table has {table.num_rows} rows")
    return SequentialPart(rules=rules, repeat=repeat, n_customers=counts.get("n_customers"),
                          parameters=dict(params))


# -- the ranking ------------------------------------------------------------------------------

#: How an item of an answer was chosen.
KINDS = ("sequential", "buy_again", "popular")


@dataclass(frozen=True, slots=True)
class NextItem:
    """One item of an after-purchase answer: its id, score and why (``kind``; ``row``: the
    sequential rule's row for ``sequential``, the repeat row for ``buy_again``, -1 else;
    ``times``: orders of the customer holding the item, for ``buy_again``)."""

    item: int
    score: float
    kind: str
    row: int
    times: int = 0


class AfterPurchase:
    """The after-purchase ranking of a sequential part over a model's items.

    For the completed order ``O`` and the customer's earlier orders, each item ``y`` has (a)
    ``s``, the best confidence of a rule ``X -> y`` with ``X`` in ``O`` (``y`` not in ``X``),
    and (b) ``b = 1 - (1 - r)^m``, its buy-again chance, where ``r`` is ``y``'s repeat
    confidence and ``m`` the customer's orders (``O`` and the earlier ones) holding ``y``. Its
    score is ``1 - (1 - w * s) * (1 - b)`` with ``w`` the rule weight; the rule named is the
    larger of ``w * s`` and ``b`` (the sequential rule on a tie). Items that score nothing
    follow by popularity (``popularity``: each item's share of baskets). Best first: score
    desc, then item id asc."""

    def __init__(self, part: SequentialPart, popularity: np.ndarray) -> None:
        self.part = part
        n_items = int(popularity.shape[0])
        self.n_items = n_items
        self.popularity = np.asarray(popularity, dtype=np.float64)
        # popularity order once: desc share, then id asc
        self._popular = np.lexsort((np.arange(n_items), -self.popularity))
        rules = part.rules
        ante = rules.column("antecedent")
        offsets, values = list_parts(ante.combine_chunks() if ante.num_chunks != 1
                                     else ante.chunk(0))
        self._ante_off = offsets.astype(np.int64)
        self._ante_val = values.astype(np.int64)
        self._consequent = _column(rules, "consequent").astype(np.int64)
        self._confidence = _column(rules, "confidence").astype(np.float64)
        lengths = np.diff(self._ante_off)
        # single-item antecedents as CSR by item; pairs checked rule by rule (few)
        single = np.flatnonzero(lengths == 1)
        first = self._ante_val[self._ante_off[single]]
        order = single[np.argsort(first, kind="stable")]  # by item, rows ascending within
        self._single_rows = order
        self._single_ptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(self._ante_val[self._ante_off[order]], minlength=n_items),
                  out=self._single_ptr[1:])
        pairs = np.flatnonzero(lengths == 2)
        self._pair_rows = pairs
        self._pair_a = self._ante_val[self._ante_off[pairs]]
        self._pair_b = self._ante_val[self._ante_off[pairs] + 1]
        self.rule_weight = float(part.parameters.get("rule_weight", RULE_WEIGHT))
        self._repeat_rate = np.zeros(n_items, dtype=np.float64)
        self._repeat_row = np.full(n_items, -1, dtype=np.int64)
        items = _column(part.repeat, "item").astype(np.int64)
        self._repeat_rate[items] = _column(part.repeat, "confidence")
        self._repeat_row[items] = np.arange(items.shape[0])

    @property
    def horizon_days(self) -> float:
        return float(self.part.parameters["horizon_days"])

    def rank(self, order: np.ndarray, history: Sequence[np.ndarray] = (), k: int = 10,
             banned: np.ndarray | None = None) -> list[NextItem]:
        """The ``k`` best next items after the completed ``order`` (item ids; ids < 0 are
        ignored), given the customer's earlier orders ``history`` (each an array of item ids),
        never an id of ``banned``."""
        n = self.n_items
        order = np.unique(np.asarray(order, dtype=np.int64))
        order = order[(order >= 0) & (order < n)]
        seq = np.zeros(n, dtype=np.float64)
        seq_row = np.full(n, -1, dtype=np.int64)
        if order.size:
            rows = np.concatenate([self._single_rows[self._single_ptr[i]:self._single_ptr[i + 1]]
                                   for i in order])
            if self._pair_rows.size:
                inside = np.isin(self._pair_a, order) & np.isin(self._pair_b, order)
                rows = np.concatenate((rows, self._pair_rows[inside]))
            if rows.size:
                self._best(rows, seq, seq_row)
        times = np.zeros(n, dtype=np.int64)
        for past in (order, *history):
            ids = np.unique(np.asarray(past, dtype=np.int64))
            times[ids[(ids >= 0) & (ids < n)]] += 1
        again = np.where(times > 0, 1.0 - (1.0 - self._repeat_rate) ** times, 0.0)
        seq *= self.rule_weight
        score = 1.0 - (1.0 - seq) * (1.0 - again)
        scored = np.flatnonzero(score > 0)
        if banned is not None and len(banned):
            allowed = np.ones(n, dtype=bool)
            allowed[np.asarray(banned, dtype=np.int64)] = False
            scored = scored[allowed[scored]]
        else:
            allowed = None
        top = scored[np.lexsort((scored, -score[scored]))][:k]
        out = [NextItem(int(y), float(score[y]),
                        "sequential" if seq[y] >= again[y] else "buy_again",
                        int(seq_row[y]) if seq[y] >= again[y] else int(self._repeat_row[y]),
                        int(times[y]))
               for y in top]
        if len(out) < k:
            taken = np.zeros(n, dtype=bool)
            taken[top] = True
            if allowed is not None:
                taken |= ~allowed
            fill = self._popular[~taken[self._popular]][:k - len(out)]
            out.extend(NextItem(int(y), float(self.popularity[y]), "popular", -1, int(times[y]))
                       for y in fill)
        return out

    def _best(self, rows: np.ndarray, seq: np.ndarray, seq_row: np.ndarray) -> None:
        """For each consequent of ``rows``, the best confidence and its rule (the lowest row on
        ties), written into ``seq`` and ``seq_row``."""
        consequent = self._consequent[rows]
        confidence = self._confidence[rows]
        pick = np.lexsort((rows, -confidence, consequent))
        first = np.ones(pick.shape[0], dtype=bool)
        first[1:] = consequent[pick][1:] != consequent[pick][:-1]
        chosen = pick[first]
        seq[consequent[chosen]] = confidence[chosen]
        seq_row[consequent[chosen]] = rows[chosen]

    def top_ids(self, order: np.ndarray, history: Sequence[np.ndarray] = (),
                k: int = 10) -> np.ndarray:
        """The ids of ``rank`` (for evaluation)."""
        return np.array([x.item for x in self.rank(order, history, k)], dtype=np.int64)

    def rule(self, row: int) -> dict[str, Any]:
        """A sequential rule's row as ids and measures."""
        rules = self.part.rules
        lo, hi = self._ante_off[row], self._ante_off[row + 1]
        return {"antecedent": [int(x) for x in self._ante_val[lo:hi]],
                "consequent": int(self._consequent[row]),
                **{name: rules.column(name)[row].as_py()
                   for name in ("count", "antecedent_count", "consequent_count", "support",
                                "confidence", "lift")}}

    def repeat(self, row: int) -> dict[str, Any]:
        """A repeat row as ids and measures."""
        table = self.part.repeat
        return {name: table.column(name)[row].as_py() for name in table.column_names}
