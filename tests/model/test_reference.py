"""The registry reference convention of the contract: parsing, the default store, the artifact
folder of a registered version; and both sides following it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from basketry.model.reference import (
    ModelRefError,
    RegistryRef,
    artifact_dir,
    basketry_home,
    is_registry_ref,
    local_path,
    parse_registry_ref,
    store_uri,
)


@pytest.mark.parametrize(("ref", "expected"), [
    ("models:/basketry@champion", RegistryRef("basketry", alias="champion")),
    ("models:/basketry/3", RegistryRef("basketry", version="3")),
    ("models:/shop-eu.v2@challenger/", RegistryRef("shop-eu.v2", alias="challenger")),
])
def test_references_parse_and_print_back(ref: str, expected: RegistryRef) -> None:
    assert is_registry_ref(ref)
    parsed = parse_registry_ref(ref)
    assert parsed == expected
    assert parse_registry_ref(str(parsed)) == parsed


@pytest.mark.parametrize("ref", ["models:/", "models:/basketry", "models:/@champion",
                                 "models:/basketry@", "models:/basketry/", "models/retail"])
def test_a_malformed_reference_is_a_model_ref_error(ref: str) -> None:
    with pytest.raises(ModelRefError, match="expected models:/NAME@ALIAS"):
        parse_registry_ref(ref)


def test_the_store_is_the_tracking_uri_else_sqlite_under_basketry_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BASKETRY_HOME", raising=False)
    assert basketry_home() == Path("~/.basketry").expanduser()
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    assert basketry_home() == tmp_path / "home"
    assert store_uri() == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').resolve()}"
    called = []
    assert store_uri(lambda: called.append(1) or tmp_path) == \
        f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://registry:5000")
    assert store_uri(lambda: called.append(2) or tmp_path) == "http://registry:5000"
    assert called == [1]  # the home is asked for only when the local store is the answer


def test_the_training_and_serving_sides_use_the_same_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from basketry.training.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    assert tracking_uri() == store_uri()
    assert (tmp_path / "home").is_dir()  # the training side creates the home it writes to


def test_local_paths_and_the_artifact_folder(tmp_path: Path) -> None:
    assert local_path(tmp_path.as_uri()) == tmp_path
    assert local_path("/srv/mlartifacts/1/abc/artifacts/model") == \
        Path("/srv/mlartifacts/1/abc/artifacts/model")
    assert local_path("s3://bucket/model") is None
    flavors = {"python_function": {"loader_module": "basketry.training.pyfunc",
                                   "data": "retail"}}
    assert artifact_dir(tmp_path, flavors) == tmp_path / "retail"
    assert artifact_dir(tmp_path, {"sklearn": {}}) is None
    assert artifact_dir(tmp_path, {"python_function": {"loader_module": "x"}}) is None


def test_the_contract_imports_no_mlflow() -> None:
    code = ("import sys, basketry.model.reference; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
