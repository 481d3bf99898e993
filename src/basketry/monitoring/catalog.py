"""The models a replay can use, found by the version recorded in the events.

Events name the version that answered (the artifact's ``model_version``, a hash of its
content); replaying an order needs that artifact. A :class:`ModelCatalog` is a set of model
directories (given by the operator, or every version of the registry: the CLI gathers them),
indexed by the version in their manifests; a model is loaded, verified like any served model,
the first time a replay needs it, and kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from basketry.model import Model, ModelError, RuleScorer, load_model, read_manifest
from basketry.model.reference import TRACKING_URI_ENV, basketry_home


class Models(Protocol):
    """What a replay needs: the scorer of a version, and the offline figures recorded with it."""

    def scorer(self, version: str) -> RuleScorer | None: ...

    def has(self, version: str) -> bool: ...

    def offline(self, version: str) -> Mapping[str, Any] | None: ...


class ModelCatalog:
    """Model directories by version (see the module's docstring). Directories that are not
    models, or whose manifest does not read, are skipped and listed in :attr:`skipped`."""

    def __init__(self, directories: Iterable[str | os.PathLike[str]] = (),
                 models: Iterable[RuleScorer] = ()) -> None:
        self._paths: dict[str, Path] = {}
        self._manifests: dict[str, Mapping[str, Any]] = {}
        self._loaded: dict[str, RuleScorer] = {}
        self.skipped: list[str] = []
        for model in models:
            self._loaded[model.model_version] = model
            if isinstance(model, Model):
                self._manifests[model.model_version] = model.manifest
        for directory in directories:
            self.add(directory)

    def add(self, directory: str | os.PathLike[str]) -> str | None:
        """Index one model directory; its version, or ``None`` (skipped) when unreadable."""
        path = Path(directory)
        try:
            manifest = read_manifest(path)
        except (ModelError, OSError, ValueError) as exc:
            self.skipped.append(f"{path}: {str(exc).splitlines()[0] if str(exc) else exc}")
            return None
        version = str(manifest["model_version"])
        self._paths.setdefault(version, path)
        self._manifests.setdefault(version, manifest)
        return version

    @property
    def versions(self) -> list[str]:
        return sorted(set(self._paths) | set(self._loaded))

    def has(self, version: str) -> bool:
        """Whether a model of ``version`` is known (without loading it)."""
        return version in self._paths or version in self._loaded

    def scorer(self, version: str) -> RuleScorer | None:
        """The verified model of ``version`` (``None`` when no directory holds it); a
        directory that no longer verifies is a :class:`~basketry.model.ModelError`."""
        if version in self._loaded:
            return self._loaded[version]
        path = self._paths.get(version)
        if path is None:
            return None
        model = load_model(path)
        if model.model_version != version:  # the directory changed since it was indexed
            raise ModelError(f"{path}: holds model version {model.model_version}, not {version}")
        self._loaded[version] = model
        return model

    def offline(self, version: str) -> Mapping[str, Any] | None:
        """The offline evaluation recorded in the version's manifest (the model ranker's
        metrics and the query counts), or ``None``."""
        metrics = (self._manifests.get(version) or {}).get("metrics") or {}
        model = metrics.get("model")
        if not isinstance(model, Mapping):
            return None
        return {"metrics": dict(model), "queries": metrics.get("queries")}


#: How deep below a root model directories are looked for (an MLflow artifact tree puts them
#: at experiment/run/artifacts/model/data/NAME).
SEARCH_DEPTH = 8


def model_directories(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every directory holding a ``manifest.json`` below ``roots`` (at most
    ``SEARCH_DEPTH`` levels down; roots that do not exist are skipped): the registry's local
    artifacts, without asking the registry (and importing MLflow) for them."""
    found: list[Path] = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for directory, subdirs, files in os.walk(base):
            depth = len(Path(directory).relative_to(base).parts)
            if "manifest.json" in files:
                found.append(Path(directory))
                subdirs.clear()  # a model holds no other model
            elif depth >= SEARCH_DEPTH:
                subdirs.clear()
    return sorted(found)


def registry_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the local registry keeps its versions' artifacts: ``$BASKETRY_HOME/mlartifacts``
    (or beside a SQLite ``MLFLOW_TRACKING_URI``) and the serving side's download cache."""
    env = os.environ if environ is None else environ
    home = basketry_home(env)
    roots = [home / "mlartifacts", home / "registry-cache"]
    uri = env.get(TRACKING_URI_ENV, "")
    if uri.startswith("sqlite:///"):
        roots.append(Path(uri[len("sqlite:///"):]).expanduser().parent / "mlartifacts")
    return list(dict.fromkeys(roots))
