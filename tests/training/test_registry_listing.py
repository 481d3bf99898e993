"""``basketry models list`` reads the local SQLite store without MLflow: the same rows as MLflow's
client gives (aliases, tags, the run's latest metrics and status, deleted versions left out,
other models ignored), and MLflow's path, with its messages, for anything else."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.training import registry_sqlite
from basketry.training.registry import (
    RegistryError,
    list_versions,
    list_versions_mlflow,
)
from basketry.training.tracking import client

METRICS = {"hit_rate@10": "model.hit_rate_at_10",
           "popularity hit_rate@10": "popularity.hit_rate_at_10"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    c = client(uri)
    experiment = c.create_experiment("e", artifact_location=(root / "art").as_uri())
    run = c.create_run(experiment)
    run_id = run.info.run_id
    c.log_metric(run_id, "model.hit_rate_at_10", 0.1, step=0)
    c.log_metric(run_id, "model.hit_rate_at_10", 0.2, step=1)  # the latest is listed
    c.log_metric(run_id, "popularity.hit_rate_at_10", 0.05)
    c.log_metric(run_id, "model.ndcg_at_10", 0.3)
    c.set_terminated(run_id, "FINISHED")
    for name in ("shop", "other"):
        c.create_registered_model(name)
    source = f"{run.info.artifact_uri}/model"
    c.create_model_version("shop", source, run_id=run_id,
                           tags={"basketry.gate.passed": "true", "basketry.gate": "why"})
    c.create_model_version("shop", source, run_id=run_id, tags={"basketry.forced": "true"})
    c.create_model_version("shop", source, run_id=run_id)
    c.delete_model_version("shop", "3")
    c.create_model_version("other", source, run_id=run_id)
    c.set_registered_model_alias("shop", "champion", "2")
    c.set_registered_model_alias("shop", "challenger", "2")
    c.set_registered_model_alias("shop", "previous", "1")
    return uri


def test_the_sqlite_rows_are_mlflows(store: str) -> None:
    fast = registry_sqlite.list_versions(store, "shop", METRICS)
    assert fast is not None
    assert fast == list_versions_mlflow(name="shop", uri=store)
    assert [r["version"] for r in fast] == ["2", "1"]
    assert fast[0]["aliases"] == ["challenger", "champion"] and fast[1]["aliases"] == ["previous"]
    assert fast[1]["hit_rate@10"] == 0.2 and fast[1]["popularity hit_rate@10"] == 0.05
    assert fast[1]["run_status"] == "FINISHED"
    assert fast[1]["tags"] == {"basketry.gate.passed": "true", "basketry.gate": "why"}
    assert list_versions(name="shop", uri=store) == fast


def test_anything_else_goes_through_mlflow(store: str, tmp_path) -> None:
    assert registry_sqlite.list_versions(store, "nobody", METRICS) is None
    with pytest.raises(RegistryError, match="no registered model 'nobody'"):
        list_versions(name="nobody", uri=store)
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert registry_sqlite.list_versions(missing, "shop", METRICS) is None
    assert registry_sqlite.list_versions("http://127.0.0.1:1", "shop", METRICS) is None
    (tmp_path / "other.db").write_bytes(b"not a database")
    assert registry_sqlite.list_versions(f"sqlite:///{tmp_path / 'other.db'}", "shop",
                                         METRICS) is None
