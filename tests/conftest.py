"""Keep the test suite away from the user's own basketry home and MLflow store: tracking is off
unless a test turns it on (tests/training/test_tracking.py), and so is the monitoring capture
(on by default in production; the capture tests turn it on)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_basketry_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path_factory.getbasetemp() / "basketry-home"))
    monkeypatch.setenv("BASKETRY_TRACK", "false")
    monkeypatch.setenv("BASKETRY_MONITOR_CAPTURE", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
