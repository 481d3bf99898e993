"""Next-order evaluation ("after the purchase"): on a time split, for each customer with an
order before the cut-off and one at or after it, rank from the customer's last order before the
cut-off (and their earlier orders) and look for the items of their first order after it.

Rankers: the sequential rules with buy-again (``basketry.model.sequential.AfterPurchase``, the
ranking the service answers with), popularity, the customer's own most frequent past items, and
the co-purchase rules applied to the last order (the cart model). Metrics per customer, averaged:
``hit_rate@k`` (some item of the next order among the top k) and ``recall@k`` (the share of the
next order's distinct items among the top k; items the model does not know count as misses).
The protocol is in docs/evaluation.md ("After the purchase").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.data import Baskets, DataError
from basketry.mining.errors import MiningError
from basketry.mining.sequential import HORIZON_DAYS, histories, mine_sequential
from basketry.model import RuleScorer
from basketry.model.columns import view
from basketry.model.protocol import KS
from basketry.model.sequential import AfterPurchase, SequentialPart

if TYPE_CHECKING:
    from basketry.training.pipeline import PreparedSplit

__all__ = ["HORIZON_DAYS", "after_purchase_evaluation", "after_purchase_settings",
           "evaluate_next_order", "next_order_cases"]

def after_purchase_settings(enabled: bool | None, horizon_days: float | None
                            ) -> tuple[bool, float]:
    """What a fit does after the purchase: on unless ``enabled`` is False, over
    ``horizon_days`` (default :data:`HORIZON_DAYS`); a horizon <= 0 is refused
    (``MiningError``, one line) before any work."""
    horizon = HORIZON_DAYS if horizon_days is None else horizon_days
    if isinstance(horizon, bool) or not horizon > 0:
        raise MiningError(f"the horizon must be a number of days > 0, got {horizon!r}")
    return (True if enabled is None else bool(enabled)), float(horizon)


#: The rankers, in report order.
NEXT_ORDER_RANKERS = ("sequential", "own_frequent", "co_purchase", "popularity")
LABELS = {"sequential": "sequential rules + buy again", "own_frequent": "own most frequent",
          "co_purchase": "co-purchase rules on the last order", "popularity": "popularity"}


@dataclass(frozen=True)
class NextOrderCases:
    """The evaluation's customers: their last order before the cut-off (``last``), their
    earlier orders (``earlier``, most recent first) and their next order's items (``target``),
    all in the model's item ids (-1: unknown to the model)."""

    last: list[np.ndarray]
    earlier: list[list[np.ndarray]]
    target: list[np.ndarray]
    n_customers_before: int  # customers with an order before the cut-off

    @property
    def n_cases(self) -> int:
        return len(self.target)


def next_order_cases(baskets: Baskets, cutoff: np.datetime64, old_to_new: np.ndarray
                     ) -> NextOrderCases:
    """The cases of ``baskets`` cut at ``cutoff`` (train < cutoff <= test), ids mapped by
    ``old_to_new`` (the data's ids -> the model's)."""
    h = histories(baskets)
    cut = np.datetime64(cutoff, "ns").astype(np.int64)
    mapping = np.asarray(old_to_new, dtype=np.int64)
    last, earlier, target = [], [], []
    before_any = 0

    def items(order: int) -> np.ndarray:
        b = h.basket[order]
        return mapping[baskets.indices[baskets.indptr[b]:baskets.indptr[b + 1]]]

    for c in range(h.ptr.shape[0] - 1):
        lo, hi = int(h.ptr[c]), int(h.ptr[c + 1])
        split = lo + int(np.searchsorted(h.time[lo:hi], cut, side="left"))
        if split == lo:
            continue
        before_any += 1
        if split == hi:
            continue
        last.append(items(split - 1))
        earlier.append([items(o) for o in range(split - 2, lo - 1, -1)])
        target.append(items(split))
    return NextOrderCases(last=last, earlier=earlier, target=target,
                          n_customers_before=before_any)


def own_frequent_top(last: np.ndarray, earlier: list[np.ndarray], k: int,
                     popular: np.ndarray) -> np.ndarray:
    """The customer's past items by the number of their orders holding each (desc), then the
    most recent first, then id; filled with the most popular items."""
    counts: dict[int, int] = {}
    recency: dict[int, int] = {}
    for age, order in enumerate((last, *earlier)):
        for item in np.unique(order[order >= 0]).tolist():
            counts[item] = counts.get(item, 0) + 1
            recency.setdefault(item, age)
    ranked = sorted(counts, key=lambda i: (-counts[i], recency[i], i))[:k]
    if len(ranked) < k:
        seen = set(ranked)
        ranked += [int(i) for i in popular[:k + len(seen)] if int(i) not in seen][:k - len(ranked)]
    return np.asarray(ranked, dtype=np.int64)


def _scores(tops: list[np.ndarray], targets: list[np.ndarray], ks: tuple[int, ...]
            ) -> dict[str, float]:
    out: dict[str, float] = {}
    n = max(len(targets), 1)
    for k in ks:
        hits = 0
        recall = 0.0
        for top, target in zip(tops, targets, strict=True):
            wanted = np.unique(target)
            known = wanted[wanted >= 0]
            found = np.intersect1d(top[:k], known).shape[0]
            hits += found > 0
            recall += found / max(wanted.shape[0], 1)
        out[f"hit_rate@{k}"] = hits / n
        out[f"recall@{k}"] = recall / n
    return out


def evaluate_next_order(
    cases: NextOrderCases,
    after: AfterPurchase,
    *,
    cart: RuleScorer | None = None,
    ks: tuple[int, ...] = KS,
) -> dict[str, dict[str, float]]:
    """The metrics of every ranker on ``cases`` (``cart``: the co-purchase model, same ids)."""
    if not cases.n_cases:
        raise DataError("no customer has an order both before and after the cut-off: "
                        "nothing to evaluate the next order on")
    k = max(ks)
    popular = np.lexsort((np.arange(after.n_items), -after.popularity))
    tops: dict[str, list[np.ndarray]] = {name: [] for name in NEXT_ORDER_RANKERS}
    for last, earlier in zip(cases.last, cases.earlier, strict=True):
        tops["sequential"].append(after.top_ids(last, earlier, k))
        tops["own_frequent"].append(own_frequent_top(last, earlier, k, popular))
        tops["popularity"].append(popular[:k])
    if cart is not None:
        ptr = np.zeros(cases.n_cases + 1, dtype=np.int64)
        known = [np.unique(x[x >= 0]).astype(np.int32) for x in cases.last]
        np.cumsum([x.shape[0] for x in known], out=ptr[1:])
        flat = np.concatenate(known) if known else np.zeros(0, dtype=np.int32)
        top, _ = cart.top_items(ptr, flat, k)
        tops["co_purchase"] = [row[row >= 0] for row in top]
    else:
        del tops["co_purchase"]
    return {name: _scores(t, cases.target, ks) for name, t in tops.items()}


def next_order_report(cases: NextOrderCases, after: AfterPurchase,
                      metrics: dict[str, dict[str, float]], cutoff: Any) -> dict[str, Any]:
    """What ``train`` records of the next-order evaluation (the report's ``after_purchase``)."""
    part = after.part
    best_baseline = max((v["hit_rate@10"] for name, v in metrics.items()
                         if name != "sequential"), default=0.0)
    verdict = [] if metrics["sequential"]["hit_rate@10"] >= best_baseline else [
        f"{LABELS[name]} beats the sequential rules on the next order: HR@10 "
        f"{v['hit_rate@10']:.4f} vs {metrics['sequential']['hit_rate@10']:.4f}"
        for name, v in metrics.items()
        if name != "sequential" and v["hit_rate@10"] > metrics["sequential"]["hit_rate@10"]]
    return {
        "protocol": "next order: rank from the last order before the cut-off and the earlier "
                    "ones, look for the items of the first order after it",
        "cutoff": str(cutoff),
        "n_cases": cases.n_cases,
        "n_customers_before": cases.n_customers_before,
        "sequential": {**part.parameters, **part.counts()},
        "metrics": metrics,
        "verdict": verdict,
    }


def after_purchase_evaluation(
    baskets: Baskets,
    prepared: PreparedSplit,
    items: Any,
    cart: RuleScorer,
    horizon_days: float = HORIZON_DAYS,
    progress: Callable[[str], None] | None = None,
) -> tuple[SequentialPart | None, dict[str, Any]]:
    """``train``'s second moment: the sequential rules of the training part (in the model's
    ids) and their next-order evaluation on the test part, against the baselines; ``(None,
    {"skipped": why})`` when the data cannot tell (no customers, no timestamps, a random split,
    nobody ordering again within the horizon, no customer on both sides of the cut-off)."""
    split = prepared.split
    if baskets.customers is None or baskets.timestamps is None:
        missing = "customer" if baskets.customers is None else "timestamp"
        return None, {"skipped": f"the data has no {missing} column"}
    if split.method != "time" or split.cutoff is None:
        return None, {"skipped": "a random split: the next order needs a time split"}
    say = progress or (lambda _message: None)
    say("mining sequential rules (after the purchase)")
    try:
        part = mine_sequential(prepared.train, horizon_days=horizon_days)
    except MiningError as exc:
        return None, {"skipped": str(exc)}
    counts = view(items.column("count").combine_chunks()).astype(np.float64)
    after = AfterPurchase(part, counts / max(prepared.train.n_baskets, 1))
    say("evaluating the next order")
    cases = next_order_cases(baskets, split.cutoff, prepared.old_to_new)
    if not cases.n_cases:
        return part, {"skipped": "no customer has an order both before and after the cut-off"}
    metrics = evaluate_next_order(cases, after, cart=cart)
    return part, next_order_report(cases, after, metrics, split.cutoff)
