"""MLflow's own INFO lines ("Creating initial MLflow database tables...", alembic's migration
steps) do not reach basketry's output: a new store created and a run logged in a fresh process
print nothing on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

SCRIPT = """
from basketry.training.tracking import TrainingRun
with TrainingRun(experiment="quiet") as run:
    run.log_metrics({"model.hit_rate_at_10": 0.2})
print("done")
"""


def test_a_new_store_and_a_run_print_no_mlflow_lines(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "BASKETRY_HOME"}
    env["BASKETRY_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert done.stderr == ""
    assert (tmp_path / "mlflow.db").is_file()
