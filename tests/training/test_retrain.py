"""`basketry retrain` and `monitor watch --retrain` as an operator runs them: a champion
trained and registered, then retrained on a newer window with its own recipe; a failure
changes nothing; the trigger retrains at most once per cooldown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

from basketry.data import sample_path
from basketry.training.retrain_trigger import RetrainTrigger

BASKETRY = str(Path(sys.executable).with_name("basketry"))
SAMPLE = str(sample_path())
TRAIN = ["train", SAMPLE, "--test-days", "30", "--min-support", "0.02", "--min-confidence",
         "0.2", "--scoring", "smoothed"]


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env.update(BASKETRY_HOME=str(home), BASKETRY_TRACK="true")
    return env


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASKETRY, *args], env=env_for(home), capture_output=True, text=True,
                          timeout=600, check=False)


def versions(home: Path) -> str:
    listed = run(home, "models", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A home whose registry has a champion trained on the sample (version 1)."""
    root = tmp_path_factory.mktemp("retrain")
    home = root / "home"
    trained = run(home, *TRAIN, "--out", str(root / "m1"))
    assert trained.returncode == 0, trained.stderr
    assert "promoted to champion" in trained.stdout
    return root, home


def test_retrain_registers_a_version_trained_with_the_champions_recipe(champion, tmp_path):
    root, home = champion
    # the shop's orders reached the store too: the same invoices as the file, counted once
    ingested = run(home, "monitor", "ingest", SAMPLE)
    assert ingested.returncode == 0, ingested.stderr
    out = tmp_path / "m2"
    done = run(home, "retrain", SAMPLE, "--days", "60", "--test-days", "14", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert "retrained champion v1 on" in said
    assert "0 orders from the monitoring store" in said and "already in the data" in said
    assert "registered basketry version 2" in said
    old, new = manifest(root / "m1"), manifest(out)
    for key in ("min_support", "min_confidence", "algorithm", "max_len"):
        assert new["parameters"][key] == old["parameters"][key]
    # the window: 60 days up to the latest basket, fewer baskets than the whole sample
    assert new["counts"]["n_baskets"] < old["counts"]["n_baskets"]
    assert "version 2" in " ".join(versions(home).split()) or "2" in versions(home)


def test_retrain_from_the_store_alone(champion, tmp_path):
    _, home = champion
    assert run(home, "monitor", "ingest", SAMPLE).returncode == 0  # idempotent
    done = run(home, "retrain", "--out", str(tmp_path / "m3"), "--test-days", "14")
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert "orders from the monitoring store, 0 already in the data" in said
    assert "registered basketry version" in said


def test_a_window_too_small_changes_nothing(champion):
    _, home = champion
    before = versions(home)
    models = home / "models"
    existing = set(models.iterdir()) if models.exists() else set()
    done = run(home, "retrain", SAMPLE, "--days", "2", "--no-orders")
    assert done.returncode == 2, done.stdout + done.stderr
    line = " ".join(done.stderr.split())
    assert "fewer than the 1,000 a retrain needs" in line and "nothing was trained" in line
    assert "Traceback" not in done.stderr
    assert versions(home) == before
    assert (set(models.iterdir()) if models.exists() else set()) == existing


@pytest.mark.parametrize("args, message", [
    (["--days", "0"], "positive number of days"),
    (["--test-days", "-1"], "positive number of days"),
])
def test_bad_windows_are_one_line(champion, args, message):
    _, home = champion
    done = run(home, "retrain", SAMPLE, "--no-orders", *args)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_without_a_champion_there_is_nothing_to_retrain(champion, tmp_path):
    done = run(tmp_path / "empty", "retrain", SAMPLE, "--no-orders")
    assert done.returncode == 2
    assert "there is no tracking store" in " ".join(done.stderr.split())
    _, home = champion  # a registry without that model
    done = run(home, "retrain", SAMPLE, "--no-orders", "-m", "other")
    assert done.returncode == 2
    assert "no champion of 'other' to retrain" in " ".join(done.stderr.split())


def test_an_unreachable_store_is_one_line_and_changes_nothing(champion):
    """The monitoring store's orders are asked for and the store cannot be reached: one line
    naming it, its password masked, and the registry as it was."""
    _, home = champion
    before = versions(home)
    done = run(home, "retrain", SAMPLE, "--db",
               "postgresql+psycopg2://shop:hunter2-secret@127.0.0.1:1/orders")
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "127.0.0.1:1" in said and "hunter2-secret" not in said
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert versions(home) == before


class Opened:
    def __init__(self, kind: str, version: str | None) -> None:
        self.kind, self.model_version = kind, version


def test_the_trigger_retrains_once_per_cooldown_and_records_why(tmp_path, monkeypatch):
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "empty"))
    for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "retrain-last.json"
    trigger = RetrainTrigger([SAMPLE, "--no-orders"], cooldown=3_600, state=state)
    assert trigger.on_alerts([]) is None and not state.exists()
    # a real `basketry retrain`: this home has no champion, so it fails and says so
    said = trigger.on_alerts([Opened("items_orders", "abc"), Opened("rule_confidence", "abc")],
                             now=1_000.0)
    assert said is not None and "FAILED, nothing changed" in said
    assert "no tracking store" in said
    last = trigger.last()
    assert last is not None and last.returncode == 2 and last.started == 1_000.0
    assert last.alerts == ["items_orders (abc)", "rule_confidence (abc)"]
    # within the cooldown: not started again, said why; after it: started again
    skipped = trigger.on_alerts([Opened("basket_size", None)], now=1_000.0 + 1_800)
    assert skipped is not None and "not started" in skipped and "30 min left" in skipped
    assert trigger.last().started == 1_000.0
    again = RetrainTrigger([SAMPLE, "--no-orders"], cooldown=3_600, state=state)
    assert "FAILED" in again.on_alerts([Opened("basket_size", None)], now=1_000.0 + 3_601)
    assert again.last().started == 1_000.0 + 3_601
