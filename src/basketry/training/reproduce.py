"""What a training run records to be trained again, and ``basketry models reproduce``.

A tracked ``train`` snapshots the baskets it read into the data store
(:mod:`basketry.training.snapshots`) and records, in its MLflow run: the snapshot as a dataset
input (name ``baskets``, digest, source = the snapshot's URL), the tags ``basketry.data.snapshot``
and ``basketry.data.digest``, and ``reproduce.json``, the snapshot with the exact parameters of
the training (mining, split, seed, the scoring asked for or ``null`` when tuned, the evaluation
protocol). This is done after the model is saved and before it is registered: a failure here
ends the run FAILED with nothing registered, and the saved model stays where it was written.

:func:`reproduce` reads that record for a registered version, checks the snapshot's bytes and
fingerprint, trains again with the recorded parameters and compares the new artifact with the
registered one file by file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basketry.training.snapshots import (
    Snapshot,
    SnapshotError,
    load_snapshot,
    snapshot_url,
    write_snapshot,
)

if TYPE_CHECKING:
    from basketry.data import Baskets
    from basketry.training.tracking import TrainingRun

RECORD = "reproduce.json"
RECORD_FORMAT = "basketry-reproduce"
SNAPSHOT_TAG = "basketry.data.snapshot"
DIGEST_TAG = "basketry.data.digest"
#: Manifest fields that differ between two writings of the same model.
UNCOMPARED = ("created_at",)


def _plain(name: str, value: Any) -> Any:
    """A parameter as JSON (item sets as sorted lists), or ``SnapshotError``."""
    if isinstance(value, set | frozenset | tuple):
        value = sorted(str(v) for v in value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise SnapshotError(f"the training parameter {name}={value!r} cannot be recorded "
                            "for reproduction (not a JSON value)") from None
    return value


def training_record(snapshot: Snapshot, result: Any, mining: Mapping[str, Any], *,
                    test_days: float | None, test_fraction: float | None, seed: int,
                    scoring: dict[str, Any] | None,
                    after_purchase: tuple[bool, float] = (True, 30.0)) -> dict[str, Any]:
    """``reproduce.json``: the snapshot and what ``train_and_evaluate`` was given."""
    protocol = result.report.get("protocol", {})
    return {
        "format": RECORD_FORMAT, "format_version": 1,
        "snapshot": snapshot.as_dict(),
        "training": {
            "mining": {k: _plain(k, v) for k, v in mining.items()},
            "test_days": test_days, "test_fraction": test_fraction, "seed": seed,
            "scoring": scoring, "tune": True,
            "max_queries": protocol.get("max_queries"),
            "max_hidden_per_basket": protocol.get("max_hidden_per_basket"),
            "after_purchase": after_purchase[0], "horizon_days": after_purchase[1],
        },
    }


def record_training_data(run: TrainingRun, baskets: Baskets, result: Any,
                         mining: Mapping[str, Any], *, model_dir: Path | None,
                         test_days: float | None, test_fraction: float | None, seed: int,
                         scoring: dict[str, Any] | None,
                         store: str | os.PathLike[str] | None = None,
                         after_purchase: tuple[bool, float] = (True, 30.0)) -> Snapshot:
    """Snapshot ``baskets`` into the data store and record it and the training parameters in
    ``run`` (see the module's description). ``SnapshotError`` (one line, naming the saved
    model ``model_dir`` when there is one to keep) when that fails."""
    try:
        snapshot = write_snapshot(baskets, store)
        record = training_record(snapshot, result, mining, test_days=test_days,
                                 test_fraction=test_fraction, seed=seed, scoring=scoring,
                                 after_purchase=after_purchase)
    except SnapshotError as exc:
        kept = "" if model_dir is None else f"the model is saved at {model_dir}, "
        raise SnapshotError(f"{exc}; {kept}nothing was registered") from None
    run.log_data_input("baskets", snapshot.digest, snapshot.url, snapshot.as_dict())
    run.set_tags({SNAPSHOT_TAG: snapshot.url, DIGEST_TAG: snapshot.digest})
    run.log_json(record, RECORD)
    return snapshot


# ---- reproducing a registered version -------------------------------------------------------
@dataclass(frozen=True)
class FileCheck:
    """One file of the artifact: its checksum in the registered and in the reproduced model
    (``None`` when that model has no such file)."""

    name: str
    registered: str | None
    reproduced: str | None

    @property
    def same(self) -> bool:
        return self.registered is not None and self.registered == self.reproduced


@dataclass
class Reproduction:
    """What :func:`reproduce` did: the version, its run and snapshot, where the new model is
    (``None`` when it was written to a temporary directory, now gone) and the file checks."""

    name: str
    version: str
    run_id: str
    snapshot: Snapshot
    model_dir: Path | None
    files: list[FileCheck] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(check.same for check in self.files)


def _version(c: Any, name: str, version: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    from basketry.training.registry import RegistryError
    from basketry.training.tracking import redact

    try:
        c.get_registered_model(name)
    except MlflowException:
        raise RegistryError(f"no registered model {name!r} in {redact(uri)}") from None
    try:
        return c.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"{name!r} has no version {version}") from None


def _record(c: Any, run_id: str | None, what: str, tmp: Path) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    if not run_id:
        raise SnapshotError(f"{what} has no recorded training data (it was registered "
                            "without an MLflow run)")
    try:
        path = c.download_artifacts(run_id, RECORD, str(tmp))
        record = json.loads(Path(path).read_text())
    except (MlflowException, OSError, ValueError):
        raise SnapshotError(f"{what} has no recorded training data (no {RECORD} in its run "
                            f"{run_id}: trained before data snapshots, or not by basketry "
                            "train)") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT \
            or record.get("format_version") != 1 or not isinstance(record.get("training"), dict):
        raise SnapshotError(f"{what}: {RECORD} of run {run_id} is not a record this basketry "
                            "reads")
    return record


def _manifest_digest(manifest: dict[str, Any]) -> str:
    import hashlib

    kept = {k: v for k, v in manifest.items() if k not in UNCOMPARED}
    return "sha256:" + hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def compare_models(registered: Path, reproduced: Path) -> list[FileCheck]:
    """Every data file's SHA-256 in both models (as their manifests list them, which loading
    verifies), then the manifest itself without ``created_at``."""
    from basketry.model import read_manifest

    old, new = read_manifest(registered), read_manifest(reproduced)
    names = sorted(set(old.get("files", {})) | set(new.get("files", {})))
    checks = [FileCheck(n, old.get("files", {}).get(n, {}).get("sha256"),
                        new.get("files", {}).get(n, {}).get("sha256")) for n in names]
    checks.append(FileCheck("manifest.json", _manifest_digest(old), _manifest_digest(new)))
    return checks


def reproduce(version: str, *, name: str = "basketry", out: str | os.PathLike[str] | None = None,
              overwrite: bool = False, data_store: str | os.PathLike[str] | None = None,
              uri: str | None = None, progress: Callable[[str], None] | None = None
              ) -> Reproduction:
    """Train registered ``version`` of ``name`` again from its recorded snapshot and
    parameters, into ``out`` (kept; a model there is replaced with ``overwrite``) or a temporary
    directory (removed), and compare the new artifact with the registered one. With
    ``data_store``, the snapshot is looked for there (under its fingerprint and digest) instead
    of at the URL recorded (a store moved, or a teammate's local folder). Nothing is
    written when the version, its record or its snapshot cannot be had (``RegistryError``,
    ``SnapshotError``: one line each)."""
    from basketry.model import load_model
    from basketry.training.pipeline import save_trained, train_and_evaluate
    from basketry.training.registry import check_model_name, version_model_dir
    from basketry.training.tracking import client, tracking_uri

    say = progress or (lambda _message: None)
    check_model_name(name)
    uri = tracking_uri(uri)
    c = client(uri, create=False)
    mv = _version(c, name, version, uri)
    what = f"version {version} of {name!r}"
    with tempfile.TemporaryDirectory(prefix="basketry-reproduce-") as tmpdir:
        tmp = Path(tmpdir)
        record = _record(c, mv.run_id, what, tmp)
        snapshot = Snapshot.from_dict(record.get("snapshot") or {})
        if data_store is not None:
            snapshot = replace(snapshot, url=snapshot_url(data_store, snapshot.fingerprint,
                                                          snapshot.digest))
        say(f"reading the training data {snapshot.url}")
        baskets = load_snapshot(snapshot, what=f"the training data of {what}")
        registered = version_model_dir(c, name, str(version), cache=tmp / "registered")
        load_model(registered)  # the registered artifact verifies before it is compared
        params = record["training"]
        say("training again with the recorded parameters")
        result = train_and_evaluate(
            baskets, dict(params["mining"]), test_days=params.get("test_days"),
            test_fraction=params.get("test_fraction"), seed=int(params.get("seed") or 0),
            scoring=params.get("scoring"), tune=bool(params.get("tune", True)),
            max_queries=params.get("max_queries"),
            max_hidden_per_basket=params.get("max_hidden_per_basket"), progress=say,
            # records made before the sequential part: trained without it
            after_purchase=bool(params.get("after_purchase", False)),
            horizon_days=params.get("horizon_days"))
        target = Path(out) if out is not None else tmp / "reproduced"
        path = save_trained(target, result, overwrite=overwrite)
        files = compare_models(registered, path)
        return Reproduction(name=name, version=str(version), run_id=mv.run_id,
                            snapshot=snapshot, model_dir=path if out is not None else None,
                            files=files)
