"""Tracking, registry, promotion gate, rollback and serving's registry references, with a real
MLflow and a SQLite store in a temporary directory (no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.cli import app  # noqa: E402
from basketry.data import sample_path  # noqa: E402
from basketry.model import read_manifest  # noqa: E402
from basketry.serving.state import ModelHolder, ModelRefError, resolve_model_ref  # noqa: E402
from basketry.training.registry import gate  # noqa: E402

runner = CliRunner()
GOOD = ["--test-days", "30", "--min-support", "0.02", "--min-confidence", "0.2",
        "--scoring", "smoothed"]
# a support so high that hardly any rule is left: the model ranks like popularity
WORSE = ["--test-days", "30", "--min-support", "0.05", "--min-confidence", "0.2",
         "--scoring", "smoothed"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return root, f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def tracked(store, monkeypatch):
    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    return root, uri


def _train(root: Path, name: str, args: list[str], *extra: str, data: Path | None = None):
    out = root / name
    result = runner.invoke(app, ["train", str(data or sample_path()), *args, "--out", str(out),
                                 "--overwrite", *extra])
    return result, out


def _client(uri):
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(client, name="basketry"):
    return str(client.get_model_version_by_alias(name, "champion").version)


def test_gate_rule():
    assert gate(0.3, 0.2, None).promote
    assert not gate(0.2, 0.2, None).promote  # must beat popularity
    assert gate(0.296, 0.1, 0.3, tolerance=0.005).promote
    d = gate(0.29, 0.1, 0.3, tolerance=0.005, champion_version="1")
    assert not d.promote and "worse than champion v1" in d.summary()
    d = gate(0.29, 0.1, 0.3, tolerance=0.005, force=True)
    assert d.promote and d.forced


def test_tracked_run_registry_gate_force_rollback_and_serving(tracked, tmp_path):
    _root, uri = tracked
    client = _client(uri)
    # 1. a tracked, registered, promoted first model
    result, out1 = _train(tmp_path, "m1", GOOD)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "registered basketry version 1: promoted to champion" in text
    version = client.get_model_version("basketry", "1")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    manifest = read_manifest(out1)
    metrics = run.data.metrics
    for ranker in ("model", "max_confidence", "item_knn", "popularity", "random"):
        for name in ("hit_rate_at_1", "hit_rate_at_10", "ndcg_at_10", "mrr", "precision_at_5"):
            assert metrics[f"{ranker}.{name}"] == pytest.approx(
                manifest["metrics"][ranker][name.replace("_at_", "@")])
    # the moment after the purchase (the sample has customers and times): its figures too
    report = json.loads(out1.with_name(out1.name + "-report.json").read_text())
    after = report["after_purchase"]["metrics"]
    for ranker in ("sequential", "own_frequent", "co_purchase", "popularity"):
        assert metrics[f"next_order.{ranker}.hit_rate_at_10"] == pytest.approx(
            after[ranker]["hit_rate@10"])
    params = run.data.params
    assert params["mining.min_support"] == "0.02" and params["split.method"] == "time"
    assert params["scoring.method"] == "smoothed"
    tags = run.data.tags
    assert tags["basketry.version"] and tags["basketry.model_version"] == manifest["model_version"]
    assert tags["basketry.train.fingerprint"] == manifest["dataset"]["fingerprint"]
    assert len(tags.get("basketry.git_commit", "0" * 40)) == 40
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"dataset", "report", "model"} <= artifacts
    report = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    # the page (rewritten with the gate's verdict after registration) and its figures as PNG
    assert report == {"report/m1-report.json", "report/m1-report.html",
                      "report/metrics-by-k.png", "report/rule-distributions.png"}
    page = client.download_artifacts(run.info.run_id, "report/m1-report.html", str(tmp_path))
    assert "Registered as basketry version 1: the new champion." in Path(page).read_text()
    png = client.download_artifacts(run.info.run_id, "report/metrics-by-k.png", str(tmp_path))
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    profile = client.download_artifacts(run.info.run_id, "dataset/profile.json", str(tmp_path))
    assert json.loads(Path(profile).read_text()) == manifest["dataset"]
    assert _champion(client) == "1"
    assert str(client.get_model_version_by_alias("basketry", "challenger").version) == "1"
    # serving resolves the alias to the version's basketry artifact (a verified copy of m1)
    served = resolve_model_ref("models:/basketry@champion")
    assert read_manifest(served)["model_version"] == manifest["model_version"]
    assert resolve_model_ref("models:/basketry/1") == served
    holder = ModelHolder("models:/basketry@champion", None)
    assert holder.load_initial().ok and holder.current.path == served
    assert not holder.needs_reload()
    # the pyfunc flavour loads the artifact (no pickle) and recommends
    pyfunc = mlflow.pyfunc.load_model("models:/basketry@champion")
    answer = pyfunc.predict([["85123A"]])
    assert len(answer["items"][0]) == 5

    # 2. a worse model is registered but stays challenger, and the command says why
    result, _ = _train(tmp_path, "m2", WORSE)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "version 2: stays challenger" in text and "does not beat popularity" in text
    assert "version 2: not the champion" in (tmp_path / "m2-report.html").read_text()
    assert _champion(client) == "1"
    assert str(client.get_model_version_by_alias("basketry", "challenger").version) == "2"
    run2 = client.get_run(client.get_model_version("basketry", "2").run_id)
    assert run2.data.tags["basketry.promoted"] == "false"
    # the champion was re-evaluated on the new split
    assert "champion.hit_rate_at_10" in run2.data.metrics

    # 3. --force promotes it anyway, recorded as a tag
    result, _ = _train(tmp_path, "m3", WORSE, "--force")
    assert result.exit_code == 0, result.output
    assert "promoted to champion (forced)" in " ".join(result.output.split())
    assert _champion(client) == "3"
    assert client.get_model_version("basketry", "3").tags["basketry.forced"] == "true"
    assert resolve_model_ref("models:/basketry@champion").name == "m3"
    # the watcher's check re-resolves the alias: a new champion is picked up
    assert holder.needs_reload()
    assert holder._attempt(holder.reference, force=False).changed
    assert holder.current.path.name == "m3"

    # 4. rollback points champion back at the previous champion, recorded as a tag
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0, result.output
    assert _champion(client) == "1"
    last = json.loads(client.get_registered_model("basketry").tags["basketry.last_rollback"])
    assert last["from"] == "3" and last["to"] == "1"
    assert "basketry.rolled_back_at" in client.get_model_version("basketry", "3").tags
    assert resolve_model_ref("models:/basketry@champion") == served
    assert holder.needs_reload()  # and so is a rollback
    holder._attempt(holder.reference, force=False)
    assert holder.current.path == served
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 2 and "no previous champion" in result.output
    # promote by hand, list, show
    result = runner.invoke(app, ["models", "promote", "2"])
    assert result.exit_code == 0 and _champion(client) == "2"
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and "champion" in result.output
    result = runner.invoke(app, ["models", "show", "1"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.output)["model_dir"]) == served
    assert runner.invoke(app, ["models", "show", "99"]).exit_code == 2

    # 5. a failed run is marked FAILED with the reason, registers nothing, moves no alias
    bad = tmp_path / "bad.csv"
    bad.write_text("InvoiceNo,StockCode\n")
    before = len(client.search_model_versions("name = 'basketry'"))
    result, _ = _train(tmp_path, "m4", ["--format", "long-csv", "--transaction-col", "InvoiceNo",
                                        "--item-col", "StockCode"], data=bad)
    assert result.exit_code == 2, result.output
    assert "marked FAILED" in " ".join(result.output.split())
    assert len(client.search_model_versions("name = 'basketry'")) == before
    assert _champion(client) == "2"
    failed = client.search_runs([run.info.experiment_id], "attributes.status = 'FAILED'")
    assert failed and failed[0].data.tags["basketry.failure"].startswith("DataError")
    # a budget exceeded during mining fails the same way
    result, _ = _train(tmp_path, "m5", [*GOOD, "--max-rules", "1"])
    assert result.exit_code == 2, result.output
    assert len(client.search_model_versions("name = 'basketry'")) == before
    assert _champion(client) == "2"
    assert str(client.get_model_version_by_alias("basketry", "challenger").version) == "3"
    latest = client.search_runs([run.info.experiment_id], order_by=["attributes.start_time DESC"],
                                max_results=1)[0]
    assert latest.info.status == "FAILED"
    assert latest.data.tags["basketry.failure"].startswith("BudgetExceeded")
    assert "registered_version" not in " ".join(latest.data.tags)


def test_unreachable_store_fails_cleanly(monkeypatch, tmp_path):
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result, out = _train(tmp_path, "m", GOOD)
    assert result.exit_code == 2
    assert "cannot be used" in " ".join(result.output.split())
    assert not out.exists()


def test_no_track_and_missing_registry(monkeypatch, tmp_path):
    monkeypatch.setenv("BASKETRY_TRACK", "false")
    result, _out = _train(tmp_path, "m", GOOD)
    assert result.exit_code == 0 and "MLflow run" not in result.output
    assert runner.invoke(app, ["train", str(sample_path()), *GOOD, "--out", str(tmp_path / "x"),
                               "--register"]).exit_code == 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(ModelRefError, match="no model registry"):
        resolve_model_ref("models:/basketry@champion")
    with pytest.raises(ModelRefError, match="expected models:/NAME@ALIAS"):
        resolve_model_ref("models:/basketry")


def _postgres_uri() -> str | None:
    if shutil.which("psql") is None:
        return None
    probe = subprocess.run(["pg_isready", "-h", "localhost"], capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    return os.environ.get("BASKETRY_TEST_POSTGRES")


def test_postgres_tracking_store(monkeypatch, tmp_path):
    """The same train-register-resolve loop with PostgreSQL as the tracking store
    (``BASKETRY_TEST_POSTGRES=postgresql+psycopg2://user:pw@localhost/db``, an empty database)."""
    uri = _postgres_uri()
    if uri is None:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL must be running with BASKETRY_TEST_POSTGRES set")
        pytest.skip("no local PostgreSQL server with BASKETRY_TEST_POSTGRES set "
                    "(pg_ctlcluster 15 main start; see docs/operations.md)")
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for a PostgreSQL store")
    name = f"basketry-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    result, out = _train(tmp_path, "pg", GOOD, "--registered-model", name)
    assert result.exit_code == 0, result.output
    assert f"registered {name} version 1: promoted to champion" in " ".join(result.output.split())
    served = resolve_model_ref(f"models:/{name}@champion")
    assert read_manifest(served)["model_version"] == read_manifest(out)["model_version"]
