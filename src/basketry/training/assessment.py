"""A saved model evaluated again on its own split: what ``basketry evaluate`` and ``basketry
models register MODEL DATA`` do for a model trained elsewhere (a DVC pipeline's train stage).

The model's manifest records how its data was split (time split: the test days; random split:
the fraction and seed) and the fingerprint of the training part. The data is split again the
same way; if the training part's fingerprint is not the model's, the data is not what the model
was trained on and nothing is evaluated (one line says so). The test part is then queried as
``train`` queries it, with the same baselines, so the figures are ``train``'s own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from basketry.data import Baskets, DataError, fingerprint
from basketry.model import Model, RuleScorer, load_model
from basketry.model.protocol import KS, MAX_HIDDEN_PER_BASKET, MAX_QUERIES
from basketry.training.baselines import ItemKNN
from basketry.training.evaluate import baseline_verdict, evaluate, make_queries
from basketry.training.pipeline import TrainResult, prepare_split, rule_distributions


class AssessmentError(ValueError):
    """The data cannot evaluate this model (another data set, a split that cannot be redone)."""


def recorded_split(model: Model) -> dict[str, Any]:
    """``test_days`` / ``test_fraction`` / ``seed`` as the model's manifest records them."""
    split = (model.manifest.get("metrics") or {}).get("split") or {}
    method = split.get("method")
    if method == "time":
        return {"test_days": float(split["test_days"]), "test_fraction": None, "seed": 0}
    if method == "random":
        return {"test_days": None, "test_fraction": float(split["test_fraction"]),
                "seed": int(split.get("seed") or 0)}
    raise AssessmentError(f"{model.path}: the manifest records no train/test split (a model "
                          "made by `basketry mine`?); train it with `basketry train`")


def assess(model_dir: str | os.PathLike[str], baskets: Baskets, *,
           max_queries: int | None = MAX_QUERIES,
           max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
           progress: Callable[[str], None] | None = None) -> TrainResult:
    """The saved model at ``model_dir`` (verified) on the test part of its own split of
    ``baskets``, against the baselines: a :class:`TrainResult` as ``train`` makes it, whose
    ``miner`` is None (nothing was mined here)."""
    say = progress or (lambda _message: None)
    model = load_model(model_dir)
    how = recorded_split(model)
    say("splitting the data as the model's training did")
    try:
        prepared = prepare_split(baskets, **how)
    except DataError as exc:
        raise AssessmentError(f"{model.path}: its split cannot be redone on "
                              f"{baskets.source or 'the data'}: {exc}") from None
    expected = (model.manifest.get("dataset") or {}).get("fingerprint")
    found = fingerprint(prepared.train)
    if expected != found:
        raise AssessmentError(
            f"{baskets.source or 'the data'} is not the data {model.path} was trained on: its "
            f"training part is {found[:19]}…, the model's {str(expected)[:19]}… (same file and "
            "read options as the training?)")
    say("evaluating on the test part")
    split = prepared.split
    old_to_new = np.array([model.item_ids.get(str(item), -1) for item in split.test.items],
                          dtype=np.int32)
    seed = how["seed"]
    queries = make_queries(split.test, old_to_new, max_queries=max_queries,
                           max_hidden_per_basket=max_hidden_per_basket, seed=seed)
    artifact = model.artifact
    max_conf = RuleScorer(artifact.items, artifact.rules, n_baskets=model.n_baskets,
                          scoring="confidence")
    metrics = evaluate(model, queries, baseline_scorer=max_conf,
                       knn=ItemKNN.fit(prepared.train), seed=seed)
    result = TrainResult(miner=None, train=prepared.train, split=split,  # type: ignore[arg-type]
                         queries=queries, scoring=dict(model.scoring), metrics=metrics,
                         tuning=None)
    parameters = model.manifest.get("parameters") or {}
    result.report = {
        "data": {"source": baskets.source, "n_baskets": baskets.n_baskets,
                 "fingerprint": fingerprint(baskets)},
        "split": split.describe(),
        "training": {"n_baskets": prepared.train.n_baskets, "n_items": prepared.train.n_items,
                     "fingerprint": found},
        "mining": {**parameters, "n_rules": artifact.rules.num_rows},
        "scoring": dict(model.scoring),
        "tuning": None,
        "protocol": {"hide": "one item at a time", "ks": list(KS),
                     "max_queries": max_queries,
                     "max_hidden_per_basket": max_hidden_per_basket, "seed": seed},
        "queries": queries.describe(),
        "metrics": metrics,
        "verdict": baseline_verdict(metrics),
        "rules": rule_distributions(artifact.rules),
        "model_version": model.version,
    }
    return result


def mining_parameters(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The miner's parameters a model's manifest records (what its MLflow run logs and
    ``models reproduce`` trains with): those :class:`AssociationMiner` takes, without the
    defaults left unset and without what mining derived (the minimum count)."""
    from basketry.mining import AssociationMiner
    from basketry.model import read_manifest

    accepted = AssociationMiner().get_params()
    parameters = read_manifest(model_dir).get("parameters") or {}
    return {k: v for k, v in parameters.items() if k in accepted and v is not None}


def recorded_after_purchase(model: Model) -> tuple[bool, float]:
    """Whether the model carries the sequential part, and its horizon in days (what training
    it again must ask for to give the same artifact)."""
    from basketry.training.next_order import HORIZON_DAYS

    sequential = (model.manifest.get("parameters") or {}).get("sequential")
    if not sequential:
        return False, HORIZON_DAYS
    return True, float(sequential.get("horizon_days", HORIZON_DAYS))
