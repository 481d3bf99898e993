"""``basketry tune``: the grid, the sweep (validation slice, one mining per mining setting, the
same evaluation as ``train``), nested MLflow runs, failed points, registration of the best."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import read_baskets, sample_path
from basketry.model import read_manifest
from basketry.training import train_and_evaluate
from basketry.training.tune import TUNED, GridError, parse_grid, run_sweep

runner = CliRunner()
BASE = {"min_support": 0.01, "min_confidence": 0.2}
SPLIT = ["--test-days", "30", "--min-confidence", "0.2"]


# ---- the grid --------------------------------------------------------------------------------
def test_grid_points_are_every_distinct_combination_in_order():
    grid = parse_grid(["min-support=0.02,25,0.02", "scoring=confidence,smoothed",
                       "prior_weight=0,5"])
    points = grid.points(BASE)
    # confidence ignores prior_weight: its two combinations are one point
    assert [p.label for p in points] == [
        "min_support=0.02 scoring=confidence",
        "min_support=0.02 scoring=smoothed prior_weight=0",
        "min_support=0.02 scoring=smoothed prior_weight=5",
        "min_support=25 scoring=confidence",
        "min_support=25 scoring=smoothed prior_weight=0",
        "min_support=25 scoring=smoothed prior_weight=5",
    ]
    assert [p.index for p in points] == list(range(1, 7))
    assert points[3].mining == {**BASE, "min_support": 25}  # an integer is a count
    assert points[2].scoring == {"method": "smoothed", "prior_weight": 5.0, "combine": 0.01}
    # without a scoring key: train's default, tuned on the validation slice
    assert {p.scoring for p in parse_grid(["max_len=2,none"]).points(BASE)} == {TUNED}
    assert [p.mining["max_len"] for p in parse_grid(["max_len=2,none"]).points(BASE)] == [2, None]
    # smoothed parameters alone mean smoothed scoring
    assert parse_grid(["combine=0,0.1"]).points(BASE)[1].scoring["combine"] == 0.1


@pytest.mark.parametrize(("specs", "message"), [
    ([], "at least one --grid"),
    (["min_supprt=0.01"], "unknown parameter 'min_supprt'"),
    (["min_support"], "expected KEY=V1,V2"),
    (["min_support=0.01", "min_support=0.02"], "given twice"),
    (["min_support=0.01,,0.02"], "empty value"),
    (["min_support=1.5"], "not a fraction in (0, 1]"),
    (["min_support=0"], "not a count >= 1"),
    (["min_confidence=abc"], "'abc' is not a number"),
    (["min_confidence=1.2"], "not in [0, 1]"),
    (["max_p_value=0"], "not in (0, 1]"),
    (["max_len=0"], "not >= 1"),
    (["scoring=best"], "unknown scoring 'best'"),
    (["scoring=confidence", "prior_weight=1,2"],
     "applies to scoring=smoothed or one_scale or lift_product"),
    (["scoring=lift_product", "combine=0.5,2"], "combine of lift_product must be within 0..1"),
    (["combine=-1"], "not in [0, inf)"),
])
def test_bad_grids_are_named(specs, message):
    with pytest.raises(GridError, match=None) as caught:
        parse_grid(specs).points(BASE)
    assert message in str(caught.value)


def test_base_options_are_checked_with_the_grid():
    with pytest.raises(GridError, match="min_confidence"):
        parse_grid(["scoring=confidence"]).points({**BASE, "min_confidence": 7.0})
    with pytest.raises(GridError, match="--scoring: unknown scoring"):
        parse_grid(["min_support=0.02"]).points(BASE, scoring="nope")


# ---- the sweep -------------------------------------------------------------------------------
def test_sweep_scores_on_validation_and_refits_the_best_as_train_does():
    baskets = read_baskets(sample_path())
    grid = parse_grid(["min_support=0.02,0.05", "scoring=tuned,confidence,lift"])
    sweeps = [run_sweep(baskets, grid, BASE, test_days=30) for _ in range(2)]
    sweep = sweeps[0]
    assert len(sweep.points) == 6 and all(p.ok for p in sweep.points)
    assert sweep.n_minings == 2  # scoring-only changes share a mining
    # points of one mining setting have the same rules and the same popularity baseline
    by_support: dict[float, set] = {}
    for p in sweep.points:
        by_support.setdefault(p.point.mining["min_support"], set()).add(
            (p.n_rules, p.figure(ranker="popularity")))
    assert all(len(v) == 1 for v in by_support.values())
    # the best is the first by validation HR@10, then NDCG@10
    ranked = sweep.ranked()
    assert ranked[0] is sweep.best
    keys = [(p.figure(), p.figure("ndcg@10")) for p in ranked]
    assert keys == sorted(keys, reverse=True)
    # the tuned point chose its scoring as train's tuning does, on the same validation slice
    tuned = next(p for p in sweep.points if p.point.scoring == TUNED
                 and p.point.mining["min_support"] == 0.02)
    trained = train_and_evaluate(baskets, {**BASE, "min_support": 0.02}, test_days=30,
                                 after_purchase=False)
    assert tuned.scoring == trained.scoring and tuned.tuning == trained.tuning
    # the best, refit: the same figures as train with the best's parameters and scoring
    again = train_and_evaluate(baskets, sweep.best.point.mining, test_days=30,
                               scoring=sweep.best.scoring, after_purchase=False)
    assert sweep.result.metrics == again.metrics
    assert sweep.result.report["sweep"]["best"] == sweep.best.point.index
    # same data and grid, same sweep
    assert sweeps[1].record() == sweep.record()
    assert sweeps[1].result.metrics == sweep.result.metrics


# ---- the command, tracked --------------------------------------------------------------------
mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('tune') / 'mlflow.db'}"
    return uri, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def tracked(store, monkeypatch):
    uri, client = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    return client


def _runs(client):
    experiment = client.get_experiment_by_name("basketry")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_tune_command_nested_runs_failed_point_and_registration(tracked, tmp_path):
    client = tracked
    earlier = {r.info.run_id for r in _runs(client)}
    out = tmp_path / "best"
    # min_support 0.01 finds more rules than the budget: those points fail, the sweep goes on
    result = runner.invoke(app, [
        "tune", str(sample_path()), *SPLIT, "--max-rules", "3000",
        "--grid", "min_support=0.01,0.02,0.05", "--grid", "scoring=confidence,smoothed",
        "--out", str(out), "--register", "--registered-model", "tuned"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "6 grid points" in text and "FAILED: BudgetExceeded" in text and "★" in text
    runs = [r for r in _runs(client) if r.info.run_id not in earlier]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 7 and len(children) == 6
    assert parent.info.status == "FINISHED" and parent.data.tags["basketry.sweep"] == "true"
    failed = [r for r in children if r.info.status == "FAILED"]
    assert {r.data.params["mining.min_support"] for r in failed} == {"0.01"} and len(failed) == 2
    assert all(r.data.tags["basketry.failure"].startswith("BudgetExceeded") for r in failed)
    done = [r for r in children if r.info.status == "FINISHED"]
    assert all("validation.model.hit_rate_at_10" in r.data.metrics for r in done)
    # the parent holds the best: the child with the highest validation HR@10 (then NDCG@10,
    # then grid order), its parameters, its validation figures and its test figures
    best = min(done, key=lambda r: (-r.data.metrics["validation.model.hit_rate_at_10"],
                                    -r.data.metrics["validation.model.ndcg_at_10"],
                                    int(r.data.params["grid.point"])))
    assert parent.data.tags["basketry.sweep.best_run_id"] == best.info.run_id
    assert parent.data.params["mining.min_support"] == best.data.params["mining.min_support"]
    assert parent.data.params["scoring.method"] == best.data.params["scoring.method"]
    assert parent.data.metrics["best.validation.model.hit_rate_at_10"] == \
        best.data.metrics["validation.model.hit_rate_at_10"]
    metrics = parent.data.metrics
    assert metrics["sweep.n_minings"] == 3 and metrics["sweep.n_failed"] == 2
    manifest = read_manifest(out)
    assert metrics["model.hit_rate_at_10"] == manifest["metrics"]["model"]["hit_rate@10"]
    sweep = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep.json",
                                                      str(tmp_path))).read_text())
    assert len(sweep["points"]) == 6 and sweep["best"] == int(best.data.params["grid.point"])
    # registered through the gate, from the parent run
    version = client.get_model_version("tuned", "1")
    assert version.run_id == parent.info.run_id
    assert version.tags["basketry.model_version"] == manifest["model_version"]
    assert "beats popularity" in version.tags["basketry.gate"]
    assert str(client.get_model_version_by_alias("tuned", "champion").version) == "1"
    assert "registered tuned version 1: promoted to champion" in text
    # the best's report page, written again after the registration, says so
    assert "Registered as tuned version 1: the new champion." in \
        (tmp_path / "best-report.html").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "min_supprt=0.01"], "unknown parameter 'min_supprt'"),
    (["--grid", "min_confidence=2"], "not in [0, 1]"),
    ([], "at least one --grid"),
    (["--grid", "min_support=0.02", "--register", "--no-track"], "--register needs tracking"),
])
def test_tune_invalid_grid_is_one_line_and_starts_no_run(tracked, tmp_path, args, message):
    before = len(_runs(tracked))
    result = runner.invoke(app, ["tune", str(sample_path()), *SPLIT, *args,
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) <= 2  # one line (wrapped at most once)
    assert len(_runs(tracked)) == before and not (tmp_path / "m").exists()


def test_tune_failures_mark_the_parent_failed(tracked, tmp_path):
    earlier = {r.info.run_id for r in _runs(tracked)}
    # every point fails: a clean error, the parent FAILED with the reason
    result = runner.invoke(app, ["tune", str(sample_path()), *SPLIT, "--max-rules", "1",
                                 "--grid", "min_support=0.02,0.05"])
    assert result.exit_code == 2, result.output
    assert "every grid point failed" in result.output
    runs = [r for r in _runs(tracked) if r.info.run_id not in earlier]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED"
    assert "every grid point failed" in parent.data.tags["basketry.failure"]
    assert sum(r.info.status == "FAILED" for r in runs) == 3
    # bad data: the parent FAILED with the data error, no point run
    bad = tmp_path / "bad.csv"
    bad.write_text("InvoiceNo,StockCode\n")
    result = runner.invoke(app, ["tune", str(bad), "--format", "long-csv", "--transaction-col",
                                 "InvoiceNo", "--item-col", "StockCode",
                                 "--grid", "min_support=0.02"])
    assert result.exit_code == 2 and "marked FAILED" in " ".join(result.output.split())
    seen = earlier | {r.info.run_id for r in runs}
    newest = [r for r in _runs(tracked) if r.info.run_id not in seen]
    assert len(newest) == 1 and newest[0].info.status == "FAILED"
    assert newest[0].data.tags["basketry.failure"].startswith("DataError")


def test_tune_with_an_unreachable_store_stops_before_reading(monkeypatch, tmp_path):
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result = runner.invoke(app, ["tune", str(sample_path()), *SPLIT, "--grid",
                                 "min_support=0.02", "--out", str(tmp_path / "m"), "--register"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot be used" in text and "read " not in text
    assert not (tmp_path / "m").exists()
