"""`basketry init`: the files of a project, built from `basketry train`'s own options; refusals
before anything is written. The pipeline run by DVC itself: tests/test_dvc_project.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from basketry.cli.app import app
from basketry.cli.init import _train_params
from basketry.data import sample_path
from basketry.training.project import (
    READ_KEYS,
    TRAIN_KEYS,
    Param,
    ProjectError,
    params_yaml,
    pipeline,
    plan,
    train_command,
    write,
)

runner = CliRunner()


def test_params_hold_train_defaults_and_comment_out_the_rest(tmp_path: Path) -> None:
    params = _train_params()
    defaults = {p.key: p.default for p in params}
    parsed = yaml.safe_load(params_yaml("data/x.csv", params))
    assert parsed["data"] == "data/x.csv"
    assert parsed["read"] == {"format": defaults["format"]}
    # a number given as text by the option ("0.01") is a number in the file
    assert parsed["train"]["min-support"] == float(defaults["min-support"])
    for key in TRAIN_KEYS:
        if defaults[key] is None:
            assert key not in parsed["train"]
        elif key != "min-support":
            assert parsed["train"][key] == defaults[key]
    text = params_yaml("data/x.csv", params)
    for key in (*TRAIN_KEYS, *READ_KEYS):  # every listed option is there, used or commented
        assert f"  {key}: " in text or f"  # {key}: " in text


def test_a_name_becomes_the_registered_model() -> None:
    parsed = yaml.safe_load(params_yaml("d.csv", _train_params(), name="groceries"))
    assert parsed["register"]["registered-model"] == "groceries"


def test_a_renamed_train_option_is_refused() -> None:
    params = [p for p in _train_params() if p.key != "min-confidence"]
    with pytest.raises(ProjectError, match="--min-confidence"):
        params_yaml("d.csv", params)


def test_yaml_scalars_survive_awkward_values() -> None:
    params = [*_train_params()]
    params = [Param(p.key, "a: b # c" if p.key == "algorithm" else p.default) for p in params]
    assert yaml.safe_load(params_yaml("my data: 1.csv", params))["train"]["algorithm"] == \
        "a: b # c"
    assert yaml.safe_load(params_yaml("my data: 1.csv", params))["data"] == "my data: 1.csv"


def test_pipeline_stages_call_basketry_and_declare_what_dvc_pins() -> None:
    stages = pipeline()["stages"]
    assert list(stages) == ["prepare", "train", "evaluate", "register"]
    assert "basketry profile ${data} ${read}" in stages["prepare"]["cmd"]
    train = stages["train"]
    assert train["cmd"].startswith("basketry train ${data} ${read} --out model")
    assert "--no-track" in train["cmd"]  # the register stage records the run
    assert train["cmd"].endswith("${train}")
    assert train["deps"] == ["${data}", "prepared/profile.json"]
    assert train["params"] == ["read", "train"]
    assert "model" in train["outs"]
    evaluate = stages["evaluate"]
    assert evaluate["cmd"].startswith("basketry evaluate model ${data} ${read}")
    assert evaluate["deps"] == ["${data}", "model"]
    assert evaluate["metrics"] == [{"reports/metrics.json": {"cache": False}}]
    register = stages["register"]
    assert register["cmd"].startswith("basketry models register model ${data} ${read}")
    assert register["cmd"].endswith("${register}")
    # registered after evaluating, and again when the evaluation's figures change
    assert register["deps"] == ["${data}", "model", "reports/metrics.json"]
    assert register["params"] == ["read", "register"]


def test_init_writes_the_project(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--dvc", "--name", "shop"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "p"
    copied = project / "data" / sample_path().name
    assert copied.read_bytes() == sample_path().read_bytes()
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"] == f"data/{sample_path().name}"
    assert params["register"]["registered-model"] == "shop"
    assert yaml.safe_load((project / "dvc.yaml").read_text()) == pipeline()
    assert "dvc init" in result.output


def test_without_dvc_params_data_and_the_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "params.yaml"]
    # the sample travels with its attribution
    assert "CC BY 4.0" in (tmp_path / "data" / "README.md").read_text()
    command = train_command((tmp_path / "params.yaml").read_text())
    assert command.startswith(f"basketry train data/{sample_path().name} --format auto --out")
    assert "--min-support 0.01 --min-confidence 0.1" in command
    assert command in " ".join(result.output.split())


def test_data_inside_is_relative_outside_absolute(tmp_path: Path) -> None:
    inside = tmp_path / "p" / "raw" / "b.csv"
    inside.parent.mkdir(parents=True)
    inside.write_text("a,b\n")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a,b\n")
    params = _train_params()
    files = plan(tmp_path / "p", params, dvc=True, data=inside, sample=sample_path())
    assert [f.path for f in files] == ["params.yaml", "dvc.yaml"]  # the data is not copied
    assert yaml.safe_load(files[0].text or "")["data"] == "raw/b.csv"
    files = plan(tmp_path / "p", params, dvc=True, data=outside, sample=sample_path())
    assert yaml.safe_load(files[0].text or "")["data"] == str(outside)


def test_missing_data_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--dvc",
                                 "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv: no such file" in result.output
    assert not (tmp_path / "p").exists()


def test_existing_files_are_refused_by_name_unless_force(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("mine: 1\n")
    result = runner.invoke(app, ["init", str(tmp_path), "--dvc"])
    assert result.exit_code == 2
    assert "params.yaml already exists" in " ".join(result.output.split())
    assert (tmp_path / "params.yaml").read_text() == "mine: 1\n"
    assert not (tmp_path / "dvc.yaml").exists() and not (tmp_path / "data").exists()
    result = runner.invoke(app, ["init", str(tmp_path), "--dvc", "--force"])
    assert result.exit_code == 0, result.output
    assert "train" in yaml.safe_load((tmp_path / "params.yaml").read_text())


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").mkdir()
    files = plan(tmp_path, _train_params(), dvc=True, data=None, sample=sample_path())
    with pytest.raises(ProjectError, match=r"dvc\.yaml in .* is a directory"):
        write(tmp_path, files, force=True)
    assert not (tmp_path / "params.yaml").exists()


def test_a_bad_name_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--name", "no spaces"])
    assert result.exit_code == 2
    assert "invalid registered model name" in result.output
    assert not any(tmp_path.iterdir())


def test_without_pyyaml_one_line_names_it(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if not installed
    result = runner.invoke(app, ["init", str(tmp_path), "--dvc"])
    assert result.exit_code == 2
    assert "pip install pyyaml" in result.output
    assert not any(tmp_path.iterdir())
