"""Parameter sweeps (``basketry tune``): a grid over mining thresholds and the scoring rule,
each point evaluated on the validation slice of the training part with the code ``train`` tunes
its scoring with, the best refit on the whole training part and evaluated on the test part.

The grid is written ``KEY=V1,V2,...`` once per key (``--grid`` is repeatable); the points are
every combination (the first key varies slowest), less the combinations that denote the same
model (``prior_weight`` and ``combine`` only apply to ``scoring=smoothed``, ``one_scale`` and
``lift_product``). Keys:

============== ========================================== ====================================
key            values                                     meaning
============== ========================================== ====================================
min_support    a fraction with a point (``0.01``) or a    as ``--min-support``
               count written as an integer (``25``)
min_confidence numbers in [0, 1]                          as ``--min-confidence``
min_lift       numbers >= 0                               as ``--min-lift``
max_p_value    numbers in (0, 1]                          as ``--max-p-value``
max_len        integers >= 1, or ``none``                 as ``--max-len``
scoring        ``tuned``, ``smoothed``, ``one_scale``,    the scoring rule; ``tuned`` is what
               ``lift_product``, ``confidence``, ``lift`` ``train`` does by default (method,
                                                          ``prior_weight`` and ``combine``
                                                          chosen on the validation slice)
prior_weight   numbers >= 0                               of the three methods above
combine        numbers >= 0 (<= 1 for ``lift_product``)   of the three methods above
============== ========================================== ====================================

(``min-support`` with hyphens is the same key.) The work: one split, one validation slice; one
mining of the validation slice's fitting part per distinct mining setting (points that differ
only in their scoring share it); every point scored on the same validation queries with
:func:`basketry.training.evaluate.evaluate` (the model, max-confidence, item-kNN, popularity
and random rankers); the best by the main metric, validation HR@10 (then NDCG@10, then grid
order), mined once more on the whole training part and evaluated on the test part exactly as
``train`` does (:func:`basketry.training.pipeline.fit_and_evaluate`). The test part never takes
part in the choice.

Tracking: one parent MLflow run (``basketry tune``), one nested run per grid point (parameters,
validation metrics, tags; ``FAILED`` with the reason when its mining or evaluation fails: the
sweep goes on). Never imports the serving application.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from basketry.data import Baskets
from basketry.mining import AssociationMiner, MiningError
from basketry.mining._params import parse_min_support
from basketry.model import SCORING_METHODS, ModelError, scoring_spec
from basketry.training.baselines import ItemKNN
from basketry.training.evaluate import MAX_HIDDEN_PER_BASKET, MAX_QUERIES, evaluate
from basketry.training.pipeline import (
    MinedRules,
    TrainResult,
    ValidationSlice,
    fit_and_evaluate,
    mine_rules,
    prepare_split,
    search_scoring,
    tuning_record,
    validation_slice,
)
from basketry.training.registry import MAIN_METRIC
from basketry.training.tracking import TrainingRun, flat_metrics

#: The scoring value that means "smoothed, tuned on the validation slice as train does".
TUNED = "tuned"
#: Figures that order the points, best first (then grid order).
RANKING = (MAIN_METRIC, "ndcg@10")
SCORING_PARAMETERS = ("prior_weight", "combine")
#: The methods that take ``SCORING_PARAMETERS``.
PARAMETRISED = ("smoothed", "one_scale", "lift_product")
#: Recorded as the parent run's ``mlflow.source.name``.
SOURCE = "basketry tune"


class GridError(ValueError):
    """The grid cannot be run as written (unknown key, bad value...): found before any run."""


class SweepError(RuntimeError):
    """The sweep has no result: every grid point failed."""


# ---- parsing the grid ------------------------------------------------------------------------
def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GridError(f"--grid {key}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise GridError(f"--grid {key}: {text!r} is not a finite number")
    return value


def _support(key: str, text: str) -> float | int:
    try:
        return parse_min_support(text)
    except MiningError as exc:  # the mining package's one reading of thresholds
        raise GridError(f"--grid {key}: {str(exc).removeprefix('min_support ')}") from None


def _in_range(low: float, high: float | None, *, low_open: bool = False
              ) -> Callable[[str, str], float]:
    def parse(key: str, text: str) -> float:
        value = _number(key, text)
        if value < low or (low_open and value == low) or (high is not None and value > high):
            left = "(" if low_open else "["
            right = f"{high:g}]" if high is not None else "inf)"
            raise GridError(f"--grid {key}: {text} is not in {left}{low:g}, {right}")
        return value
    return parse


def _max_len(key: str, text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise GridError(f"--grid {key}: {text!r} is not an integer (or none)") from None
    if value < 1:
        raise GridError(f"--grid {key}: {text} is not >= 1")
    return value


def _scoring(key: str, text: str) -> str:
    known = (TUNED, *SCORING_METHODS)
    if text not in known:
        where = key if key.startswith("--") else f"--grid {key}"
        raise GridError(f"{where}: unknown scoring {text!r}; known: {', '.join(known)}")
    return text


#: The mining keys of the grid (AssociationMiner parameters) and how their values are read.
MINING_KEYS: dict[str, Callable[[str, str], Any]] = {
    "min_support": _support,
    "min_confidence": _in_range(0.0, 1.0),
    "min_lift": _in_range(0.0, None),
    "max_p_value": _in_range(0.0, 1.0, low_open=True),
    "max_len": _max_len,
}
#: The scoring keys of the grid.
SCORING_KEYS: dict[str, Callable[[str, str], Any]] = {
    "scoring": _scoring,
    "prior_weight": _in_range(0.0, None),
    "combine": _in_range(0.0, None),
}
GRID_KEYS = {**MINING_KEYS, **SCORING_KEYS}


@dataclass(frozen=True)
class GridPoint:
    """One combination of the grid: the full mining parameters and the scoring (``"tuned"``
    or a complete scoring object); ``values`` are the grid's own values, ``label`` says them."""

    index: int  # 1-based, in grid order
    values: dict[str, Any]
    mining: dict[str, Any]
    scoring: str | dict[str, Any]

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.values.items())

    def mining_key(self) -> str:
        return json.dumps(self.mining, sort_keys=True, default=str)


def _show(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Grid:
    """The parsed ``--grid`` options: ``(key, values)`` in the order given."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...]

    def describe(self) -> dict[str, list[Any]]:
        return {key: list(values) for key, values in self.axes}

    def points(self, mining: dict[str, Any], scoring: str | None = None) -> list[GridPoint]:
        """Every distinct combination over the base ``mining`` parameters and base ``scoring``
        (``None``: ``tuned``, or ``smoothed`` when the grid sets a smoothed parameter)."""
        keys = [key for key, _ in self.axes]
        if scoring is not None:
            _scoring("--scoring", scoring)
        default = scoring or ("smoothed" if set(SCORING_PARAMETERS) & set(keys) else TUNED)
        seen: set[str] = set()
        points: list[GridPoint] = []
        for combination in itertools.product(*(values for _, values in self.axes)):
            values = dict(zip(keys, combination, strict=True))
            params = {**mining, **{k: v for k, v in values.items() if k in MINING_KEYS}}
            method = values.get("scoring", default)
            if method in PARAMETRISED:
                try:
                    spec: str | dict[str, Any] = scoring_spec(
                        {"method": method,
                         **{k: values[k] for k in SCORING_PARAMETERS if k in values}})
                except ModelError as exc:  # e.g. combine > 1 with lift_product
                    raise GridError(f"--grid: {exc}") from None
            else:  # the smoothed parameters do not apply: drop them from the point
                spec = TUNED if method == TUNED else scoring_spec(method)
                values = {k: v for k, v in values.items() if k not in SCORING_PARAMETERS}
            key = json.dumps([params, spec], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            points.append(GridPoint(index=len(points) + 1, values=values, mining=params,
                                    scoring=spec))
        for params in {p.mining_key(): p.mining for p in points}.values():
            try:
                AssociationMiner(**params).validate()
            except MiningError as exc:
                raise GridError(str(exc)) from None
        if set(SCORING_PARAMETERS) & set(keys) and not any(isinstance(p.scoring, dict)
                                                           and p.scoring["method"] in PARAMETRISED
                                                           for p in points):
            given = sorted(set(SCORING_PARAMETERS) & set(keys))
            raise GridError(f"--grid {given[0]} applies to scoring={' or '.join(PARAMETRISED)} "
                            "only, and no point of the grid has one of them")
        return points


def parse_grid(specs: list[str] | tuple[str, ...]) -> Grid:
    """Read ``--grid`` options (``KEY=V1,V2,...``, one key per option); ``GridError`` names the
    first problem (unknown key, key given twice, bad or missing value)."""
    if not specs:
        raise GridError("give at least one --grid KEY=V1,V2,... (keys: "
                        f"{', '.join(GRID_KEYS)})")
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise GridError(f"--grid {spec!r}: expected KEY=V1,V2,...")
        if key not in GRID_KEYS:
            raise GridError(f"--grid: unknown parameter {key!r}; known: {', '.join(GRID_KEYS)}")
        if any(key == k for k, _ in axes):
            raise GridError(f"--grid {key} is given twice; put all its values in one option")
        raw = [v.strip() for v in text.split(",")]
        if not text.strip() or any(not v for v in raw):
            raise GridError(f"--grid {key}: empty value in {text!r}")
        values: list[Any] = []
        for v in raw:  # repeated values once (a count 1 and the fraction 1.0 are not the same)
            value = GRID_KEYS[key](key, v)
            if not any(type(value) is type(w) and value == w for w in values):
                values.append(value)
        axes.append((key, tuple(values)))
    return Grid(axes=tuple(axes))


# ---- running the sweep -----------------------------------------------------------------------
@dataclass
class PointResult:
    """What became of one grid point: its validation figures per ranker, or why it failed."""

    point: GridPoint
    status: str = "FINISHED"  # or "FAILED"
    reason: str | None = None
    scoring: dict[str, Any] | None = None  # the scoring used (for "tuned": the one chosen)
    metrics: dict[str, dict[str, float | None]] | None = None  # validation, per ranker
    n_rules: int | None = None
    run_id: str | None = None
    tuning: dict[str, Any] | None = None  # for "tuned": the search, as train records it

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    def figure(self, name: str = MAIN_METRIC, ranker: str = "model") -> float | None:
        if self.metrics is None:
            return None
        return self.metrics.get(ranker, {}).get(name)

    def describe(self) -> dict[str, Any]:
        return {"index": self.point.index, "label": self.point.label,
                "values": self.point.values, "mining": self.point.mining,
                "status": self.status, "reason": self.reason, "scoring": self.scoring,
                "n_rules": self.n_rules, "run_id": self.run_id,
                "validation": self.metrics}


@dataclass
class SweepResult:
    """The sweep: every point (grid order), the best, and the best refit on the training part
    and evaluated on the test part (a :class:`TrainResult`, as ``train`` makes it)."""

    grid: Grid
    points: list[PointResult]
    best: PointResult
    result: TrainResult
    validation: dict[str, Any] = field(default_factory=dict)
    #: minings of the validation slice's fitting part: one per distinct mining setting
    n_minings: int = 0

    def ranked(self) -> list[PointResult]:
        """Finished points best first (validation HR@10, then NDCG@10, then grid order), then
        the failed ones in grid order."""
        done = sorted((p for p in self.points if p.ok),
                      key=lambda p: (*(-(p.figure(m) or 0.0) for m in RANKING), p.point.index))
        return done + [p for p in self.points if not p.ok]

    @property
    def failed(self) -> list[PointResult]:
        return [p for p in self.points if not p.ok]

    def record(self) -> dict[str, Any]:
        """JSON-ready: the grid, every point, the best and its test figures."""
        return {"grid": self.grid.describe(), "main_metric": MAIN_METRIC,
                "ranking": list(RANKING), "validation": self.validation,
                "n_minings": self.n_minings,
                "points": [p.describe() for p in self.points],
                "best": self.best.point.index, "best_label": self.best.point.label,
                "test": self.result.metrics}


Progress = Callable[[int, int, str], None]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_sweep(
    baskets: Baskets,
    grid: Grid,
    mining: dict[str, Any],
    *,
    scoring: str | None = None,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    max_queries: int | None = MAX_QUERIES,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
    parent: TrainingRun | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run ``grid`` over the base ``mining`` parameters on ``baskets`` (see the module's
    docstring); with ``parent``, every point is a nested MLflow run of it. ``progress`` is
    called with (points done, points in all, what is being done)."""
    say = progress or (lambda _done, _total, _message: None)
    points = grid.points(mining, scoring)
    total = len(points)
    say(0, total, "splitting")
    prepared = prepare_split(baskets, test_days=test_days, test_fraction=test_fraction,
                             seed=seed)
    validation = validation_slice(prepared.train, prepared.split, seed=seed,
                                  max_hidden_per_basket=max_hidden_per_basket)
    groups: dict[str, list[GridPoint]] = {}
    for point in points:
        groups.setdefault(point.mining_key(), []).append(point)
    results: dict[int, PointResult] = {}
    n_minings = 0
    knn = ItemKNN.fit(validation.fit)  # the same for every point: fitted on the same baskets
    for group in groups.values():
        say(len(results), total, f"mining {_mining_label(group[0])}")
        n_minings += 1
        try:
            mined: MinedRules | None = mine_rules(validation.fit, group[0].mining)
            failure = None
        except Exception as exc:  # a budget exceeded, ...: these points fail, the sweep goes on
            mined, failure = None, _reason(exc)
        max_conf = None
        for point in group:
            say(len(results), total, f"point {point.index}/{total}: {point.label}")
            outcome = PointResult(point=point)
            if mined is None:
                outcome.status, outcome.reason = "FAILED", failure
            else:
                try:
                    if max_conf is None:
                        max_conf = mined.scorer("confidence")
                    _score_point(outcome, mined, max_conf, knn, validation, seed)
                except Exception as exc:
                    outcome.status, outcome.reason = "FAILED", _reason(exc)
            if parent is not None:
                _log_point(parent, outcome, total)
            results[point.index] = outcome
            say(len(results), total, f"point {point.index}/{total}: {point.label}")
    done = [results[p.index] for p in points]
    finished = [p for p in done if p.ok]
    if not finished:
        raise SweepError(f"every grid point failed (point 1: {done[0].reason})")
    best = min(finished, key=lambda p: (*(-(p.figure(m) or 0.0) for m in RANKING),
                                        p.point.index))
    say(total, total, f"best: point {best.point.index}; mining the training part")
    result = fit_and_evaluate(baskets, prepared, best.point.mining, best.scoring,
                              tuning=best.tuning, seed=seed, max_queries=max_queries,
                              max_hidden_per_basket=max_hidden_per_basket)
    sweep = SweepResult(grid=grid, points=done, best=best, result=result,
                        validation={"split": validation.split.describe(),
                                    "queries": validation.queries.describe()},
                        n_minings=n_minings)
    result.report["sweep"] = sweep.record()
    return sweep


def _mining_label(point: GridPoint) -> str:
    shown = [f"{k}={_show(v)}" for k, v in point.values.items() if k in MINING_KEYS]
    return " ".join(shown) or "the base parameters"


def _score_point(outcome: PointResult, mined: MinedRules, max_conf: Any, knn: ItemKNN,
                 validation: ValidationSlice, seed: int) -> None:
    point = outcome.point
    if point.scoring == TUNED:
        spec, tried = search_scoring(mined, validation.queries)
        outcome.tuning = tuning_record(validation, mined, spec, tried)
    else:
        assert isinstance(point.scoring, dict)
        spec = point.scoring
    outcome.scoring = spec
    outcome.n_rules = int(mined.rules.num_rows)
    outcome.metrics = evaluate(mined.scorer(spec), validation.queries, baseline_scorer=max_conf,
                               knn=knn, seed=seed)


def validation_metric_names(metrics: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Validation figures as MLflow metric names: ``validation.model.hit_rate_at_10``..."""
    return {f"validation.{name}": value for name, value in flat_metrics(metrics).items()}


def _log_point(parent: TrainingRun, outcome: PointResult, total: int) -> None:
    """One nested run for the point: FINISHED with its figures, or FAILED with the reason."""
    point = outcome.point
    child = TrainingRun(uri=parent.uri, experiment=parent.experiment,
                        run_name=f"{parent.run_name or 'tune'} #{point.index}",
                        parent_run_id=parent.run_id, source=SOURCE)
    with child:
        outcome.run_id = child.run_id
        params: dict[str, Any] = {f"mining.{k}": v for k, v in point.mining.items()}
        scoring = outcome.scoring or (point.scoring if isinstance(point.scoring, dict) else {})
        params.update({f"scoring.{k}": v for k, v in scoring.items()})
        params["scoring.tuned"] = point.scoring == TUNED
        params["grid.point"] = point.index
        child.log_params(params)
        child.set_tags({"basketry.grid.point": f"{point.index}/{total}",
                        "basketry.grid.label": point.label,
                        "basketry.sweep.parent": parent.run_id})
        if not outcome.ok:
            child.fail(outcome.reason or "failed")
            return
        assert outcome.metrics is not None
        metrics = validation_metric_names(outcome.metrics)
        metrics["rules.n_rules"] = float(outcome.n_rules or 0)
        child.log_metrics(metrics)
        if outcome.tuning is not None:
            child.log_json(outcome.tuning, "tuning.json")


def log_sweep(parent: TrainingRun, sweep: SweepResult) -> None:
    """The best point as the parent run's parameters, metrics and tags (its test figures under
    the names ``train`` uses, its validation figures under ``best.validation.*``), and the
    whole sweep as ``sweep.json``. The caller logs the refit model itself (``log_training`` or
    ``log_result``)."""
    best = sweep.best
    parent.log_params({"sweep.grid": sweep.grid.describe(), "sweep.n_points": len(sweep.points),
                       "sweep.main_metric": MAIN_METRIC, "sweep.best_point": best.point.index})
    assert best.metrics is not None
    metrics = {f"best.{k}": v for k, v in validation_metric_names(best.metrics).items()}
    metrics["sweep.n_failed"] = float(len(sweep.failed))
    metrics["sweep.n_points"] = float(len(sweep.points))
    metrics["sweep.n_minings"] = float(sweep.n_minings)
    parent.log_metrics(metrics)
    parent.set_tags({"basketry.sweep": "true",
                     "basketry.sweep.best_point": best.point.index,
                     "basketry.sweep.best_label": best.point.label,
                     "basketry.sweep.best_run_id": best.run_id or ""})
    parent.log_json(sweep.record(), "sweep.json")
