"""Retraining the champion on newer data: the same recipe, a new training window.

``retrain`` takes the current champion's mining parameters (its manifest records them), builds
the history (the original data, the completed orders of the monitoring store, or both merged:
:mod:`basketry.training.history`), cuts the training window (all history, or the last N days
up to now), then runs the train workflow: a time split whose test part is the most recent
``test_days``, the new model evaluated there, the champion evaluated on the same test part
by the registry's gate, registration, and promotion when the gate says so. Serving processes
following ``models:/NAME@champion`` pick the new champion up with no downtime (their watcher).

All or nothing, as the train workflow is: a window with too few baskets, a data file that
cannot be read, a store that cannot be reached, a failed registration... is one
:class:`RetrainError` line (or the underlying one-line error), the registry and the champion
untouched; the model directory it wrote is removed when the retrain chose its place.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from basketry.data import Baskets
from basketry.training import history
from basketry.training.workflow import TrainOutcome, WorkflowEvents, train_workflow

#: The champion's recorded parameters that a retrain reuses (``min_count`` is derived from
#: ``min_support`` and the number of baskets, so it is not carried over).
MINING_KEYS = ("algorithm", "antecedents", "consequents", "exclude", "max_itemsets", "max_len",
               "max_p_value", "max_rules", "min_confidence", "min_lift", "min_support",
               "multi_consequent")


class _Quiet(WorkflowEvents):
    """No events wanted."""


class RetrainError(Exception):
    """A retrain that cannot run or did not finish: one line; nothing was changed."""


@dataclass(frozen=True)
class RetrainPlan:
    """What a retrain learns from and how it decides."""

    #: The original transaction file (None: the store's orders alone).
    data: Path | None = None
    read_options: Mapping[str, Any] = field(default_factory=dict)
    #: The monitoring store's URL whose orders are added (None: none).
    store_url: str | None = None
    #: The training window: the last ``days`` days up to ``until`` (None: all history).
    days: float | None = None
    until: np.datetime64 | None = None
    #: The most recent days, held out: the new model and the champion are compared there.
    test_days: float = 7.0
    #: Fewer baskets than this in the window: refused, nothing trained.
    min_baskets: int = 1_000
    registered_model: str = "basketry"
    tolerance: float = 0.005
    seed: int = 0
    #: Where the model goes (None: a new directory under ``$BASKETRY_HOME/models``).
    out: Path | None = None


@dataclass
class RetrainOutcome:
    champion_version: str
    window: history.Window
    n_baskets: int
    orders_added: int
    orders_already_in_data: int
    outcome: TrainOutcome

    @property
    def promoted(self) -> bool:
        reg = self.outcome.registration
        return bool(reg is not None and reg.decision.promote)


def champion_recipe(name: str, uri: str | None = None) -> tuple[str, dict[str, Any]]:
    """The champion's version and the mining parameters its manifest records."""
    from basketry.model import read_manifest
    from basketry.training.registry import CHAMPION, alias_version, version_model_dir
    from basketry.training.tracking import client

    version = alias_version(CHAMPION, name=name, uri=uri)
    if version is None:
        raise RetrainError(f"no champion of {name!r} to retrain: train and register one first "
                           "(basketry train DATA --out DIR)")
    model_dir = version_model_dir(client(uri), name, version)
    recorded = read_manifest(model_dir).get("parameters") or {}
    return version, {k: recorded[k] for k in MINING_KEYS if k in recorded}


def training_history(plan: RetrainPlan, events: WorkflowEvents) -> tuple[Baskets, int, int]:
    """The merged history (before the window is cut), the orders added from the store and
    those left out as already in the data."""
    from basketry.data import read_baskets

    data = None
    if plan.data is not None:
        events.stage(f"reading {plan.data}")
        options = {k: v for k, v in plan.read_options.items() if v is not None}
        data = read_baskets(plan.data, **options)
    orders = None
    if plan.store_url is not None:
        events.stage("reading the monitoring store's orders")
        orders = _store_orders(plan.store_url)
    if data is None and orders is None:
        raise RetrainError("nothing to retrain on: give the data file, the monitoring "
                           "store's orders, or both")
    if orders is None or orders.n_baskets == 0:
        assert data is not None or orders is not None
        return (data if data is not None else orders), 0, 0  # type: ignore[return-value]
    if data is None:
        return orders, orders.n_baskets, 0
    merged, duplicates = history.merge(data, orders)
    return merged, orders.n_baskets - duplicates, duplicates


def _store_orders(url: str) -> Baskets:
    from basketry.monitoring.privacy import mask_url
    from basketry.monitoring.store import MonitorStore, MonitorStoreError

    store = MonitorStore(url)
    try:
        rows = store.read_orders()
    except MonitorStoreError as exc:
        raise RetrainError(str(exc)) from None
    finally:
        store.close()
    return history.orders_as_baskets(rows, source=f"orders of {mask_url(url)}")


def retrain(plan: RetrainPlan, *, uri: str | None = None,
            events: WorkflowEvents | None = None) -> RetrainOutcome:
    """Retrain the champion of ``plan.registered_model`` on ``plan``'s window (see the
    module's docstring)."""
    from basketry.model.reference import basketry_home

    events = events or _Quiet()
    if plan.days is not None and not plan.days > 0:
        raise RetrainError(f"the training window must be a positive number of days, not "
                           f"{plan.days}")
    if not plan.test_days > 0:
        raise RetrainError(f"the test window must be a positive number of days, not "
                           f"{plan.test_days}")
    version, mining = champion_recipe(plan.registered_model, uri)
    baskets, added, duplicates = training_history(plan, events)
    try:
        window = history.window_of(baskets, plan.days, plan.until)
    except ValueError as exc:
        raise RetrainError(str(exc)) from None
    windowed = history.cut(baskets, window)
    if windowed.n_baskets < plan.min_baskets:
        where = "" if baskets.timestamps is None else f" ({window.describe()})"
        raise RetrainError(f"the training window{where} holds {windowed.n_baskets:,} baskets, "
                           f"fewer than the {plan.min_baskets:,} a retrain needs "
                           "(--min-baskets): nothing was trained")
    timed = windowed.timestamps is not None
    out = plan.out
    chosen = out is None
    if out is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = basketry_home() / "models" / f"{plan.registered_model}-retrain-{stamp}-{os.getpid()}"
    try:
        outcome = train_workflow(
            windowed, out, mining=mining, test_days=plan.test_days if timed else None,
            test_fraction=None if timed else 0.2, seed=plan.seed, track=True, register=True,
            registered_model=plan.registered_model, tolerance=plan.tolerance, events=events)
    except BaseException:
        if chosen:
            _remove_quietly(out)
        raise
    return RetrainOutcome(champion_version=version, window=window,
                          n_baskets=windowed.n_baskets, orders_added=added,
                          orders_already_in_data=duplicates, outcome=outcome)


def _remove_quietly(out: Path) -> None:
    for path in (out, out.with_name(out.name + "-report.json"),
                 out.with_name(out.name + "-report.html")):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

