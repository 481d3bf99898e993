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


@pytest.fixture
def wide_console(monkeypatch):
    """The commands' consoles 250 columns wide, whatever width they took when first imported
    (rich fixes a console's width from COLUMNS at creation: a worker of a parallel run, or an
    earlier test, may have created them narrower)."""
    from basketry.cli import console as consoles

    for console in (consoles.console, consoles.err_console):
        monkeypatch.setattr(console, "_width", 250)
