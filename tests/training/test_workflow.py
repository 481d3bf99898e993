"""The train and tune workflows called from Python, without the CLI: what they write, what they
report as they go, and the MLflow run they hold (finished, or failed with the events told)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from basketry.data import DataError, sample_path
from basketry.model import load_model, read_manifest
from basketry.training import WorkflowEvents, train_workflow, tune_workflow

MINING = {"min_support": 0.02, "min_confidence": 0.2}


class Recorder(WorkflowEvents):
    """Every event, in order (stages by name only)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def stage(self, message: str) -> None:
        self.seen.append(("stage", message))

    def read(self, baskets: Any) -> None:
        self.seen.append(("read", baskets.n_baskets))

    def sweep_progress(self, done: int, total: int, message: str) -> None:
        self.seen.append(("sweep_progress", (done, total)))

    def swept(self, sweep: Any) -> None:
        self.seen.append(("swept", sweep.best.point.index))

    def evaluated(self, result: Any) -> None:
        self.seen.append(("evaluated", result.scoring["method"]))

    def saved(self, model_dir: Path, reports: tuple[Path, ...]) -> None:
        self.seen.append(("saved", model_dir))

    def run_failed(self, run: Any) -> None:
        self.seen.append(("run_failed", run.status))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]


def test_train_workflow_writes_the_model_and_report_and_says_so(tmp_path):
    events = Recorder()
    out = tmp_path / "model"
    outcome = train_workflow(sample_path(), out, mining=MINING, test_days=30, events=events)
    assert outcome.model_dir == out and outcome.run is None and outcome.registration is None
    assert load_model(out).version == read_manifest(out)["model_version"]
    assert outcome.reports == (tmp_path / "model-report.json", tmp_path / "model-report.html")
    assert all(path.is_file() for path in outcome.reports)
    assert outcome.result.report["model_version"] == read_manifest(out)["model_version"]
    kinds = [k for k in events.kinds() if k != "stage"]
    assert kinds == ["read", "evaluated", "saved"]
    assert events.seen[0] == ("stage", f"reading {sample_path()}")
    # without events, the same work in silence
    again = train_workflow(sample_path(), tmp_path / "again", mining=MINING, test_days=30)
    assert again.result.metrics == outcome.result.metrics


def test_train_workflow_refuses_a_plan_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="tracking"):
        train_workflow(sample_path(), tmp_path / "m", mining=MINING, register=True)
    with pytest.raises(ValueError, match="not both"):
        train_workflow(sample_path(), tmp_path / "m", mining=MINING, test_days=30,
                       test_fraction=0.2)
    assert not (tmp_path / "m").exists()


def test_tune_workflow_sweeps_and_saves_the_best(tmp_path):
    events = Recorder()
    outcome = tune_workflow(sample_path(), ["min_support=0.02,0.05", "scoring=confidence"],
                            mining=MINING, out=tmp_path / "best", test_days=30, events=events)
    assert len(outcome.sweep.points) == 2 and outcome.run is None
    assert outcome.model_dir == tmp_path / "best" and load_model(outcome.model_dir)
    kinds = [k for k in events.kinds() if k not in ("stage", "sweep_progress")]
    assert kinds == ["read", "swept", "evaluated", "saved"]
    assert ("sweep_progress", (2, 2)) in events.seen


@pytest.fixture
def store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_a_tracked_workflow_finishes_its_run_and_registers(tmp_path, store):
    outcome = train_workflow(sample_path(), tmp_path / "model", mining=MINING, test_days=30,
                             track=True, register=True, registered_model="workflow")
    assert outcome.run is not None and outcome.run.status == "FINISHED"
    assert outcome.registration is not None and outcome.registration.version == "1"
    assert outcome.registration.name == "workflow"


def test_a_failed_workflow_marks_its_run_failed_and_tells_the_events(tmp_path, store):
    import mlflow

    bad = tmp_path / "bad.csv"
    bad.write_text("InvoiceNo,StockCode\n")
    events = Recorder()
    with pytest.raises(DataError):
        train_workflow(bad, tmp_path / "model", mining=MINING, track=True, register=True,
                       read_options={"format": "long-csv", "transaction_col": "InvoiceNo",
                                     "item_col": "StockCode"}, events=events)
    assert events.kinds()[-1] == "run_failed" and events.seen[-1][1] == "FAILED"
    assert not (tmp_path / "model").exists()
    client = mlflow.MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [run.info.status for run in runs] == ["FAILED"]
