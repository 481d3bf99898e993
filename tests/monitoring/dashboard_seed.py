"""Drift results and alerts written into a store as the drift orchestrator writes them
(``DriftResult.to_json()``'s shape in ``drift_results``, rows of ``alerts``), for the
dashboard's tests and for looking at the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from basketry.monitoring import schema
from basketry.monitoring.drift_types import DriftResult

US = 1_000_000
D = 86_400


def drift_results(t0: int, days: int, version: str) -> list[DriftResult]:
    """Per day from ``t0``: every data and concept detector, drifting on the last two days."""
    out = []
    for day in range(days):
        start, end = (t0 + day * D) * US, (t0 + (day + 1) * D) * US
        late = day >= days - 2
        shares = [("a", "Apples", 0.10, 0.16 if late else 0.11),
                  ("b", "Bread <fresh>", 0.08, 0.02 if late else 0.075),
                  ("c", "Cheese & co", 0.05, 0.05)]
        contributors = [{"item": i, "label": label, "reference_share": r, "window_share": w,
                         "contribution": round(abs(w - r) * 0.9, 6)}
                        for i, label, r, w in shares]
        contributors.sort(key=lambda x: -x["contribution"])
        value = 0.02 + 0.003 * day + (0.08 if late else 0.0)
        out.append(DriftResult("items_orders", version, start, end, "jensen_shannon", value,
                               0.05 + 0.001 * (day % 3), value > 0.05 + 0.001 * (day % 3),
                               400 + day, {"top_contributors": contributors,
                                           "n": 400 + day}))
        out.append(DriftResult("basket_size", version, start, end, "psi", 0.01 * (day % 4),
                               0.1, False, 400 + day, {"n": 400 + day}))
        share = 0.01 + 0.001 * day
        out.append(DriftResult("unknown_share", version, start, end, "share", share, 0.05,
                               share > 0.05, 3000, {}))
        broken = [{"antecedent": ["a", "b"], "consequent": ["c"], "reference_confidence": 0.6,
                   "window_confidence": 0.21, "p_value": 1e-6, "q_value": 4e-5}] if late else []
        out.append(DriftResult("rule_confidence", version, start, end, "rejected_share",
                               0.3 if late else 0.0, 0.05, late, 120,
                               {"broken_rules": broken}))
        out.append(DriftResult("hit_rate_change", version, start, end, "adwin", 0.0, None,
                               False, 50, {}))
    return out


def alert_rows(t0: int, version: str) -> list[dict[str, Any]]:
    """Two open alerts and one resolved (raised on day 1, resolved on day 2)."""
    return [
        {"time_us": (t0 + D + 600) * US, "kind": "latency", "severity": "warning",
         "model_version": version, "message": "p95 latency 12 ms above 10 ms",
         "details": {"p95": 12.0}, "resolved_us": (t0 + 2 * D) * US},
        {"time_us": (t0 + 5 * D + 60) * US, "kind": "data_drift", "severity": "critical",
         "model_version": version, "message": "items_orders drifted: <Apples> up 5 points",
         "details": None, "resolved_us": None},
        {"time_us": (t0 + 5 * D + 120) * US, "kind": "concept_drift", "severity": "warning",
         "model_version": version, "message": "1 rule broken", "details": {},
         "resolved_us": None},
    ]


def seed(store: Any, t0: int, days: int, version: str) -> None:
    """Write ``drift_results`` and ``alert_rows`` into ``store``."""
    rows = []
    for r in drift_results(t0, days, version):
        j = r.to_json()
        rows.append({"model_version": j["model_version"], "start_us": j["start_us"],
                     "end_us": j["end_us"], "feature": j["detector"],
                     "statistic": j["statistic"], "value": j["value"],
                     "threshold": j["threshold"], "drifted": j["drifted"],
                     "details": j["details"], "computed_us": j["end_us"] + 60 * US})
    with store.engine.begin() as c:
        c.execute(schema.drift_results.insert(), rows)
        c.execute(schema.alerts.insert(), alert_rows(t0, version))


def write_measured_model(path: Path, tag: str, hit_rate: float) -> str:
    """A hand-made model (``tests/serving/conftest.py``'s rules) whose manifest records an
    offline evaluation (the page's reference line); returns its version."""
    import numpy as np

    from basketry.model import items_table, read_manifest, write_model
    from tests.model.conftest import make_rules
    from tests.serving.conftest import COUNTS, ITEMS

    rows = [([0], [1], 30, 50, 40), ([0], [2], 30, 50, 30), ([1], [0], 30, 40, 50),
            ([0, 1], [2], 20, 30, 30), ([0, 1], [3], 27, 30, 30), ([4], [0], 25, 60, 50)]
    labels = [f"{tag}: item {x}" for x in ITEMS]
    write_model(path, items=items_table(np.array(ITEMS, dtype=object), np.array(COUNTS),
                                        np.array(labels, dtype=object)),
                rules=make_rules(rows, n=100), n_baskets=100, parameters={"tag": tag},
                scoring={"method": "confidence"}, dataset={"fingerprint": f"fp-{tag}"},
                metrics={"model": {"hit_rate@10": hit_rate, "ndcg@10": hit_rate / 2}},
                overwrite=True)
    return str(read_manifest(path)["model_version"])


def fill_store(store: Any, t0: int, days: int, version: str) -> None:
    """A small shop's ``days`` from ``t0``: recommendations on every endpoint (latencies over
    three decades), orders of the known items, drift results and alerts."""
    import random

    from basketry.monitoring import RecommendationEvent

    rng = random.Random(7)
    endpoints = ("single", "single", "batch", "associations")
    events = [RecommendationEvent(t0 + day * D + i * 173, f"r{day}-{i}", version,
                                  endpoints[i % 4], ("a",), ("b", "c", "d"), 3, 0,
                                  rng.lognormvariate(0.3, 0.8))
              for day in range(days) for i in range(60 + 15 * day)]
    store.add_events(events)
    items = ["a", "b", "c", "d", "e", "f", "new-1", "new-2", "new-3"]  # some the model lacks
    store.add_orders([{"order_id": f"o{day}-{i}", "time": t0 + day * D + 300 + i * 400,
                       "items": rng.sample(items, rng.randint(2, 5)),
                       "request_ids": [f"r{day}-{i}"]}
                      for day in range(days) for i in range(40)])
    seed(store, t0, days, version)
