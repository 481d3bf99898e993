"""`basketry simulate` end to end on the bundled sample: the first month trained, the next ones
through a real server with capture on, monitored, and retrained by policy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")
pytest.importorskip("litestar", reason="the serve extra is not installed")

from basketry.data import sample_path

BASKETRY = str(Path(sys.executable).with_name("basketry"))


def _check_in_chromium(page: Path, result: dict, tmp_path: Path) -> None:
    """The timeline page renders from its file alone, with no console error, and its chart
    shows replay.json's monthly hit rates."""
    from tests.serving.test_dashboard_browser import _chrome, _errors

    browser = _chrome(tmp_path)
    try:
        browser.get(page.as_uri())
        deadline = time.monotonic() + 30
        traces = None
        while time.monotonic() < deadline and not traces:
            traces = browser.execute_script(
                "const el = document.getElementById('timeline');"
                "return el && el.data ? el.data.map(t => ({name: t.name, y: t.y})) : null;")
            time.sleep(0.2)
        assert traces, "the chart was not drawn"
        assert _errors(browser) == []
        lines = {t["name"]: t["y"] for t in traces}
        for policy in result["policies"]:
            assert lines[policy["policy"]] == pytest.approx(
                [m["hit_rate@10"] for m in policy["months"]])
            # the drift panel under it: each month's highest score, as replay.json has it
            scores = [m["drift_score"] for m in policy["months"] if m["drift_score"] is not None]
            assert scores, "no month has a drift score"
            assert lines[f"{policy['policy']}: drift score"] == pytest.approx(scores)
        assert browser.save_screenshot(str(tmp_path / "timeline.png"))
    finally:
        browser.quit()


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env["BASKETRY_HOME"] = str(home)
    return subprocess.run([BASKETRY, *args], env=env, capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.mark.slow
def test_the_loop_replayed_month_by_month_through_the_server(tmp_path):
    out = tmp_path / "sim"
    done = run("simulate", str(sample_path()), "--out", str(out), "--initial-months", "1",
               "--policies", "never,monthly,alert", "--retrain-on", "critical",
               "--monthly-first", "1", "--min-support", "0.02", "--min-confidence",
               "0.2", home=tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "replay.json").read_text())
    never, monthly, alert = result["policies"]
    assert result["monthly_first"] == 1
    # the alert policy: every month for its first month, then only on a critical alert
    assert alert["months"][0]["retrained"]
    for month in alert["months"][1:]:
        assert month["retrained"] == bool(month["critical"]), month
    assert [m["label"] for m in never["months"]] == [m["label"] for m in monthly["months"]]
    assert len(never["months"]) >= 3
    assert never["retrains"] == 0 and monthly["retrains"] == len(monthly["months"])
    for policy in (never, monthly):
        for month in policy["months"]:
            # every order asked the server and was posted; the monitoring replayed them
            assert month["orders"] > 0 and month["queries"] > 0
            assert 0 < month["hit_rate@10"] < 1
    # never retraining: one version served throughout; monthly: a new one after a promotion
    assert {v for m in never["months"] for v in m["versions"]} == set(
        never["months"][0]["versions"])
    promoted = [i for i, m in enumerate(monthly["months"]) if m["promoted"]]
    if promoted and promoted[0] + 1 < len(monthly["months"]):
        after = monthly["months"][promoted[0] + 1]["versions"]
        assert after != monthly["months"][0]["versions"]
    page = (out / "timeline.html").read_text()
    assert "Plotly.newPlot" in page and not re.search(r"<script[^>]+src=", page)
    assert "mean online HR@10" in page
    _check_in_chromium(out / "timeline.html", result, tmp_path)
    # each policy kept its own registry and monitoring store
    assert (out / "never" / "monitoring.db").is_file()
    assert (out / "monthly" / "mlflow.db").is_file()
    said = " ".join(done.stdout.split())
    assert "online HR@10 per month" in said and "retrains (promoted)" in said


def test_a_history_without_order_times_is_one_line(tmp_path):
    data = tmp_path / "lines.txt"
    data.write_text("a b c\nb c\n" * 50)
    done = run("simulate", str(data), "--out", str(tmp_path / "sim"), home=tmp_path / "home")
    assert done.returncode == 2
    assert "no timestamps" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--policies", "never,sometimes"], "sometimes"),
    (["--retrain-on", "whenever"], "whenever"),
    (["--initial-months", "0"], "initial-months"),
])
def test_bad_options_are_one_line_before_any_work(tmp_path, args, needle):
    out = tmp_path / "sim"
    done = run("simulate", str(sample_path()), "--out", str(out), *args,
               home=tmp_path / "home")
    assert done.returncode == 2, done.stdout + done.stderr
    assert needle in " ".join(done.stderr.split()) and "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "home").exists()


def test_the_drift_score_is_the_months_highest_statistic_over_its_threshold():
    from basketry.monitoring.drift_types import DriftResult
    from basketry.simulation.replay import drift_peak

    def result(detector, end_us, value, threshold):
        return DriftResult(detector, "v", end_us - 10, end_us, "s", value, threshold,
                           value > (threshold or 0), 100)

    month_start = 1_000
    results = [result("items", 900, 9.0, 1.0),  # ended before the month: not counted
               result("items", 1_500, 0.2, 0.4), result("rules", 2_000, 0.3, 0.2),
               result("basket_size", 2_000, 5.0, None),  # no threshold: no score
               result("new_items", 2_000, 0.1, 0.0)]
    assert drift_peak(results, month_start) == (pytest.approx(1.5), "rules")
    assert drift_peak(results[:1], month_start) == (None, "")
