"""The registry commands as a user runs them: `models doctor` after a killed train, and a bad
registered-model name refused before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.data import sample_path

BASKETRY = str(Path(sys.executable).with_name("basketry"))
TRAIN = ["train", str(sample_path()), "--no-after-purchase", "--test-days", "30",
         "--min-support", "0.02",
         "--min-confidence", "0.2", "--scoring", "smoothed"]


def run(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env.update(BASKETRY_HOME=str(home), BASKETRY_TRACK="true", **extra)
    return subprocess.run([BASKETRY, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_doctor_reports_then_repairs_a_train_killed_mid_registration(tmp_path):
    home = tmp_path / "home"
    first = run(home, *TRAIN, "--out", str(tmp_path / "m1"))
    assert first.returncode == 0, first.stderr
    killed = run(home, *TRAIN, "--out", str(tmp_path / "m2"),
                 BASKETRY_FAULT_AT="champion_set", BASKETRY_FAULT_SIGNAL="KILL")
    assert killed.returncode == -9

    found = run(home, "models", "doctor")
    assert found.returncode == 3, found.stdout + found.stderr
    assert "Traceback" not in found.stderr
    repaired = run(home, "models", "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    again = run(home, "models", "doctor")
    assert again.returncode == 0 and "consistent" in again.stdout
    listed = run(home, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "champion" in listed.stdout


def test_a_bad_registered_model_name_is_refused_before_any_work(tmp_path):
    home = tmp_path / "home"
    result = run(home, *TRAIN, "--out", str(tmp_path / "m"), "-m", "a/b")
    assert result.returncode == 2
    assert "invalid registered model name" in " ".join(result.stderr.split())
    assert not (tmp_path / "m").exists() and not home.exists()


def test_read_only_registry_commands_on_an_empty_store_say_so_and_create_nothing(tmp_path):
    home = tmp_path / "home"
    for command in (["models", "rollback"], ["models", "list"], ["models", "show", "1"],
                    ["models", "promote", "1"]):
        result = run(home, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
        assert "no tracking store" in result.stderr
    assert not (home / "mlflow.db").exists()


def test_basketry_home_that_is_a_file_is_one_line(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory\n")
    result = run(home, *TRAIN, "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "BASKETRY_HOME" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()
