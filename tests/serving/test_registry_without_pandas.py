"""A serving install (``basketry[serve,mlflow]``, the serving image's) has no pandas: a registry
reference must still resolve and load there. MLflow's own reader of an ``MLmodel`` file imports
pandas (for signatures), so serving reads the file as YAML; this runs the load in a process
where ``import pandas`` fails, as it does in that install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.conftest import write_version

CHECK = """
import json, sys
sys.modules["pandas"] = None  # `import pandas` raises ImportError, as where it is not installed
from basketry.serving.state import ModelHolder
holder = ModelHolder(sys.argv[1], None)
outcome = holder.load_initial()
print(json.dumps({"ok": outcome.ok, "error": outcome.error,
                  "version": holder.current.version if holder.current else None}))
"""


def test_a_registry_reference_loads_where_pandas_is_not_installed(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("shop")
    artifact = tmp_path / "artifact"
    version = write_version(artifact / "model", "v1")
    # an MLflow model directory whose python_function data is the basketry model, with a
    # signature (what makes MLflow's reader import pandas)
    (artifact / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: basketry.training.pyfunc\n"
        "    data: model\nsignature:\n  inputs: '[{\"type\": \"string\"}]'\n",
        encoding="utf-8")
    number = client.create_model_version("shop", source=str(artifact)).version
    client.set_registered_model_alias("shop", "champion", number)

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BASKETRY_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", CHECK, "models:/shop@champion"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"ok": True, "error": None, "version": version}
