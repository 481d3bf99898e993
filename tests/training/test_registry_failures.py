"""A registration that fails half-way leaves the registry as it was: no new version, no alias
moved, the champion history unchanged, and the run ``FAILED`` with the reason.

The failures are real: the SQLite tracking store itself fails one write (a trigger whose
body raises a database error, as a store going away would), at each step of the registration after
the version exists. MLflow is not mocked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.cli import app  # noqa: E402
from basketry.data import sample_path  # noqa: E402
from basketry.training.registry import HISTORY_TAG  # noqa: E402

runner = CliRunner()
# fixed scoring: no tuning, a quicker train; the same data and flags give the same metrics, so
# a second version passes the gate against the first (not worse than the champion)
# the after-the-purchase part is not what these tests are about: trained without it
ARGS = ["--no-after-purchase", "--test-days", "30", "--min-support", "0.02",
        "--min-confidence", "0.2",
        "--scoring", "smoothed"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry-failures")
    return root, root / "mlflow.db"


@pytest.fixture
def tracked(store, monkeypatch):
    root, db = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("BASKETRY_TRACK", "true")
    return root, db


def _train(root: Path, name: str, *extra: str):
    return runner.invoke(app, ["train", str(sample_path()), *ARGS, "--out", str(root / name),
                               "--overwrite", *extra])


def _refuse(db: Path, table: str, key: str | None = None) -> None:
    """Make the store fail every insert or update of ``table`` (of tag ``key`` only) with a
    database error (an operational error, as of a store that went away: not a constraint
    violation, which MLflow retries with back-off for run tags)."""
    when = f"WHEN NEW.key = '{key}'" if key else ""
    with sqlite3.connect(db) as connection:
        for event in ("INSERT", "UPDATE"):
            connection.execute(
                f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON {table} {when} "
                "BEGIN SELECT json('the store fails this write'); END")


def _accept(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TRIGGER IF EXISTS refuse_insert")
        connection.execute("DROP TRIGGER IF EXISTS refuse_update")


def _state(client, name: str) -> tuple[list[str], dict[str, str], str | None]:
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    registered = client.get_registered_model(name)
    aliases = {str(a): str(v) for a, v in registered.aliases.items()}
    return versions, aliases, (registered.tags or {}).get(HISTORY_TAG)


def _last_run(client):
    experiment = client.get_experiment_by_name("basketry")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=1)[0]


def _assert_failed_cleanly(result, client) -> None:
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "nothing was registered and no alias moved" in text
    assert "marked FAILED" in text
    run = _last_run(client)
    assert run.info.status == "FAILED"
    reason = run.data.tags["basketry.failure"]
    assert reason.startswith("RegistryError: registering") and "MlflowException" in reason


def test_first_registration_refused_at_the_alias_leaves_no_model(tracked):
    root, db = tracked
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    _refuse(db, "registered_model_aliases")
    try:
        result = _train(root, "fresh", "--registered-model", "fresh")
    finally:
        _accept(db)
    _assert_failed_cleanly(result, client)
    # the version existed for a moment; it is gone, and so is the model it created
    assert client.search_registered_models("name = 'fresh'") == []
    assert client.search_model_versions("name = 'fresh'") == []


#: Where the store refuses a write, in the order the registration makes them.
STEPS = [
    ("registered_model_aliases", None),            # challenger alias: right after the version
    ("registered_model_tags", HISTORY_TAG),         # after champion moved to the new version
    ("model_version_tags", "basketry.promotion"),   # the new version's promotion record
    ("tags", "basketry.registered_version"),        # the run's tags: the very last step
]


def test_registration_refused_half_way_changes_nothing(tracked):
    root, db = tracked
    uri = f"sqlite:///{db}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = _train(root, "first")
    assert first.exit_code == 0, first.output
    before = _state(client, "basketry")
    assert before[1]["champion"] == before[1]["challenger"] == before[0][-1]
    assert before[2] is not None
    for table, key in STEPS:
        _refuse(db, table, key)
        try:
            result = _train(root, "second")
        finally:
            _accept(db)
        _assert_failed_cleanly(result, client)
        assert _state(client, "basketry") == before, (table, key)
    # the store is fine again: the same training registers and is promoted
    again = _train(root, "third")
    assert again.exit_code == 0, again.output
    after = _state(client, "basketry")
    assert len(after[0]) == len(before[0]) + 1 and after[1]["champion"] == after[0][-1]
    assert after[1]["challenger"] == after[0][-1]
