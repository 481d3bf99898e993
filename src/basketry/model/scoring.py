"""Scoring a basket against the rules of a model: the recommendation logic shared by
offline evaluation and the serving application.

How a recommendation is chosen (deterministic, documented in docs/model-format.md):

1. Items of the basket that the model does not know are ignored and reported as ``unknown``.
2. A rule *fires* when its whole antecedent is in the basket. Rules are found through a trie
   over the antecedents (item ids ascending), walked depth-first along the basket's items, so
   the cost grows with the antecedents the basket matches, not with the rules in the model.
   Only single-item-consequent rules are used for recommendations.
3. Every rule has a score (``confidence`` by default). Rules are ranked once, at load time, by
   (score desc, lift desc, count desc, antecedent length asc, row in rules.parquet asc): a total
   order, so ties are broken stably.
4. Each candidate item (a consequent not in the basket and not excluded) takes the best-ranked
   rule that fires for it; its score and explanation are that rule's. Candidates are returned in
   rank order.
5. When fewer than ``k`` items come from rules, the rest are the most popular items (training
   count desc, item id asc) not in the basket, not excluded and not already recommended, with
   ``fallback=True``, ``rule=None`` and their support as score.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from basketry.model._fire import _FREE, best_ranks
from basketry.model.errors import ModelError

#: How a rule's score is derived from its measures; the manifest's ``scoring.method`` picks one.
RULE_SCORES = {
    "confidence": lambda rules: rules.column("confidence").to_numpy(),
    "lift": lambda rules: rules.column("lift").to_numpy(),
}
DEFAULT_SCORING = "confidence"


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


def _list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (starting at 0) and flat values of a list<int32> column."""
    column = table.column(name)
    array = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.to_numpy(zero_copy_only=False).astype(np.int32)
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]


class RuleScorer:
    """Recommendations from a model's items and rules, indexed by antecedent."""

    def __init__(
        self,
        items: pa.Table,
        rules: pa.Table,
        *,
        n_baskets: int,
        model_version: str = "",
        scoring: str = DEFAULT_SCORING,
    ) -> None:
        if scoring not in RULE_SCORES:
            raise ModelError(f"unknown scoring method {scoring!r}; known: {sorted(RULE_SCORES)}")
        self.model_version = model_version
        self.n_baskets = max(int(n_baskets), 1)
        self.items: list[str] = items.column("item").to_pylist()
        self.labels: list[str | None] = items.column("label").to_pylist()
        self.item_counts = items.column("count").to_numpy().astype(np.int64)
        self.item_ids = {item: i for i, item in enumerate(self.items)}
        # popularity: count desc, id asc (a stable sort of the negated counts)
        self.popular = np.argsort(-self.item_counts, kind="stable")
        self._popular_list: list[int] = self.popular.tolist()

        a_off, a_val = _list_column(rules, "antecedent")
        c_off, c_val = _list_column(rules, "consequent")
        single = np.flatnonzero(np.diff(c_off) == 1)
        score = np.asarray(RULE_SCORES[scoring](rules), dtype=np.float64)[single]
        lift = rules.column("lift").to_numpy()[single]
        count = rules.column("count").to_numpy()[single]
        a_len = np.diff(a_off)[single]
        # global rank of every usable rule: the documented total order (np.lexsort: last key first)
        order = np.lexsort((single, a_len, -count, -lift, -score))
        self._rule_row = single[order]  # rank -> row in rules.parquet
        self._consequent = c_val[c_off[self._rule_row]]
        self._score = score[order]
        self._confidence = rules.column("confidence").to_numpy()[self._rule_row]
        self._lift = lift[order]
        self._support = rules.column("support").to_numpy()[self._rule_row]
        self._count = count[order]
        self._a_off, self._a_val = a_off, a_val

        # group ranks by antecedent, then a trie over the antecedents (item ids ascending)
        keys = [tuple(sorted(a_val[a_off[r] : a_off[r + 1]].tolist())) for r in self._rule_row]
        grouped: dict[tuple[int, ...], list[int]] = {}
        for rank, key in enumerate(keys):
            grouped.setdefault(key, []).append(rank)
        children: list[dict[int, int]] = [{}]
        ranges: dict[int, tuple[int, int]] = {}
        ranks: list[int] = []
        self.max_antecedent_len = 0
        for key, members in grouped.items():
            node = 0
            for item in key:
                nxt = children[node].get(item)
                if nxt is None:
                    nxt = children[node][item] = len(children)
                    children.append({})
                node = nxt
            ranges[node] = (len(ranks), len(ranks) + len(members))
            ranks.extend(members)  # ascending rank within each group
            self.max_antecedent_len = max(self.max_antecedent_len, len(key))
        n_nodes = len(children)
        self._child_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum([len(c) for c in children], out=self._child_ptr[1:])
        edges = [(item, child) for c in children for item, child in sorted(c.items())]
        self._child_item = np.array([e[0] for e in edges], dtype=np.int32)
        self._child_node = np.array([e[1] for e in edges], dtype=np.int64)
        self._node_lo = np.zeros(n_nodes, dtype=np.int64)
        self._node_hi = np.zeros(n_nodes, dtype=np.int64)
        for node, (lo, hi) in ranges.items():
            self._node_lo[node], self._node_hi[node] = lo, hi
        self._group_ranks = np.asarray(ranks, dtype=np.int64)
        # per-thread scratch for the compiled walk, so concurrent threads never share one
        self._local = threading.local()
        # answers are immutable, so each rule's and each popular item's is built once
        self._by_rank: dict[int, Recommendation] = {}
        self._by_item: dict[int, Recommendation] = {}
        self._consequent = self._consequent.astype(np.int32)

    @property
    def n_rules(self) -> int:
        """Rules usable for recommendations (single-item consequent)."""
        return int(self._rule_row.shape[0])

    def _best_ranks(self, known: set[int], blocked: set[int], k: int) -> np.ndarray:
        """Rank of the best fired rule of each of the top-``k`` candidates, best first."""
        return best_ranks(
            np.array(sorted(known), dtype=np.int32),
            np.fromiter(blocked, dtype=np.int32, count=len(blocked)),
            k,
            self._child_ptr,
            self._child_item,
            self._child_node,
            self._node_lo,
            self._node_hi,
            self._group_ranks,
            self._consequent,
            self._scratch(),
        )

    def _scratch(self) -> np.ndarray:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = np.full(len(self.items), _FREE, dtype=np.int64)
        return scratch

    def _from_rule(self, rank: int) -> Recommendation:
        """The (immutable, cached) recommendation that the rule of ``rank`` makes."""
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

    def recommend(
        self, basket: Iterable[str], k: int = 5, exclude: Iterable[str] = ()
    ) -> Recommendations:
        """The top-``k`` items to add to ``basket``; see the module docstring for the method."""
        if k < 0:
            raise ValueError("k must be >= 0")
        item_ids, unknown, known = self.item_ids, [], set()
        for item in basket:
            i = item_ids.get(item)
            if i is None:
                if item not in unknown:
                    unknown.append(item)
            else:
                known.add(i)
        blocked = set(known)
        blocked.update(i for i in (item_ids.get(x) for x in exclude) if i is not None)

        out: list[Recommendation] = []
        if k and known:
            for rank in self._best_ranks(known, blocked, k).tolist():
                out.append(self._from_rule(rank))
                blocked.add(int(self._consequent[rank]))
        if len(out) < k:
            for item in self._popular_list:
                if item in blocked:
                    continue
                out.append(self._from_popularity(item))
                if len(out) == k:
                    break
        return Recommendations(items=out, unknown=unknown, model_version=self.model_version)

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
