"""`basketry evaluate` and `basketry models register MODEL DATA`: a model trained without
registering (a DVC pipeline's train stage) measured again on its own split, and registered
through the gate; the wrong data, a model without a split or a tampered model is one line,
with nothing written and nothing registered."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from basketry.cli.app import app
from basketry.data import sample_path

runner = CliRunner()
SAMPLE = str(sample_path())
READ = ["--preset", "online-retail"]
TRAIN = ["--test-days", "30", "--min-support", "0.02", "--min-confidence", "0.2",
         "--scoring", "smoothed"]


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code != 0
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert "unexpected" not in lines[0], lines[0]  # a known failure, not a bug report
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("assess")
    done = _invoke("train", SAMPLE, *READ, *TRAIN, "--out", str(root / "model"),
                   "--report", str(root / "train"), "--no-track")
    assert done.exit_code == 0, done.output
    return root


def test_evaluate_gives_the_figures_train_gave(trained, tmp_path):
    metrics = tmp_path / "reports" / "metrics.json"
    done = _invoke("evaluate", str(trained / "model"), SAMPLE, *READ, "--metrics", str(metrics))
    assert done.exit_code == 0, done.output
    written = json.loads(metrics.read_text())
    report = json.loads((trained / "train.json").read_text())
    assert written["metrics"] == report["metrics"]
    assert written["split"] == report["split"]
    assert written["model_version"] == report["model_version"]


def test_other_data_is_refused_and_nothing_is_written(trained, tmp_path):
    table = pq.read_table(SAMPLE)
    other = tmp_path / "other.parquet"
    pq.write_table(table.slice(0, table.num_rows * 4 // 5), other)
    metrics = tmp_path / "metrics.json"
    said = _one_error_line(_invoke("evaluate", str(trained / "model"), str(other), *READ,
                                   "--metrics", str(metrics)))
    assert "is not the data" in said and "trained on" in said
    assert not metrics.exists()


def test_a_model_without_a_split_is_refused(tmp_path):
    mined = tmp_path / "mined"
    assert _invoke("mine", SAMPLE, *READ, "--min-support", "0.02", "--out",
                   str(mined)).exit_code == 0
    said = _one_error_line(_invoke("evaluate", str(mined), SAMPLE, *READ))
    assert "records no train/test split" in said


def test_a_tampered_model_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained / "model", copy)
    rules = copy / "rules.parquet"
    data = bytearray(rules.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rules.write_bytes(bytes(data))
    said = _one_error_line(_invoke("evaluate", str(copy), SAMPLE, *READ))
    assert "rules.parquet" in said


@pytest.mark.slow
def test_register_records_the_run_and_gates_on_the_same_split(trained, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    home = tmp_path / "home"
    monkeypatch.setenv("BASKETRY_HOME", str(home))
    table = pq.read_table(SAMPLE)
    other = tmp_path / "other.parquet"
    pq.write_table(table.slice(0, table.num_rows * 4 // 5), other)
    # the wrong data first: refused before any run or version exists
    said = _one_error_line(_invoke("models", "register", str(trained / "model"), str(other),
                                   *READ))
    assert "is not the data" in said
    assert not (home / "mlflow.db").exists()

    record = tmp_path / "registration.json"
    done = _invoke("models", "register", str(trained / "model"), SAMPLE, *READ,
                   "--record", str(record))
    assert done.exit_code == 0, done.output
    first = json.loads(record.read_text())
    assert first["version"] == "1" and first["promoted"] is True
    assert "no current champion" in first["gate"]
    # again: the champion (the same model) measured on the same split, so not worse than it
    done = _invoke("models", "register", str(trained / "model"), SAMPLE, *READ, "--record",
                   str(record), "--tolerance", "0")
    assert done.exit_code == 0, done.output
    second = json.loads(record.read_text())
    assert second["version"] == "2" and second["promoted"] is True
    hr = json.loads((trained / "train.json").read_text())["metrics"]["model"]["hit_rate@10"]
    assert f"not worse than champion v1 ({hr:.4f})" in " ".join(second["gate"])

    from basketry.training.registry import list_versions

    rows = list_versions(uri=f"sqlite:///{home / 'mlflow.db'}")
    assert [row["version"] for row in rows] == ["2", "1"]
    assert rows[0]["hit_rate@10"] == pytest.approx(hr)
