"""The watcher's retry rule: a model version that failed to load is retried once the files it
read change (a copy into the directory completed), never while they stay the same.

Real models, real loads (no mocks): ``ModelHolder`` directly, a registry reference with a real
MLflow store, and the real server with ``watch``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from basketry.serving.state import ModelHolder
from tests.serving.conftest import write_version
from tests.serving.test_server import start

DATA_FILES = ("items.parquet", "rules.parquet")
Copy = Callable[[Path, Path], object]


@pytest.fixture
def m1_m2(tmp_path: Path) -> tuple[Path, str, Path, str]:
    m1, m2 = tmp_path / "m1", tmp_path / "m2"
    return m1, write_version(m1, "v1"), m2, write_version(m2, "v2")


def half_copy(source: Path, target: Path, copy: Copy = shutil.copy) -> None:
    """What ``cp source/* target/`` leaves when a check comes after the manifest only."""
    copy(source / "manifest.json", target / "manifest.json")


def finish_copy(source: Path, target: Path, copy: Copy = shutil.copy) -> None:
    for name in DATA_FILES:
        copy(source / name, target / name)


def reload(holder: ModelHolder) -> None:
    asyncio.run(holder.reload(force=False))


# shutil.copy2 keeps the source's mtimes, as `cp -p` and `rsync -a` do
@pytest.mark.parametrize("copy", [shutil.copy, shutil.copy2], ids=["cp", "cp-p"])
def test_a_half_copied_version_is_retried_once_the_copy_completes(
        tmp_path: Path, m1_m2: tuple[Path, str, Path, str], copy: Copy,
        caplog: pytest.LogCaptureFixture) -> None:
    m1, v1, m2, v2 = m1_m2
    served = tmp_path / "served"
    shutil.copytree(m1, served)
    holder = ModelHolder(str(served), None)
    assert holder.load_initial().ok and holder.current.version == v1
    assert not holder.needs_reload()

    half_copy(m2, served, copy)  # m2's manifest over m1's data files
    assert holder.needs_reload()
    reload(holder)
    failed = holder.last_reload
    assert failed is not None and not failed.ok and failed.model_version == v2
    assert "in the manifest" in (failed.error or "")  # a size or SHA-256 mismatch
    assert holder.current.version == v1  # the old model keeps serving

    # an unchanged failure is not retried (nor logged) at the next ticks
    logged = sum(r.getMessage().startswith("model load refused") for r in caplog.records)
    assert logged == 1
    for _ in range(3):
        assert not holder.needs_reload()
        reload(holder)
    assert holder.last_reload is failed
    assert sum(r.getMessage().startswith("model load refused") for r in caplog.records) == 1

    finish_copy(m2, served, copy)
    assert holder.needs_reload()
    reload(holder)
    assert holder.last_reload.ok and holder.last_reload.changed
    assert holder.current.version == v2
    assert not holder.needs_reload()


def test_a_copy_that_stops_half_way_is_retried_at_each_step(
        tmp_path: Path, m1_m2: tuple[Path, str, Path, str]) -> None:
    """Each file that lands is a change: retried, refused again until the last one lands."""
    m1, v1, m2, v2 = m1_m2
    served = tmp_path / "served"
    shutil.copytree(m1, served)
    holder = ModelHolder(str(served), None)
    assert holder.load_initial().ok
    half_copy(m2, served)
    reload(holder)
    assert not holder.last_reload.ok
    # m2 has one rule more: its rules file differs in size
    assert (m1 / "rules.parquet").stat().st_size != (m2 / "rules.parquet").stat().st_size
    shutil.copy(m2 / "rules.parquet", served / "rules.parquet")  # items.parquet still m1's
    assert holder.needs_reload()
    reload(holder)
    assert not holder.last_reload.ok and holder.current.version == v1
    assert not holder.needs_reload()
    shutil.copy(m2 / "items.parquet", served / "items.parquet")
    assert holder.needs_reload()
    reload(holder)
    assert holder.last_reload.ok and holder.current.version == v2


def test_an_initial_load_that_failed_is_retried_once_the_copy_completes(
        tmp_path: Path, m1_m2: tuple[Path, str, Path, str]) -> None:
    m1, _, m2, v2 = m1_m2
    served = tmp_path / "served"
    shutil.copytree(m1, served)
    half_copy(m2, served)
    holder = ModelHolder(str(served), None)
    assert not holder.load_initial().ok and holder.current is None
    assert not holder.needs_reload()
    finish_copy(m2, served)
    assert holder.needs_reload()
    reload(holder)
    assert holder.current is not None and holder.current.version == v2


def test_an_unreadable_catalogue_is_retried_once_it_changes(model_dir: Path,
                                                            tmp_path: Path) -> None:
    catalogue = tmp_path / "unavailable.txt"
    catalogue.write_text("e\n")
    holder = ModelHolder(str(model_dir), str(catalogue))
    assert holder.load_initial().ok and holder.current.unavailable == {"e"}
    catalogue.write_bytes(b"\xff\xfe not UTF-8\n")
    assert holder.needs_reload()
    reload(holder)
    assert not holder.last_reload.ok and "not UTF-8" in (holder.last_reload.error or "")
    assert not holder.needs_reload()  # not at every tick
    catalogue.write_text("c\n")
    assert holder.needs_reload()
    reload(holder)
    assert holder.last_reload.ok and holder.current.unavailable == {"c"}


def test_a_registry_reference_to_a_half_copied_version_is_retried(
        tmp_path: Path, m1_m2: tuple[Path, str, Path, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``models:/NAME@ALIAS`` resolves to a directory; the same rule applies to it."""
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    m1, v1, m2, v2 = m1_m2
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("shop")

    def register(artifact: Path) -> str:
        # an MLflow model directory whose python_function data is the basketry model
        (artifact / "MLmodel").write_text(
            "flavors:\n  python_function:\n    loader_module: basketry.training.pyfunc\n"
            "    data: model\n")
        return str(client.create_model_version("shop", source=str(artifact)).version)

    shutil.copytree(m1, tmp_path / "art1" / "model")
    client.set_registered_model_alias("shop", "champion", register(tmp_path / "art1"))
    holder = ModelHolder("models:/shop@champion", None)
    assert holder.load_initial().ok and holder.current.version == v1

    served = tmp_path / "art2" / "model"  # version 2's artifact, still being copied
    shutil.copytree(m1, served)
    half_copy(m2, served)
    client.set_registered_model_alias("shop", "champion", register(tmp_path / "art2"))
    assert holder.needs_reload()
    reload(holder)
    assert not holder.last_reload.ok and holder.last_reload.model_version == v2
    assert not holder.needs_reload()
    finish_copy(m2, served)
    assert holder.needs_reload()
    reload(holder)
    assert holder.last_reload.ok and holder.current.version == v2
    assert holder.current.path == served.resolve()


def test_the_server_watcher_picks_up_a_version_copied_in_place_non_atomically(
        tmp_path: Path, m1_m2: tuple[Path, str, Path, str]) -> None:
    m1, v1, m2, v2 = m1_m2
    served = tmp_path / "served"
    shutil.copytree(m1, served)
    for running in start(tmp_path, served, watch=0.2):
        http = running.client()
        half_copy(m2, served)
        deadline = time.monotonic() + 10
        while (last := http.get("/readyz").json()["last_reload"])["ok"]:
            assert time.monotonic() < deadline, "the watcher did not try the new version"
            time.sleep(0.1)
        assert last["model_version"] == v2 and "in the manifest" in last["error"]
        time.sleep(1)  # five ticks: the unchanged failure is neither retried nor logged again
        assert http.get("/v1/model").json()["model_version"] == v1
        events = [json.loads(line).get("event") for line in running.log_lines()
                  if line.startswith("{")]
        assert events.count("model_load_failed") == 1
        finish_copy(m2, served)
        deadline = time.monotonic() + 10
        while http.get("/v1/model").json()["model_version"] != v2:
            assert time.monotonic() < deadline, "the watcher never retried the completed copy"
            time.sleep(0.1)
        assert http.get("/readyz").json()["last_reload"]["ok"] is True
