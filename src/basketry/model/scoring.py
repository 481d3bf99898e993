"""Scoring a basket against the rules of a model: the recommendation logic shared by
offline evaluation and the serving application.

How a recommendation is chosen (deterministic, documented in docs/model-format.md, "Scoring a
basket"; the manifest's ``scoring`` object names the method and its parameters):

1. Items of the basket that the model does not know are ignored and reported as ``unknown``.
2. A rule *fires* when its whole antecedent is in the basket. Rules are found through a trie
   over the antecedents (item ids ascending), walked depth-first along the basket's items, so
   the cost grows with the antecedents the basket matches, not with the rules in the model.
   Only single-item-consequent rules are used for recommendations.
3. Every rule has a score. The default method, ``smoothed``, shrinks the rule's confidence
   toward the consequent's base rate, ``(n_xy + m * s_y) / (n_x + m)`` with ``m`` =
   ``prior_weight``, so a rule seen in few baskets cannot outrank a well-supported one by
   chance; ``one_scale`` scores rules the same way; ``lift_product`` scores them on a log
   scale (below); ``confidence`` and ``lift`` score a rule by that measure. Rules are ranked
   once, at load time, by (score desc, lift desc, count desc, antecedent length asc, row
   asc): a total order, so ties are broken stably.
4. Each candidate item (a consequent not in the basket and not excluded) is explained by the
   best-ranked rule that fires for it. Its score is that rule's score plus, for ``smoothed``,
   ``combine`` times the summed evidence ``max(score - s_y, 0)`` of all its fired rules (so
   an item that several basket items point to gains on one that a single rule points to).
   Candidates are returned by score desc, then by their best rule's rank.
5. When fewer than ``k`` items come from rules, the rest are the most popular items (training
   count desc, item id asc) not in the basket, not excluded and not already recommended, with
   ``fallback=True``, ``rule=None`` and their support as score.

With ``one_scale``, every item also has the empty-antecedent rule ``{} -> y``, which always
fires and scores the item's base rate ``s_y``: an item is a rule candidate only when its best
fired rule scores above ``s_y`` (a weaker rule says less than popularity does), and rule
candidates and popular items are merged by score (a rule candidate first on a tie), so a popular
item outranks a weak rule. With the other methods popular items only fill the answer (step 5).
``lift_product`` is on one scale too, in logs: a rule's evidence is its smoothed log-lift
``max(ln q - ln s_y, 0)``, an item's score ``ln s_y`` plus its best rule's evidence plus
``combine`` times the others' (1: the naive-Bayes product of the lifts), and the answer gives
``min(exp(score), 1)``. docs/model-format.md, "Scoring a basket", is the specification.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from basketry.model._compiled import FREE as _FREE
from basketry.model._compiled import kernels
from basketry.model.columns import list_parts, view
from basketry.model.errors import ModelError, ScoringArgumentError

#: The scoring methods and their parameters with defaults; the manifest's ``scoring`` object
#: is ``{"method": ..., **parameters}``.
SCORING_METHODS: dict[str, dict[str, float]] = {
    "smoothed": {"prior_weight": 10.0, "combine": 0.01},
    "one_scale": {"prior_weight": 10.0, "combine": 0.01},
    "lift_product": {"prior_weight": 10.0, "combine": 1.0},
    "confidence": {},
    "lift": {},
}
DEFAULT_SCORING = "smoothed"
#: Methods on which rules and popular items compete on one scale (the base rate is a rule too).
ONE_SCALE_METHODS = frozenset({"one_scale", "lift_product"})
#: Methods whose rules score on a log scale (the answers give ``min(exp(score), 1)``).
LOG_METHODS = frozenset({"lift_product"})


def scoring_spec(scoring: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The complete scoring object (method and every parameter) for a method name, a partial
    scoring object (missing parameters take their defaults) or ``None`` (the default)."""
    if scoring is None:
        scoring = {}
    if isinstance(scoring, str):
        scoring = {"method": scoring}
    if not isinstance(scoring, Mapping):
        raise ModelError(f"scoring must be a method name or an object, got {scoring!r}")
    method = scoring.get("method", DEFAULT_SCORING)
    if method not in SCORING_METHODS:
        raise ModelError(f"unknown scoring method {method!r}; known: {sorted(SCORING_METHODS)}")
    defaults = SCORING_METHODS[method]
    unknown = sorted(set(scoring) - {"method"} - set(defaults))
    if unknown:
        raise ModelError(f"scoring method {method!r} has no parameter(s) {unknown}")
    spec: dict[str, Any] = {"method": method}
    for name, default in defaults.items():
        value = scoring.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 \
                or not np.isfinite(value):
            raise ModelError(f"scoring parameter {name} must be a finite number >= 0, "
                             f"got {value!r}")
        spec[name] = float(value)
    if method == "lift_product" and spec["combine"] > 1:
        raise ModelError("scoring parameter combine of lift_product must be within 0..1 (the "
                         f"weight of the other fired rules' evidence), got {spec['combine']!r}")
    return spec


def check_k(k: object, n_items: int) -> int:
    """``k`` as the number of items to compute: a whole number >= 1 (not a bool, not a float),
    clipped to ``n_items`` (no answer has more), so no array is ever sized by a huge ``k``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ScoringArgumentError(f"k must be a whole number >= 1, got {k!r}")
    if k < 1:
        raise ScoringArgumentError(f"k must be >= 1, got {k}")
    return min(int(k), n_items)


def _rule_values(rules: pa.Table, spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Each rule's score and its evidence ``max(score - s_y, 0)`` under ``spec``."""
    method = spec["method"]
    s_y = view(rules.column("consequent_support")).astype(np.float64)
    if method in ("smoothed", "one_scale", "lift_product"):
        m = spec["prior_weight"]
        n_xy = view(rules.column("count")).astype(np.float64)
        n_x = view(rules.column("antecedent_count")).astype(np.float64)
        score = (n_xy + m * s_y) / np.maximum(n_x + m, 1e-300)
        if method == "lift_product":
            # log scale: the base rate times the smoothed lifts of the fired rules above 1, the
            # best one's fully and the others' with weight combine (1: naive Bayes)
            with np.errstate(divide="ignore"):
                log_lift = np.maximum(np.log(score) - np.log(s_y), 0.0)
                return np.log(s_y) + (1.0 - spec["combine"]) * log_lift, log_lift
    else:
        score = view(rules.column(method)).astype(np.float64)
    return score, np.maximum(score - s_y, 0.0)


@dataclass(frozen=True, slots=True)
class FiredRule:
    """The rule that produced a recommendation."""

    antecedent: tuple[str, ...]
    consequent: str
    confidence: float
    lift: float
    support: float
    count: int


@dataclass(frozen=True, slots=True)
class Recommendation:
    item: str
    label: str | None
    score: float
    fallback: bool
    rule: FiredRule | None


@dataclass(frozen=True, slots=True)
class Recommendations:
    items: list[Recommendation]
    unknown: list[str]
    model_version: str

    @property
    def from_rules(self) -> int:
        return sum(1 for r in self.items if not r.fallback)


class Ranked(NamedTuple):
    """A recommendation as ids: what ``RuleScorer.rank`` answers, for callers that build their
    own answer documents (the serving application) without a ``Recommendation`` per item.
    ``recommend`` is the same answer with names, labels and rule explanations."""

    #: recommended item ids (indices into ``RuleScorer.items``), best first
    items: list[int]
    #: the rank of the rule that explains each item (``RuleScorer.explain``), -1 for fallback
    ranks: list[int]
    #: each item's score
    scores: list[float]
    #: how many of ``items`` came from rules (those with a rank >= 0); the rest are popular
    #: items (the last ones, except with a one-scale method, where they compete by score)
    from_rules: int
    #: items of the basket the model does not know, in order of first appearance
    unknown: list[str]
    #: items of the basket the model knows (distinct)
    n_known: int


_NO_IDS = np.empty(0, dtype=np.int32)


def _id_array(ids: np.ndarray) -> np.ndarray:
    """``ids`` as the scoring kernel takes them: a contiguous 1-D int32 array (the same array
    when it is one already, as ``ids_of`` gives)."""
    if type(ids) is np.ndarray and ids.dtype == np.int32 and ids.ndim == 1 \
            and ids.flags.c_contiguous and ids.flags.aligned:
        return ids
    out = np.ascontiguousarray(ids, dtype=np.int32)
    if out.ndim != 1:
        raise ScoringArgumentError(f"item ids must be a 1-D array, got shape {out.shape}")
    return out


def _list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (starting at 0) and flat values of a list<int32> column."""
    column = table.column(name)
    # one chunk is used as it is (combining even one chunk copies it)
    array = (column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
             if column.num_chunks else pa.array([], type=column.type))
    # numpy views of the buffers: to_numpy would import pandas (0.2 s of a worker's start)
    offsets, values = list_parts(array)
    return offsets, values.astype(np.int32, copy=False)


class RuleScorer:
    """Recommendations from a model's items and rules, indexed by antecedent."""

    def __init__(
        self,
        items: pa.Table,
        rules: pa.Table,
        *,
        n_baskets: int,
        model_version: str = "",
        scoring: str | Mapping[str, Any] | None = None,
    ) -> None:
        #: the complete scoring object: method and parameters (see ``scoring_spec``)
        self.scoring = scoring_spec(scoring)
        self._combine = float(self.scoring.get("combine", 0.0))
        self.model_version = model_version
        self.n_baskets = max(int(n_baskets), 1)
        self.items: list[str] = items.column("item").to_pylist()
        self.labels: list[str | None] = items.column("label").to_pylist()
        self.item_counts = view(items.column("count")).astype(np.int64)
        self.item_ids = {item: i for i, item in enumerate(self.items)}
        # popularity: count desc, id asc (a stable sort of the negated counts)
        self.popular = np.argsort(-self.item_counts, kind="stable")

        a_off, a_val = _list_column(rules, "antecedent")
        c_off, c_val = _list_column(rules, "consequent")
        single = np.flatnonzero(np.diff(c_off) == 1)
        all_scores, all_excess = _rule_values(rules, self.scoring)
        score = all_scores[single]
        lift = view(rules.column("lift"))[single]
        count = view(rules.column("count"))[single]
        a_len = np.diff(a_off)[single]
        # global rank of every usable rule: the documented total order (np.lexsort: last key first)
        order = np.lexsort((single, a_len, -count, -lift, -score))
        self._rule_row = single[order]  # rank -> row in rules.parquet
        self._consequent = c_val[c_off[self._rule_row]]
        self._score = np.ascontiguousarray(score[order])
        excess = all_excess[single][order]
        self._confidence = view(rules.column("confidence"))[self._rule_row]
        self._lift = lift[order]
        self._support = view(rules.column("support"))[self._rule_row]
        self._count = count[order]
        self._a_off, self._a_val = a_off, a_val

        # a trie over the antecedents (item ids ascending), each node holding the ranks of the
        # rules whose antecedent ends there, ascending; built with array operations, not a
        # Python loop per rule (a 98k-rule model loads in a fraction of the time)
        self._build_trie(a_off, a_val, self._rule_row, len(self.items))
        # per-thread scratch for the compiled walk, so concurrent threads never share one
        self._local = threading.local()
        # answers are immutable, so each rule's and each popular item's is built once
        self._by_rank: dict[int, Recommendation] = {}
        self._by_item: dict[int, Recommendation] = {}
        self._consequent = self._consequent.astype(np.int32)
        # each group entry's consequent and evidence beside it (read sequentially in the walk)
        self._group_item = np.ascontiguousarray(self._consequent[self._group_ranks])
        self._group_excess = np.ascontiguousarray(excess[self._group_ranks])
        self._item_support = self.item_counts.astype(np.float64) / self.n_baskets
        # the score a rule must beat to make its item a candidate: the base rate on one scale,
        # nothing otherwise (rules always come before popular items)
        method = self.scoring["method"]
        self._log_scale = method in LOG_METHODS
        if method not in ONE_SCALE_METHODS:
            self._floor = np.full(len(self.items), -np.inf)
        elif self._log_scale:
            with np.errstate(divide="ignore"):
                self._floor = np.log(self._item_support)
        else:
            self._floor = self._item_support
        self._answer = self._answer_kernel()

    def _build_trie(self, a_off: np.ndarray, a_val: np.ndarray, rows: np.ndarray,
                    n_items: int) -> None:
        """The antecedent trie of the rules at ``rows`` (rank order): ``_nodes`` (per node: its
        rules' range in ``_group_ranks``, its child edges' range), ``_child_item`` and
        ``_child_node`` (edges sorted by parent node, then item), ``_group_ranks``."""
        # each antecedent's ids ascending (a loaded model's are already; a table built in
        # Python need not be)
        segment = np.repeat(np.arange(len(a_off) - 1), np.diff(a_off))
        a_val = a_val[np.lexsort((a_val, segment))]
        start, length = a_off[rows], (a_off[rows + 1] - a_off[rows])
        self.max_antecedent_len = int(length.max()) if len(length) else 0
        terminal = np.zeros(len(rows), dtype=np.int64)  # the root for an empty antecedent
        n_nodes = 1
        edge_parent, edge_item, edge_child = [], [], []
        for depth in range(self.max_antecedent_len):
            deeper = np.flatnonzero(length > depth)
            parent = terminal[deeper]
            item = a_val[start[deeper] + depth].astype(np.int64)
            key = parent * (n_items + 1) + item
            unique, inverse = np.unique(key, return_inverse=True)
            child = n_nodes + np.arange(len(unique), dtype=np.int64)
            edge_parent.append(unique // (n_items + 1))
            edge_item.append(unique % (n_items + 1))
            edge_child.append(child)
            terminal[deeper] = child[inverse]
            n_nodes += len(unique)
        parents = np.concatenate(edge_parent) if edge_parent else np.empty(0, np.int64)
        items = np.concatenate(edge_item) if edge_item else np.empty(0, np.int64)
        childs = np.concatenate(edge_child) if edge_child else np.empty(0, np.int64)
        order = np.lexsort((items, parents))
        self._child_item = items[order].astype(np.int32)
        self._child_node = childs[order].astype(np.int64)
        child_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(parents, minlength=n_nodes), out=child_ptr[1:])
        # each node's rules: ranks grouped by terminal node, ascending within a node
        self._group_ranks = np.argsort(terminal, kind="stable").astype(np.int64)
        group_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(terminal, minlength=n_nodes), out=group_ptr[1:])
        self._nodes = np.zeros((n_nodes, 4), dtype=np.int64)
        self._nodes[:, 0], self._nodes[:, 1] = group_ptr[:-1], group_ptr[1:]
        self._nodes[:, 2], self._nodes[:, 3] = child_ptr[:-1], child_ptr[1:]

    def _answer_kernel(self) -> Callable:
        """The scoring kernel for ``rank``. Resolved now, so that a process without it (no
        compiled module, no numba) fails when it loads a model, with ``KernelsUnavailable``'s one
        line, not at its first answer. Its arguments are this scorer's arrays, built above and
        never replaced, and per call arrays ``rank`` builds as int32: checked once here, the
        kernel is called without the per-call check (3 us of the 5-10 us of an answer)."""
        scratch, evidence = self._scratch()
        sample = (_NO_IDS, _NO_IDS, _NO_IDS, 1, *self._trie(), *self._tail(), scratch, evidence)
        if kernels.matches("answer_basket", sample):
            return kernels.unchecked("answer_basket")
        return kernels.answer_basket  # pragma: no cover - checked per call

    @property
    def n_rules(self) -> int:
        """Rules usable for recommendations (single-item consequent)."""
        return int(self._rule_row.shape[0])

    def _tail(self) -> tuple[Any, ...]:
        """The kernels' arguments after the trie: combine, popular, item_support, floor."""
        return (self._combine, self.popular, self._item_support, self._floor)

    def _trie(self) -> tuple[np.ndarray, ...]:
        return (self._nodes, self._child_item, self._child_node, self._group_ranks,
                self._group_item, self._group_excess, self._consequent, self._score)

    def ids_of(self, items: Iterable[str]) -> np.ndarray:
        """The ids (int32, ascending, distinct) of the given items that the model knows."""
        item_ids = self.item_ids
        return np.array(sorted({i for i in map(item_ids.get, items) if i is not None}),
                        dtype=np.int32)

    def _scratch(self) -> tuple[np.ndarray, np.ndarray]:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = (
                np.full(len(self.items), _FREE, dtype=np.int64),
                np.zeros(len(self.items), dtype=np.float64),
            )
        return scratch

    def top_items(
        self, baskets_ptr: np.ndarray, baskets_items: np.ndarray, k: int, *,
        use_rules: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """What ``recommend`` answers, for many baskets at once and as item ids (the offline
        evaluation's fast path; the same compiled scoring). Basket ``q`` is
        ``baskets_items[baskets_ptr[q]:baskets_ptr[q + 1]]``: known item ids, ascending and
        unique. Returns the ``(n_baskets, k)`` recommended ids, best first (-1 where fewer than
        ``k`` items exist), and how many of each row came from rules (the rest are fallback).
        ``use_rules=False`` gives the popularity answers alone."""
        computed = check_k(k, len(self.items))
        scratch, evidence = self._scratch()
        top, from_rules = kernels.batch_top_items(
            np.ascontiguousarray(baskets_ptr, dtype=np.int64),
            np.ascontiguousarray(baskets_items, dtype=np.int32),
            computed,
            bool(use_rules),
            *self._trie(),
            *self._tail(),
            scratch,
            evidence,
        )
        if computed < k:  # columns past the number of items hold no item
            top = np.hstack((top, np.full((top.shape[0], int(k) - computed), -1, np.int64)))
        return top, from_rules

    def _from_rule(self, rank: int, score: float) -> Recommendation:
        """The (immutable) recommendation that the rule of ``rank`` makes with ``score``; the
        one at the rule's own score (the common case) is built once and cached."""
        found = self._by_rank.get(rank)
        if found is None:
            item = int(self._consequent[rank])
            found = self._by_rank[rank] = Recommendation(
                item=self.items[item],
                label=self.labels[item],
                score=float(self._score[rank]),
                fallback=False,
                rule=self._explain(rank),
            )
        if found.score != score:
            found = Recommendation(item=found.item, label=found.label, score=score,
                                   fallback=False, rule=found.rule)
        return found

    def _from_popularity(self, item: int) -> Recommendation:
        found = self._by_item.get(item)
        if found is None:
            found = self._by_item[item] = Recommendation(
                item=self.items[item],
                label=self.labels[item],
                score=float(self.item_counts[item]) / self.n_baskets,
                fallback=True,
                rule=None,
            )
        return found

    def explain(self, rank: int) -> FiredRule:
        """The rule of ``rank`` (as in ``Ranked.ranks``)."""
        return self._explain(rank)

    def _explain(self, rank: int) -> FiredRule:
        row = int(self._rule_row[rank])
        items = self.items
        return FiredRule(
            antecedent=tuple([items[i] for i in self._a_val[self._a_off[row] : self._a_off[row + 1]]
                              .tolist()]),
            consequent=self.items[int(self._consequent[rank])],
            confidence=float(self._confidence[rank]),
            lift=float(self._lift[rank]),
            support=float(self._support[rank]),
            count=int(self._count[rank]),
        )

    def rank(
        self, basket: Iterable[str], k: int = 5, exclude: Iterable[str] = (), *,
        banned: np.ndarray | None = None,
    ) -> Ranked:
        """The top-``k`` items to add to ``basket`` as ids (see ``Ranked``); ``banned`` are
        further item ids never to recommend (e.g. from ``ids_of`` of a catalogue, resolved once).
        See the module docstring for the method. ``k``: a whole number >= 1
        (``ScoringArgumentError`` if not); above the number of items, every item that may be
        recommended is."""
        k = check_k(k, len(self.items))
        get = self.item_ids.get
        known: set[int] = set()
        unknown: list[str] = []
        for item in basket:
            i = get(item)
            if i is None:
                if item not in unknown:
                    unknown.append(item)
            else:
                known.add(i)
        scratch, evidence = self._scratch()
        items, ranks, scores, from_rules = self._answer(
            np.array(sorted(known), dtype=np.int32),
            self.ids_of(exclude) if exclude else _NO_IDS,
            _NO_IDS if banned is None else _id_array(banned),
            int(k),
            *self._trie(),
            *self._tail(),
            scratch,
            evidence,
        )
        ranks_list, scores_list = ranks.tolist(), scores.tolist()
        if self._log_scale:
            # a rule item's score as a probability estimate (capped at 1: a product of many
            # lifts has no bound), a popular item's its support, as for every method
            scores_list = [(math.exp(x) if x < 0.0 else 1.0) if r >= 0 else x
                           for r, x in zip(ranks_list, scores_list, strict=True)]
        return Ranked(items.tolist(), ranks_list, scores_list, int(from_rules), unknown,
                      len(known))

    def recommend(
        self, basket: Iterable[str], k: int = 5, exclude: Iterable[str] = ()
    ) -> Recommendations:
        """The top-``k`` items to add to ``basket``; see the module docstring for the method."""
        ranked = self.rank(basket, k, exclude)
        out = [self._from_rule(rank, score) if rank >= 0 else self._from_popularity(item)
               for item, rank, score in zip(ranked.items, ranked.ranks, ranked.scores,
                                            strict=True)]
        return Recommendations(items=out, unknown=ranked.unknown,
                               model_version=self.model_version)

    def associations(self, item: str, k: int = 5) -> Recommendations:
        """What is bought with one product (a product page, before any basket exists)."""
        return self.recommend([item], k=k)

    def label(self, item: str) -> str | None:
        i = self.item_ids.get(item)
        return None if i is None else self.labels[i]

    def recommend_many(
        self, baskets: Sequence[Sequence[str]], k: int = 5
    ) -> list[Recommendations]:
        return [self.recommend(b, k=k) for b in baskets]
