"""The training report in sentences: what it was trained and tested on, how it scores, which
baselines it equals or loses to, and the promotion gate's verdict. Plain strings (the page
escapes them), so the page, the terminal and the tests read the same words."""

from __future__ import annotations

from typing import Any

import numpy as np

from basketry.training.evaluate import KS, RANKERS

#: Rankers in words.
LABELS = {"model": "model", "max_confidence": "max-confidence", "item_knn": "item-kNN",
          "popularity": "popularity", "random": "random"}

_METHODS = {"smoothed": "smoothed confidence", "one_scale": "smoothed confidence on one scale "
            "with popular items", "lift_product": "product of smoothed lifts",
            "confidence": "rule confidence", "lift": "rule lift"}
_ALGORITHMS = {"fpgrowth": "FP-Growth", "apriori": "Apriori", "eclat": "Eclat",
               "spark": "Spark's FP-Growth"}


def number(value: float) -> str:
    """``0.0`` → ``0``, ``10.0`` → ``10``, ``0.03`` → ``0.03``."""
    return f"{value:g}"


def when(stamp: object) -> str:
    """A timestamp (numpy's ``2011-11-09T12:50:00.000000000`` or ISO text) as
    ``9 Nov 2011 12:50`` (seconds when they are not zero); the text as given if unparseable."""
    try:
        moment = np.datetime64(str(stamp), "s").item()
    except ValueError:
        return str(stamp)
    clock = moment.strftime("%H:%M" if moment.second == 0 else "%H:%M:%S")
    return f"{moment.day} {moment.strftime('%b %Y')} {clock}"


def scoring_words(scoring: dict[str, Any]) -> str:
    """``{'method': 'smoothed', 'prior_weight': 0.0, 'combine': 0.0}`` → ``smoothed confidence,
    prior weight 0, no evidence combination``."""
    method = str(scoring.get("method", ""))
    parts = [_METHODS.get(method, method)]
    if "prior_weight" in scoring:
        parts.append(f"prior weight {number(scoring['prior_weight'])}")
    if "combine" in scoring:
        combine = float(scoring["combine"])
        parts.append("no evidence combination" if combine == 0
                     else f"evidence combination weight {number(combine)}")
    return ", ".join(parts)


def days(value: float) -> str:
    return "1 day" if value == 1 else f"the last {number(value)} days"


def split_sentence(report: dict[str, Any]) -> str:
    """``Trained on 5,745 baskets before 9 Nov 2011 12:50, tested on 2,953 baskets of the last
    30 days.``"""
    split = report["split"]
    n_train, n_test = int(split["n_train"]), int(split["n_test"])
    if split.get("method") == "time":
        return (f"Trained on {n_train:,} baskets before {when(split['cutoff'])}, tested on "
                f"{n_test:,} baskets of {days(float(split['test_days']))}.")
    share = float(split.get("test_fraction") or 0)
    return (f"Trained on {n_train:,} baskets, tested on {n_test:,} baskets drawn at random "
            f"({share:.0%} of them, seed {split.get('seed')}).")


def data_sentence(report: dict[str, Any]) -> str:
    data, training = report["data"], report["training"]
    return (f"Data: {data['source']}, {int(data['n_baskets']):,} baskets; the training part "
            f"holds {int(training['n_items']):,} items.")


def mining_sentence(report: dict[str, Any]) -> str:
    """``Mined 5,025 rules with FP-Growth: support at least 1% (58 baskets), confidence at
    least 0.1.``"""
    mining = report["mining"]
    name = mining.get("algorithm")
    algorithm = "" if name is None else " with " + _ALGORITHMS.get(str(name), str(name))
    limits = []
    if mining.get("min_support") is not None:
        text = f"support at least {float(mining['min_support']):.4g}".rstrip("0")
        if mining.get("min_count") is not None:
            text += f" ({int(mining['min_count']):,} baskets)"
        limits.append(text)
    for key, name in (("min_confidence", "confidence"), ("min_lift", "lift")):
        if mining.get(key) is not None:
            limits.append(f"{name} at least {number(float(mining[key]))}")
    for key, name in (("max_len", "itemsets of at most {} items"),
                      ("max_rules", "at most {} rules kept"),
                      ("max_p_value", "p-value at most {}")):
        if mining.get(key) is not None:
            limits.append(name.format(mining[key]))
    n_rules = int(mining.get("n_rules") or report.get("rules", {}).get("n_rules") or 0)
    return f"Mined {n_rules:,} rules{algorithm}: {', '.join(limits) or 'no limits'}."


def queries_sentence(report: dict[str, Any]) -> str:
    queries = report["queries"]
    return (f"Evaluated on {int(queries['n_queries']):,} queries from "
            f"{int(queries['n_eligible_baskets']):,} test baskets: each hides one item of a "
            f"basket and asks for it back from the rest.")


def scoring_sentence(report: dict[str, Any]) -> str:
    tuned = report.get("tuning") or {}
    how = ("chosen on a validation cut before the test days" if tuned.get("chosen")
           else "as asked")
    return f"Scoring: {scoring_words(report['scoring'])} ({how})."


def identical_baselines(metrics: dict[str, dict[str, Any]]) -> list[str]:
    """The baselines whose every hit-rate, NDCG and precision figure equals the model's: their
    lines lie on the model's."""
    model = metrics.get("model")
    if not model:
        return []
    names = [f"{m}@{k}" for m in ("hit_rate", "ndcg", "precision") for k in KS]
    return [ranker for ranker in RANKERS[1:] if ranker in metrics
            and all(metrics[ranker].get(n) == model.get(n) for n in names)]


def identical_sentence(metrics: dict[str, dict[str, Any]]) -> str:
    same = identical_baselines(metrics)
    if not same:
        return ""
    names = " and ".join(LABELS[r] for r in same)
    return (f"The model's figures are identical to {names}: its wide line with round markers "
            f"lies under the dashed one.")


def gate_sentences(registration: Any) -> list[str]:
    """The promotion gate's verdict on a :class:`~basketry.training.registry.Registration`:
    champion or not, then why (the gate's reasons)."""
    decision = registration.decision
    head = f"Registered as {registration.name} version {registration.version}"
    if decision.forced:
        head += ": champion, promoted by force although the gate refused it."
    elif decision.promote:
        head += ": the new champion."
    else:
        head += ": not the champion (it stays a challenger)."
    reasons = [r.replace("hit_rate@", "hit rate@") for r in decision.reasons]
    return [head, *(f"{r[:1].upper()}{r[1:]}." for r in reasons)]
