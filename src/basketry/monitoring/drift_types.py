"""What the drift detectors produce: one :class:`DriftResult` per detector, model version and
window (a row of the store's ``drift_results`` table), and the inputs they read.

The detectors (``drift_data``: the data drift of orders and requests against the model's
training profile; ``drift_concept``: the model's rules recomputed on the window's orders and a
change detector on the online hit rate) are pure functions of these inputs; ``drift`` reads the
store, runs them per window, stores the results and raises the alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The detectors, by the ``feature`` they write in ``drift_results``.
DETECTORS = (
    "items_orders",      # item frequencies of the window's orders against the training profile
    "items_requests",    # item frequencies of the recommendation requests' baskets, the same
    "basket_size",       # the orders' basket-size distribution against the training histogram
    "unknown_share",     # share of the orders' items the model does not know
    "new_top_items",     # items in the window's top that the training top did not have
    "rule_confidence",   # rules whose confidence fell significantly (FDR-controlled)
    "broken_rule_mass",  # share of served rule-based recommendations whose rule no longer holds
    "hit_rate_change",   # a sequential change detector on the online hit rate
)


@dataclass(frozen=True)
class Baskets:
    """Baskets of one window as item names in CSR form: basket ``b`` is
    ``items[indptr[b]:indptr[b + 1]]`` (an order's items, or a request's basket)."""

    indptr: np.ndarray
    items: list[str]

    @property
    def n(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)


@dataclass(frozen=True)
class ServedRecommendations:
    """The rule-based recommendations served in a window: per returned item that came from a
    rule (``returned[j]``, recommended for basket ``basket[j]`` of ``requests``), as names."""

    requests: Baskets
    basket: np.ndarray  # int64, index into requests
    returned: list[str]


@dataclass
class DriftResult:
    """One detector's verdict on one window for one model version.

    ``value`` is the detector's statistic (``statistic`` names it: ``jensen_shannon``,
    ``psi``, ``l_inf``, ``share``, ``rejected_share``...), ``threshold`` the value above which
    it alarms (calibrated for the window's sample size ``n``, so that a window without change
    alarms with probability ``false_alarm_rate``), ``drifted`` the verdict. ``details`` is
    JSON: what drives the drift (e.g. ``top_contributors``: ``[{"item", "label",
    "reference_share", "window_share", "contribution"}]``, ``broken_rules``: ``[{"antecedent",
    "consequent", "reference_confidence", "window_confidence", "p_value", "q_value"}]``), and
    the sample sizes."""

    detector: str
    model_version: str
    start_us: int
    end_us: int
    statistic: str
    value: float
    threshold: float | None
    drifted: bool
    n: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"detector": self.detector, "model_version": self.model_version,
                "start_us": self.start_us, "end_us": self.end_us,
                "statistic": self.statistic, "value": self.value,
                "threshold": self.threshold, "drifted": self.drifted, "n": self.n,
                "details": self.details}
