"""A tracked train records the data it saw and how it trained; `reproduce` trains a registered
version again from that record and gets the same artifact. Real MLflow (SQLite store in a
temporary directory), real data store, the bundled sample; no mocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.data import read_baskets, sample_path  # noqa: E402
from basketry.model import load_model, read_manifest  # noqa: E402
from basketry.training import train_workflow, tune_workflow  # noqa: E402
from basketry.training.registry import RegistryError  # noqa: E402
from basketry.training.reproduce import RECORD, reproduce  # noqa: E402
from basketry.training.snapshots import SnapshotError  # noqa: E402

MINING = {"min_support": 0.02, "min_confidence": 0.2, "exclude": {"23355"}}


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _client(uri: str):
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _local(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _trained(tmp_path: Path, data_store: Path, **kwargs):
    return train_workflow(sample_path(), tmp_path / "model", mining=MINING, track=True,
                          register=True, data_store=data_store, **kwargs)


def test_train_records_its_data_and_reproduce_gives_the_same_checksums(tmp_path, store):
    data_store = tmp_path / "data"
    # the tuned scoring (no --scoring) and the time split: every recorded parameter matters
    outcome = _trained(tmp_path, data_store, test_days=30)
    version = outcome.registration.version
    run = _client(store).get_run(outcome.run.run_id)

    url, digest = run.data.tags["basketry.data.snapshot"], run.data.tags["basketry.data.digest"]
    assert _local(url).is_file() and _local(url).parent.parent == data_store.resolve()
    (entry,) = run.inputs.dataset_inputs
    assert entry.dataset.name == "baskets"
    assert digest.startswith("sha256:" + entry.dataset.digest) and len(entry.dataset.digest) == 32
    assert json.loads(entry.dataset.source) == {"uri": url}
    assert json.loads(entry.dataset.profile)["digest"] == digest
    record = json.loads(Path(_client(store).download_artifacts(
        run.info.run_id, RECORD, str(tmp_path))).read_text())
    assert record["snapshot"]["url"] == url and record["training"]["seed"] == 0
    assert record["training"]["mining"]["exclude"] == ["23355"]
    assert record["training"]["test_days"] == 30 and record["training"]["scoring"] is None

    again = reproduce(version, out=tmp_path / "again")
    assert again.identical and again.run_id == run.info.run_id
    assert [(f.name, f.same) for f in again.files] == [
        ("items.parquet", True), ("repeat_items.parquet", True), ("rules.parquet", True),
        ("sequential_rules.parquet", True), ("manifest.json", True)]
    assert read_manifest(tmp_path / "again")["model_version"] == \
        read_manifest(outcome.model_dir)["model_version"]
    assert load_model(tmp_path / "again")

    # without --out, the reproduced model goes to a temporary directory, then away
    quiet = reproduce(version)
    assert quiet.identical and quiet.model_dir is None


def test_a_random_split_reproduces_too_and_the_same_data_is_snapshotted_once(tmp_path, store):
    data_store = tmp_path / "data"
    first = _trained(tmp_path, data_store, test_fraction=0.2, seed=7, scoring="confidence")
    second = train_workflow(sample_path(), tmp_path / "second", mining=MINING, track=True,
                            register=True, data_store=data_store, test_days=30)
    assert len(list(data_store.rglob("*.parquet"))) == 1  # one snapshot, found the second time
    assert not list(data_store.rglob("*.tmp"))
    assert reproduce(first.registration.version).identical
    assert reproduce(second.registration.version).identical


def test_a_different_artifact_is_reported_file_by_file(tmp_path, store):
    outcome = _trained(tmp_path, tmp_path / "data", test_days=30, scoring="smoothed")
    # the record edited: the same data mined with another confidence gives other rules
    artifacts = _local(outcome.run.artifact_uri)
    record = json.loads((artifacts / RECORD).read_text())
    record["training"]["mining"]["min_confidence"] = 0.3
    (artifacts / RECORD).write_text(json.dumps(record))
    result = reproduce(outcome.registration.version)
    assert not result.identical
    checks = {f.name: f.same for f in result.files}
    assert checks == {"items.parquet": True, "rules.parquet": False, "manifest.json": False,
                      "sequential_rules.parquet": True, "repeat_items.parquet": True}


def test_a_missing_or_changed_snapshot_or_an_unknown_version_is_one_line(tmp_path, store):
    outcome = _trained(tmp_path, tmp_path / "data", test_days=30, scoring="smoothed")
    version = outcome.registration.version
    with pytest.raises(RegistryError, match="has no version 9"):
        reproduce("9", out=tmp_path / "out")
    with pytest.raises(RegistryError, match="no registered model 'other'"):
        reproduce(version, name="other", out=tmp_path / "out")

    snapshot = _local(_client(store).get_run(outcome.run.run_id)
                      .data.tags["basketry.data.snapshot"])
    kept = tmp_path / "kept.parquet"
    shutil.copyfile(snapshot, kept)
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="has changed since it was recorded") as changed:
        reproduce(version, out=tmp_path / "out")
    assert "\n" not in str(changed.value)

    snapshot.unlink()
    with pytest.raises(SnapshotError, match="is missing: no snapshot at") as missing:
        reproduce(version, out=tmp_path / "out")
    assert "\n" not in str(missing.value)
    assert not (tmp_path / "out").exists()

    # the store moved: found under its fingerprint and digest in the store named
    moved = tmp_path / "moved" / snapshot.parent.name / snapshot.name
    moved.parent.mkdir(parents=True)
    shutil.copyfile(kept, moved)
    assert reproduce(version, data_store=tmp_path / "moved").identical
    shutil.copyfile(kept, snapshot)  # put back: reproducible again
    assert reproduce(version).identical


def test_a_version_without_a_record_says_so(tmp_path, store):
    outcome = _trained(tmp_path, tmp_path / "data", test_days=30, scoring="smoothed")
    (_local(outcome.run.artifact_uri) / RECORD).unlink()
    with pytest.raises(SnapshotError, match="has no recorded training data"):
        reproduce(outcome.registration.version, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_snapshot_registers_nothing_and_keeps_the_model(tmp_path, store):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data store should be")
    with pytest.raises(SnapshotError, match="cannot be written to the data store") as failed:
        _trained(tmp_path, blocked, test_days=30, scoring="smoothed")
    assert "the model is saved at" in str(failed.value)
    assert load_model(tmp_path / "model")  # the trained model is not lost
    c = _client(store)
    assert c.search_registered_models() == [] or not c.search_model_versions("name='basketry'")
    (run,) = c.search_runs([c.get_experiment_by_name("basketry").experiment_id])
    assert run.info.status == "FAILED"
    assert "data store" in run.data.tags["basketry.failure"]


def test_baskets_given_in_python_are_snapshotted_as_given(tmp_path, store):
    baskets = read_baskets(sample_path())
    outcome = train_workflow(baskets, tmp_path / "model", mining=MINING, track=True,
                             register=True, data_store=tmp_path / "data", test_days=30,
                             scoring="lift")
    assert reproduce(outcome.registration.version).identical


def test_the_best_of_a_sweep_reproduces_as_train_would_make_it(tmp_path, store):
    outcome = tune_workflow(sample_path(), ["min_confidence=0.2,0.3", "scoring=tuned,lift"],
                            mining=MINING, test_days=30, track=True, register=True,
                            data_store=tmp_path / "data")
    assert outcome.model_dir is None  # registered from a temporary directory
    assert reproduce(outcome.registration.version).identical


def test_a_store_at_a_url_is_recorded_and_read_back(tmp_path, store):
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://basketry-reproduce-{tmp_path.name}"
    outcome = _trained(tmp_path, root, test_days=30, scoring="smoothed")
    url = _client(store).get_run(outcome.run.run_id).data.tags["basketry.data.snapshot"]
    assert url.startswith(root + "/") and fsspec.filesystem("memory").exists(url)
    assert reproduce(outcome.registration.version).identical
