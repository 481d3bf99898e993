"""The training pipeline: split, tune the scoring on a validation slice of the training part,
mine the training part, evaluate on the test part, and save the model with its metrics."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from basketry.data import Baskets, DataError, fingerprint
from basketry.mining import AssociationMiner
from basketry.model import RuleScorer, items_table, scoring_spec
from basketry.training.artifact import save_model
from basketry.training.baselines import ItemKNN
from basketry.training.evaluate import (
    KS,
    MAX_HIDDEN_PER_BASKET,
    MAX_QUERIES,
    Queries,
    baseline_verdict,
    evaluate,
    make_queries,
    ranker_metrics,
)
from basketry.training.next_order import after_purchase_evaluation, after_purchase_settings
from basketry.training.split import (
    Split,
    random_split,
    split_baskets,
    time_split,
    training_vocabulary,
)

#: The scorings tried on the validation slice, in order of preference: on equal validation
#: results the earlier (simpler) one is kept. For each method the search is coordinate-wise:
#: ``prior_weight`` with ``combine`` 0, then ``combine`` at the best ``prior_weight``, then
#: ``prior_weight`` again at the best ``combine`` (at most 16 scorings a method instead of 30).
#: ``smoothed`` with ``prior_weight`` 0 and ``combine`` 0 is max-confidence, and the one-scale
#: methods with a large ``prior_weight`` are close to popularity, so the search spans both
#: baselines; ``lift_product`` with ``combine`` 1 adds up the evidence of every fired rule
#: (naive Bayes), which is what wins on data with larger planted patterns.
TUNING_METHODS: tuple[str, ...] = ("smoothed", "one_scale", "lift_product")
TUNING_GRID: dict[str, tuple[float, ...]] = {
    "prior_weight": (0.0, 5.0, 20.0, 50.0, 200.0, 1000.0),
    "combine": (0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
}
#: What tuning maximises on the validation slice.
TUNING_OBJECTIVE = ("hit_rate@10", "ndcg@10")
#: Bound on the validation queries (tuning is re-scoring only, but it runs once per grid point).
TUNING_MAX_QUERIES = 10_000


@dataclass
class TrainResult:
    """Everything ``train`` produced: the fitted miner, the (narrowed) training baskets, the
    split, the chosen scoring, the metrics of every ranker and the JSON-ready report."""

    miner: AssociationMiner
    train: Baskets
    split: Split
    queries: Queries
    scoring: dict[str, Any]
    metrics: dict[str, dict[str, float | None]]
    tuning: dict[str, Any] | None
    report: dict[str, Any] = field(default_factory=dict)
    #: the sequential part saved with the model (None: not mined, see report["after_purchase"])
    sequential: Any = None

    def manifest_metrics(self) -> dict[str, Any]:
        """The metrics recorded in the model's manifest (deterministic: no timings)."""
        return {"protocol": "hide-one", "ks": list(KS), "split": self.split.describe(),
                "queries": self.queries.describe(), **self.metrics}


def _validation_split(train: Baskets, split: Split) -> Split:
    """A validation slice of the training part, made the way the test part was."""
    if split.method == "time":
        return time_split(train, float(split.test_days or 30.0))
    return random_split(train, float(split.test_fraction or 0.2), int(split.seed or 0) + 1)


def _objective(metrics: dict[str, float | None]) -> float:
    return float(sum(metrics[name] or 0.0 for name in TUNING_OBJECTIVE))


@dataclass(frozen=True)
class PreparedSplit:
    """The split of the data and its training part narrowed to the items it contains (what a
    deployed model knows), with the map from the data's item ids to the training part's."""

    split: Split
    train: Baskets
    old_to_new: np.ndarray


def prepare_split(
    baskets: Baskets,
    *,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
) -> PreparedSplit:
    """Split ``baskets`` as ``train`` does and narrow the training part's vocabulary."""
    split = split_baskets(baskets, test_days=test_days, test_fraction=test_fraction, seed=seed)
    train, old_to_new = training_vocabulary(split.train)
    if train.n_items == 0:
        raise DataError("the training part has no items")
    return PreparedSplit(split=split, train=train, old_to_new=old_to_new)


@dataclass(frozen=True)
class ValidationSlice:
    """What tuning looks at: a validation split of the training part, its earlier (or other)
    baskets narrowed to their vocabulary (what candidates are mined on), and the queries of
    its validation baskets (at most ``TUNING_MAX_QUERIES``). The test part is never in it."""

    split: Split
    fit: Baskets
    queries: Queries


def validation_slice(
    train: Baskets,
    split: Split,
    *,
    seed: int = 0,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
) -> ValidationSlice:
    """Cut the validation slice of ``train`` (the training part of ``split``) the way the
    test part was cut; ``DataError`` when the training part is too small for one."""
    validation = _validation_split(train, split)
    fit, old_to_new = training_vocabulary(validation.train)
    queries = make_queries(validation.test, old_to_new, max_queries=TUNING_MAX_QUERIES,
                           max_hidden_per_basket=max_hidden_per_basket, seed=seed)
    return ValidationSlice(split=validation, fit=fit, queries=queries)


@dataclass(frozen=True)
class MinedRules:
    """Rules mined from some baskets, with what a :class:`RuleScorer` needs around them."""

    miner: AssociationMiner
    items: Any  # pyarrow.Table of the items (model contract's items table)
    rules: Any  # pyarrow.Table of the rules

    def scorer(self, scoring: str | dict[str, Any] | None) -> RuleScorer:
        return RuleScorer(self.items, self.rules, n_baskets=self.miner.n_baskets_,
                          scoring=scoring)


#: What makes the miners of :func:`mine_rules`: the local ``AssociationMiner``, or another
#: engine's (``basketry.mining.spark``) for the block of :func:`mining_with`.
_MINER: ContextVar[Callable[..., AssociationMiner]] = ContextVar("basketry_miner",
                                                                 default=AssociationMiner)


@contextmanager
def mining_with(factory: Callable[..., AssociationMiner]) -> Iterator[None]:
    """Every fit of the train and tune workflows in the block uses ``factory``'s miners (its
    parameters are the miner's; what it finds must be what ``AssociationMiner`` finds)."""
    token = _MINER.set(factory)
    try:
        yield
    finally:
        _MINER.reset(token)


def mine_rules(baskets: Baskets, miner_params: dict[str, Any]) -> MinedRules:
    """Mine ``baskets`` (narrowed to their vocabulary) with ``miner_params``."""
    miner = _MINER.get()(**miner_params).fit(baskets)
    return MinedRules(miner=miner,
                      items=items_table(baskets.items, miner.item_counts_, baskets.labels),
                      rules=miner.rules_table())


def search_scoring(mined: MinedRules, queries: Queries,
                   methods: tuple[str, ...] = TUNING_METHODS) -> tuple[dict[str, Any],
                                                                      list[dict[str, Any]]]:
    """The coordinate search over ``TUNING_GRID`` for each of ``methods`` on ``queries``: the
    best scoring by the sum of HR@10 and NDCG@10 (the earlier one on ties) and every scoring
    tried with its figures."""
    k = max(KS)
    tried: list[dict[str, Any]] = []
    values: dict[tuple[str, float, float], float] = {}
    best: tuple[float, dict[str, Any]] | None = None

    def attempt(method: str, prior_weight: float, combine: float) -> float:
        nonlocal best
        spec = scoring_spec({"method": method, "prior_weight": prior_weight,
                             "combine": combine})
        key = (method, spec["prior_weight"], spec["combine"])
        if key in values:
            return values[key]
        scorer = mined.scorer(spec)
        top, from_rules = scorer.top_items(queries.ptr, queries.items, k)
        metrics = ranker_metrics(top, queries, len(scorer.items), from_rules)
        value = values[key] = _objective(metrics)
        tried.append({**spec, "hit_rate@10": metrics["hit_rate@10"],
                      "ndcg@10": metrics["ndcg@10"]})
        if best is None or value > best[0]:
            best = (value, spec)
        return value

    def best_of(method: str, axis: str, fixed: dict[str, float]) -> float:
        scores = [(attempt(method, **{**fixed, axis: v}), -i, v)
                  for i, v in enumerate(TUNING_GRID[axis])]
        return max(scores)[2]  # the best value, the earlier one on ties

    for method in methods:
        prior = best_of(method, "prior_weight", {"combine": 0.0})
        combine = best_of(method, "combine", {"prior_weight": prior})
        best_of(method, "prior_weight", {"combine": combine})
    assert best is not None
    return best[1], tried


def tuning_record(validation: ValidationSlice, mined: MinedRules, chosen: dict[str, Any],
                  tried: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``train`` records of its tuning (``tuning.json``, the report)."""
    return {
        "objective": " + ".join(TUNING_OBJECTIVE),
        "validation": validation.split.describe(),
        "queries": validation.queries.describe(),
        "n_rules": mined.rules.num_rows,
        "grid": tried,
        "chosen": chosen,
    }


def tune_scoring(
    train: Baskets,
    split: Split,
    miner_params: dict[str, Any],
    *,
    seed: int = 0,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Choose the scoring parameters on a validation slice of the training part: mine the
    earlier (or the other) baskets of the training part with the same parameters, score the
    validation baskets with every grid point, keep the best by the sum of HR@10 and NDCG@10."""
    validation = validation_slice(train, split, seed=seed,
                                  max_hidden_per_basket=max_hidden_per_basket)
    mined = mine_rules(validation.fit, miner_params)
    chosen, tried = search_scoring(mined, validation.queries)
    return chosen, tuning_record(validation, mined, chosen, tried)


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def rule_distributions(rules: Any) -> dict[str, Any]:
    """Histograms of rule confidence (0..1) and lift (log-spaced) for the report."""
    confidence = rules.column("confidence").to_numpy()
    lift = rules.column("lift").to_numpy()
    top = max(float(lift.max()) if lift.size else 2.0, 2.0)
    edges = np.unique(np.geomspace(min(float(lift.min()) if lift.size else 1.0, 1.0), top, 31))
    return {
        "n_rules": int(confidence.shape[0]),
        "confidence": _histogram(confidence, np.linspace(0.0, 1.0, 21)),
        "lift": _histogram(lift, edges if edges.size > 1 else np.array([0.0, 1.0])),
    }


def train_and_evaluate(
    baskets: Baskets,
    miner_params: dict[str, Any],
    *,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    scoring: str | dict[str, Any] | None = None,
    tune: bool = True,
    max_queries: int | None = MAX_QUERIES,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
    progress: Callable[[str], None] | None = None,
    after_purchase: bool | None = None,
    horizon_days: float | None = None,
) -> TrainResult:
    """Split ``baskets``, tune the scoring (unless ``scoring`` is given or ``tune`` is off:
    then the given or default scoring), mine the training part, evaluate on the test part;
    with ``after_purchase`` (default: on), when
    the data has customers and timestamps, also the sequential rules (``horizon_days``,
    default 30) and their next-order evaluation."""
    say = progress or (lambda _message: None)
    prepared = prepare_split(baskets, test_days=test_days, test_fraction=test_fraction,
                             seed=seed)
    tuning = None
    if scoring is None and tune:
        say("tuning the scoring on a validation slice of the training part")
        try:
            spec, tuning = tune_scoring(prepared.train, prepared.split, miner_params, seed=seed,
                                        max_hidden_per_basket=max_hidden_per_basket)
        except DataError as exc:  # too little data for a validation slice
            spec, tuning = scoring_spec(None), {"skipped": str(exc)}
    else:
        spec = scoring_spec(scoring)
    return fit_and_evaluate(baskets, prepared, miner_params, spec, tuning=tuning, seed=seed,
                            max_queries=max_queries,
                            max_hidden_per_basket=max_hidden_per_basket, progress=progress,
                            after_purchase=after_purchase, horizon_days=horizon_days)


def fit_and_evaluate(
    baskets: Baskets,
    prepared: PreparedSplit,
    miner_params: dict[str, Any],
    scoring: str | dict[str, Any] | None,
    *,
    tuning: dict[str, Any] | None = None,
    seed: int = 0,
    max_queries: int | None = MAX_QUERIES,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
    progress: Callable[[str], None] | None = None,
    after_purchase: bool | None = None,
    horizon_days: float | None = None,
) -> TrainResult:
    """Mine the training part of ``prepared`` (a split of ``baskets``) with ``miner_params``,
    score with ``scoring`` and evaluate on the test part against the baselines."""
    say = progress or (lambda _message: None)
    split, train = prepared.split, prepared.train
    spec = scoring_spec(scoring)
    say("mining the training part")
    mined = mine_rules(train, miner_params)
    miner, rules = mined.miner, mined.rules
    scorer = mined.scorer(spec)
    max_conf = mined.scorer("confidence")
    say("evaluating on the test part")
    queries = make_queries(split.test, prepared.old_to_new, max_queries=max_queries,
                           max_hidden_per_basket=max_hidden_per_basket, seed=seed)
    knn = ItemKNN.fit(train)
    metrics = evaluate(scorer, queries, baseline_scorer=max_conf, knn=knn, seed=seed)
    result = TrainResult(miner=miner, train=train, split=split, queries=queries, scoring=spec,
                         metrics=metrics, tuning=tuning)
    result.report = {
        "data": {"source": baskets.source, "n_baskets": baskets.n_baskets,
                 "fingerprint": fingerprint(baskets)},
        "split": split.describe(),
        "training": {"n_baskets": train.n_baskets, "n_items": train.n_items,
                     "fingerprint": fingerprint(train)},
        "mining": {**{k: _plain(v) for k, v in miner_params.items()},
                   "min_count": int(miner.min_count_), "n_rules": rules.num_rows},
        "scoring": spec,
        "tuning": tuning,
        "protocol": {"hide": "one item at a time", "ks": list(KS), "max_queries": max_queries,
                     "max_hidden_per_basket": max_hidden_per_basket, "seed": seed},
        "queries": queries.describe(),
        "metrics": metrics,
        # a plain sentence per baseline that beats the model (empty when none does)
        "verdict": baseline_verdict(metrics),
        "rules": rule_distributions(rules),
    }
    enabled, horizon = after_purchase_settings(after_purchase, horizon_days)
    if enabled:
        result.sequential, result.report["after_purchase"] = after_purchase_evaluation(
            baskets, prepared, mined.items, scorer, horizon, say)
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(str(v) for v in value)
    return value


def save_trained(
    path: str | os.PathLike[str], result: TrainResult, *, overwrite: bool = False
) -> Path:
    """Write the trained model with its scoring and evaluation metrics in the manifest."""
    return save_model(path, result.miner, result.train, metrics=result.manifest_metrics(),
                      scoring=result.scoring, overwrite=overwrite,
                      sequential=result.sequential)
