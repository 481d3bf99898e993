"""The train and tune workflows, usable from Python without the CLI: read the data, train (or
sweep a grid), save the model and its report, then record the run in MLflow and register the
model through the promotion gate.

The guarantees every caller gets: the model and its report are written before anything is
tracked; the MLflow run is a context (:class:`~basketry.training.tracking.TrainingRun`) that
ends ``FAILED`` (or ``KILLED`` after Ctrl-C or SIGTERM) when anything inside it fails, and
:meth:`WorkflowEvents.run_failed` says so before the failure goes on; registration goes through
:func:`basketry.training.registry.register` only.

What the caller sees as it goes (stages, the data read, the figures) comes through a
:class:`WorkflowEvents`, whose methods do nothing by default; the ``basketry`` command prints
them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the tracking and registry modules are imported only when tracking
    from basketry.data import Baskets
    from basketry.training.pipeline import TrainResult
    from basketry.training.registry import Registration
    from basketry.training.tracking import TrainingRun
    from basketry.training.tune import Grid, SweepResult

PathLike = str | os.PathLike[str]


class WorkflowEvents(Protocol):
    """What a workflow reports as it goes. Subclass and override what you want to see (every
    method does nothing by default), or give any object with these methods (the CLI does, so
    that its start does not import the training side)."""

    def stage(self, message: str) -> None:
        """A stage begins, or the current one moves on (reading, training, tracking...)."""

    def read(self, baskets: Baskets) -> None:
        """The data was read (its report says what was dropped)."""

    def sweep_progress(self, done: int, total: int, message: str) -> None:
        """``tune``: ``done`` of ``total`` grid points are scored."""

    def swept(self, sweep: SweepResult) -> None:
        """``tune``: every grid point is scored and the best refit on the training part."""

    def evaluated(self, result: TrainResult) -> None:
        """The model's figures on the test part are known."""

    def saved(self, model_dir: Path, reports: tuple[Path, ...]) -> None:
        """The model and its report were written where the caller asked."""

    def run_failed(self, run: TrainingRun) -> None:
        """The MLflow run was ended ``FAILED`` or ``KILLED`` (``run.status``); the failure is
        raised next."""


class _Silent(WorkflowEvents):
    """No events wanted."""


@dataclass
class TrainOutcome:
    """What ``train_workflow`` made: the result, where the model and report are, the MLflow
    run (None without tracking) and the registration (None without registering)."""

    result: TrainResult
    model_dir: Path
    reports: tuple[Path, Path]
    run: TrainingRun | None = None
    registration: Registration | None = None
    #: The baskets trained on (what the run's data snapshot holds).
    baskets: Baskets | None = field(default=None, repr=False)


@dataclass
class TuneOutcome:
    """What ``tune_workflow`` made: the sweep (its ``result`` is the best refit), where the
    best model and report are (None unless ``out`` was given), the parent MLflow run and the
    registration."""

    sweep: SweepResult
    model_dir: Path | None = None
    reports: tuple[Path, ...] = ()
    run: TrainingRun | None = None
    registration: Registration | None = None


def report_prefix(out: PathLike, report: PathLike | None = None) -> Path:
    """Where the report goes: ``report``, else ``OUT-report`` next to the model."""
    out = Path(out)
    return Path(report) if report is not None else out.with_name(out.name + "-report")


def _check_plan(track: bool, register: bool, test_days: float | None,
                test_fraction: float | None) -> None:
    if register and not track:
        raise ValueError("registering needs tracking (MLflow, track=True)")
    if test_days is not None and test_fraction is not None:
        raise ValueError("give either test_days or test_fraction, not both")


@contextlib.contextmanager
def _tracked(run: TrainingRun | None, events: WorkflowEvents,
             says_itself: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Inside ``run`` (when tracking): the run ends FINISHED, or FAILED/KILLED with the
    reason when anything escapes, which the events hear before it goes on (unless it is one of
    ``says_itself``, whose message the caller completes)."""
    if run is None:
        yield
        return
    try:
        with run:
            yield
    except BaseException as exc:
        # status None: the store refused to start the run, so there is no run to speak of
        if run.status is not None and not isinstance(exc, says_itself):
            events.run_failed(run)
        raise


def _read(data: PathLike, read_options: Mapping[str, Any] | None,
          events: WorkflowEvents) -> Baskets:
    from basketry.data import read_baskets

    events.stage(f"reading {data}")
    options = {k: v for k, v in (read_options or {}).items() if v is not None}
    baskets = read_baskets(data, **options)
    events.read(baskets)
    return baskets


def train_workflow(
    data: PathLike | Baskets,
    out: PathLike,
    *,
    mining: Mapping[str, Any],
    read_options: Mapping[str, Any] | None = None,
    report: PathLike | None = None,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    scoring: str | dict[str, Any] | None = None,
    overwrite: bool = False,
    track: bool = False,
    register: bool = False,
    registered_model: str = "basketry",
    force: bool = False,
    tolerance: float = 0.005,
    events: WorkflowEvents | None = None,
    data_store: PathLike | None = None,
    after_purchase: bool | None = None,
    horizon_days: float | None = None,
) -> TrainOutcome:
    """``basketry train`` from Python: read ``data`` (``read_options`` as for
    :func:`basketry.data.read_baskets`; or baskets already read), split it, mine the training
    part with the :class:`~basketry.mining.AssociationMiner` parameters ``mining``, evaluate on
    the test part,
    save the model to ``out`` and the report (``report``.json/.html, default ``OUT-report``);
    with ``track``, record the run in MLflow with a snapshot of the baskets in ``data_store``
    (:mod:`basketry.training.reproduce`), and with ``register``, register the model as a
    new version of ``registered_model`` through the promotion gate. ``after_purchase``
    (default on, for data with customers and timestamps) adds the sequential rules over
    ``horizon_days`` (default 30) and their next-order evaluation."""
    from basketry.model import scoring_spec
    from basketry.training.next_order import after_purchase_settings

    events = events or _Silent()
    _check_plan(track, register, test_days, test_fraction)
    out, prefix = Path(out), report_prefix(out, report)
    spec = None if scoring is None else scoring_spec(scoring)  # refused before any work
    after = after_purchase_settings(after_purchase, horizon_days)
    run = _training_run(run_name=out.name) if track else None
    params = dict(mining)
    with _tracked(run, events):
        outcome = _train(data, out, prefix, params, read_options, spec, seed, test_days,
                         test_fraction, overwrite, events, after)
        outcome.run = run
        if run is not None:
            # the data record comes before the model is logged or registered: a failure here
            # registers nothing, and the saved model stays
            events.stage("recording the training data")
            _record_data(run, outcome.baskets, outcome.result, params, spec, seed, test_days,
                         test_fraction, data_store, outcome.model_dir, after)
            events.stage("tracking")
            run.log_training(outcome.result, params, outcome.model_dir, outcome.reports,
                             data=_data_name(data))
            if register:
                outcome.registration = _register(run, outcome.result, registered_model,
                                                 tolerance, force, events)
                _report_gate(run, outcome.reports, outcome.result.report, outcome.model_dir,
                             outcome.registration)
    return outcome


def _after_purchase_of(result: TrainResult) -> tuple[bool, float]:
    """Whether ``result`` holds the sequential part and its horizon (what training again must
    ask for to give the same artifact)."""
    from basketry.training.next_order import HORIZON_DAYS

    part = result.sequential
    if part is None:
        return False, HORIZON_DAYS
    return True, float(part.parameters.get("horizon_days", HORIZON_DAYS))


def _record_data(run: TrainingRun, baskets: Baskets | None, result: TrainResult,
                 params: dict[str, Any], spec: dict[str, Any] | None, seed: int,
                 test_days: float | None, test_fraction: float | None,
                 data_store: PathLike | None, model_dir: Path | None,
                 after: tuple[bool, float]) -> None:
    from basketry.training.reproduce import record_training_data

    assert baskets is not None
    record_training_data(run, baskets, result, params, model_dir=model_dir,
                         test_days=test_days, test_fraction=test_fraction, seed=seed,
                         scoring=spec, store=data_store, after_purchase=after)


def _data_name(data: PathLike | Baskets) -> str | Path:
    """What the run records as its data: the file, or where baskets already read came from."""
    if isinstance(data, str | os.PathLike):
        return Path(data)
    return str(data.source or "baskets given in Python")


def _train(data: PathLike | Baskets, out: Path, prefix: Path, params: dict[str, Any],
           read_options: Mapping[str, Any] | None, spec: dict[str, Any] | None, seed: int,
           test_days: float | None, test_fraction: float | None, overwrite: bool,
           events: WorkflowEvents, after: tuple[bool, float] = (True, 30.0)) -> TrainOutcome:
    """Read, train, evaluate, save, report: everything ``train`` does before tracking."""
    from basketry.model import read_manifest
    from basketry.training.pipeline import save_trained, train_and_evaluate
    from basketry.training.report import write_report

    started = time.perf_counter()
    if isinstance(data, str | os.PathLike):
        baskets = _read(data, read_options, events)
    else:
        baskets = data
        events.read(baskets)
    events.stage("training")
    result = train_and_evaluate(baskets, params, test_days=test_days,
                                test_fraction=test_fraction, seed=seed, scoring=spec,
                                progress=events.stage, after_purchase=after[0],
                                horizon_days=after[1])
    path = save_trained(out, result, overwrite=overwrite)
    result.report["model_version"] = read_manifest(path)["model_version"]
    result.report["seconds"] = round(time.perf_counter() - started, 3)
    reports = write_report(result.report, prefix, model_dir=path)
    events.evaluated(result)
    events.saved(path, reports)
    return TrainOutcome(result=result, model_dir=path, reports=reports, baskets=baskets)


def tune_workflow(
    data: PathLike,
    grid: Grid | Sequence[str],
    *,
    mining: Mapping[str, Any],
    read_options: Mapping[str, Any] | None = None,
    scoring: str | None = None,
    out: PathLike | None = None,
    report: PathLike | None = None,
    test_days: float | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    track: bool = False,
    register: bool = False,
    registered_model: str = "basketry",
    force: bool = False,
    tolerance: float = 0.005,
    events: WorkflowEvents | None = None,
    data_store: PathLike | None = None,
) -> TuneOutcome:
    """``basketry tune`` from Python: sweep ``grid`` (a :class:`~basketry.training.tune.Grid`,
    or the ``KEY=V1,V2`` strings of ``--grid``) over the base parameters ``mining`` (see
    :mod:`basketry.training.tune`); save the best to ``out`` when given; with ``track``, one
    parent MLflow run with a nested run per point; with ``register``, the best registered
    through the promotion gate (saved to a temporary directory when there is no ``out``).

    The whole grid is checked (``GridError``) before any data is read or any run starts; a
    sweep in which every point failed raises ``SweepError`` saying how the run was marked."""
    from basketry.training.tune import SOURCE, Grid, SweepError, parse_grid

    events = events or _Silent()
    parsed = grid if isinstance(grid, Grid) else parse_grid(list(grid))
    parsed.points(dict(mining), scoring)
    _check_plan(track, register, test_days, test_fraction)
    out = None if out is None else Path(out)
    run = (_training_run(run_name=out.name if out else "tune", source=SOURCE) if track
           else None)
    try:
        with _tracked(run, events, says_itself=(SweepError,)):
            return _tune(run, data, parsed, dict(mining), read_options, scoring, out, report,
                         seed, test_days, test_fraction, overwrite, register,
                         registered_model, force, tolerance, events, data_store)
    except SweepError as exc:
        if run is None or run.status is None:
            raise
        raise SweepError(f"{exc}; MLflow run marked {run.status}") from None


def _tune(run: TrainingRun | None, data: PathLike, grid: Grid, mining: dict[str, Any],
          read_options: Mapping[str, Any] | None, scoring: str | None, out: Path | None,
          report: PathLike | None, seed: int, test_days: float | None,
          test_fraction: float | None, overwrite: bool, register: bool,
          registered_model: str, force: bool, tolerance: float,
          events: WorkflowEvents, data_store: PathLike | None) -> TuneOutcome:
    """Read, sweep, save the best (``out``, or a temporary directory to register it), log and
    register."""
    from basketry.model import read_manifest
    from basketry.training.pipeline import save_trained
    from basketry.training.report import write_report
    from basketry.training.tune import log_sweep, run_sweep

    baskets = _read(data, read_options, events)
    sweep = run_sweep(baskets, grid, mining, scoring=scoring, test_days=test_days,
                      test_fraction=test_fraction, seed=seed, parent=run,
                      progress=events.sweep_progress)
    events.swept(sweep)
    result = sweep.result
    events.evaluated(result)
    outcome = TuneOutcome(sweep=sweep, run=run)
    with tempfile.TemporaryDirectory(prefix="basketry-tune-") as tmp:
        path, reports = None, ()
        if out is not None or register:
            target = out if out is not None else Path(tmp) / "best"
            path = save_trained(target, result, overwrite=overwrite)
            result.report["model_version"] = read_manifest(path)["model_version"]
            reports = write_report(result.report, report_prefix(target, report),
                                   model_dir=path)
            if out is not None:
                outcome.model_dir, outcome.reports = path, reports
                events.saved(path, reports)
        if run is None:
            return outcome
        if path is not None:  # the best as train would make it: its mining and scoring
            events.stage("recording the training data")
            _record_data(run, baskets, result, sweep.best.point.mining, result.scoring, seed,
                         test_days, test_fraction, data_store, outcome.model_dir,
                         _after_purchase_of(result))
        events.stage("tracking")
        log_sweep(run, sweep)
        if path is not None:
            run.log_training(result, sweep.best.point.mining, path, reports, data=Path(data))
        else:
            run.log_result(result, sweep.best.point.mining, data=Path(data))
        if register:
            outcome.registration = _register(run, result, registered_model, tolerance, force,
                                             events)
            _report_gate(run, outcome.reports, result.report, outcome.model_dir,
                         outcome.registration)
    return outcome


def _training_run(**kwargs: Any) -> TrainingRun:
    from basketry.training.tracking import TrainingRun

    return TrainingRun(**kwargs)


def _register(run: TrainingRun, result: TrainResult, name: str, tolerance: float, force: bool,
              events: WorkflowEvents) -> Registration:
    from basketry.training.registry import register

    events.stage("registering")
    return register(run, result, name=name, tolerance=tolerance, force=force)


def _report_gate(run: TrainingRun, reports: tuple[Path, ...], report: dict[str, Any],
                 model_dir: Path | None, registration: Registration | None) -> None:
    """The report page again, with the promotion gate's verdict, here and in the run."""
    from basketry.training.report import add_registration

    if reports and model_dir is not None and registration is not None:
        add_registration(reports, report, model_dir, registration)
        run.log_reports(reports)


# ---- a model trained elsewhere: evaluated again, registered ---------------------------------
def _write_json_atomically(value: Any, path: Path) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def evaluation_record(result: TrainResult) -> dict[str, Any]:
    """What ``basketry evaluate --metrics`` writes (a DVC metrics file): the model's version,
    the split, the queries and every ranker's figures, and the verdict sentences."""
    report = result.report
    return {"model_version": report.get("model_version"), "split": report["split"],
            "queries": report["queries"], "metrics": report["metrics"],
            "verdict": report.get("verdict") or []}


def evaluate_workflow(model_dir: PathLike, data: PathLike | Baskets, *,
                      read_options: Mapping[str, Any] | None = None,
                      metrics_out: PathLike | None = None,
                      events: WorkflowEvents | None = None) -> TrainResult:
    """``basketry evaluate``: the saved model at ``model_dir`` on the test part of its own
    split of ``data`` (:func:`basketry.training.assessment.assess`), written to
    ``metrics_out`` (JSON, replaced whole) when given."""
    from basketry.training.assessment import assess

    events = events or _Silent()
    baskets = _read(data, read_options, events) if isinstance(data, str | os.PathLike) else data
    result = assess(model_dir, baskets, progress=events.stage)
    events.evaluated(result)
    if metrics_out is not None:
        _write_json_atomically(evaluation_record(result), Path(metrics_out))
    return result


def register_workflow(model_dir: PathLike, data: PathLike | Baskets, *,
                      read_options: Mapping[str, Any] | None = None,
                      registered_model: str = "basketry", force: bool = False,
                      tolerance: float = 0.005, data_store: PathLike | None = None,
                      record_out: PathLike | None = None,
                      events: WorkflowEvents | None = None) -> TrainOutcome:
    """``basketry models register MODEL DATA``: a model ``train`` saved without registering
    (a DVC pipeline's train stage) is evaluated again on its own split of ``data`` (refused
    when ``data`` is not what it was trained on), then recorded as a new MLflow run (its
    parameters, metrics, a snapshot of ``data``, the model) and registered through the
    promotion gate, the champion measured on the same split. ``record_out``: the
    registration as JSON (version, promoted, the gate's reasons)."""
    from basketry.model import load_model
    from basketry.training.assessment import (
        assess,
        mining_parameters,
        recorded_after_purchase,
        recorded_split,
    )
    from basketry.training.registry import check_model_name

    events = events or _Silent()
    check_model_name(registered_model)
    model_dir = Path(model_dir)
    baskets = _read(data, read_options, events) if isinstance(data, str | os.PathLike) else data
    result = assess(model_dir, baskets, progress=events.stage)
    events.evaluated(result)
    model = load_model(model_dir, verify=False)
    how = recorded_split(model)
    # the same data (the fingerprints agree) named as the training named it: the snapshot then
    # reproduces the manifest exactly, however the path was written here
    source = (model.manifest.get("dataset") or {}).get("source")
    if source and source != baskets.source:
        import dataclasses

        baskets = dataclasses.replace(baskets, source=source)
    params = mining_parameters(model_dir)
    run = _training_run(run_name=model_dir.name)
    outcome = TrainOutcome(result=result, model_dir=model_dir, reports=(), run=run,
                           baskets=baskets)
    with _tracked(run, events):
        events.stage("recording the training data")
        _record_data(run, baskets, result, params, dict(result.scoring), how["seed"],
                     how["test_days"], how["test_fraction"], data_store, model_dir,
                     recorded_after_purchase(model))
        events.stage("tracking")
        run.log_training(result, params, model_dir, (), data=_data_name(data))
        outcome.registration = _register(run, result, registered_model, tolerance, force,
                                         events)
    if record_out is not None:
        registration = outcome.registration
        decision = registration.decision
        _write_json_atomically({
            "registered_model": registration.name, "version": registration.version,
            "model_version": result.report.get("model_version"), "run_id": run.run_id,
            "promoted": decision.promote, "forced": decision.forced,
            "gate": decision.reasons, "aliases": registration.aliases,
        }, Path(record_out))
    return outcome
