"""The registry reference: how a registered model is named and where its artifact lies.

Both sides follow this convention (the training side registers, the serving side resolves), so
it lives in the contract. Nothing here imports MLflow: the side that talks to the registry does.

- A reference is ``models:/NAME@ALIAS`` (``champion``, ``challenger``) or
  ``models:/NAME/VERSION``.
- The store is ``MLFLOW_TRACKING_URI`` when set, else the SQLite database
  ``sqlite:///$BASKETRY_HOME/mlflow.db`` (``BASKETRY_HOME`` default ``~/.basketry``).
- A registered version is an MLflow model whose ``python_function`` flavour's ``data`` folder
  is the basketry artifact (``docs/model-format.md``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from basketry._env import basketry_home  # the home, re-exported from its leaf
from basketry.model.errors import ModelError

#: What a registry reference starts with.
REGISTRY_PREFIX = "models:/"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: The local store's file under basketry's home.
STORE_FILE = "mlflow.db"
#: The MLflow flavour whose ``data`` entry names the artifact folder of a registered version.
PYFUNC_FLAVOR = "python_function"
PYFUNC_DATA = "data"


class ModelRefError(ModelError):
    """A model reference that cannot be resolved to a model directory."""


@dataclass(frozen=True)
class RegistryRef:
    """A parsed registry reference: a name with either an alias or a version."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{REGISTRY_PREFIX}{self.name}@{self.alias}"
        return f"{REGISTRY_PREFIX}{self.name}/{self.version}"


def is_registry_ref(ref: str) -> bool:
    """Whether ``ref`` names a registered model rather than a directory."""
    return ref.startswith(REGISTRY_PREFIX)


def parse_registry_ref(ref: str) -> RegistryRef:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> :class:`RegistryRef`;
    :class:`ModelRefError` for anything else."""
    rest = ref[len(REGISTRY_PREFIX):].strip("/") if is_registry_ref(ref) else ""
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        version = None
    else:
        name, _, version = rest.rpartition("/")
        alias = None
    if not name or not (alias or version):
        raise ModelRefError(f"{ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return RegistryRef(name, alias=alias, version=version)


def store_uri(home: Callable[[], Path] = basketry_home) -> str:
    """The tracking and registry store: ``MLFLOW_TRACKING_URI``, else
    ``sqlite:///HOME/mlflow.db``. ``home`` is called only when the local store is the answer
    (the training side passes one that creates the folder)."""
    if os.environ.get(TRACKING_URI_ENV):
        return os.environ[TRACKING_URI_ENV]
    return f"sqlite:///{(home() / STORE_FILE).resolve()}"


def local_path(uri: str) -> Path | None:
    """The local directory an artifact URI names (``file:`` or a plain path), else ``None``
    (a remote artifact store: the caller downloads it)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):  # C:\...
        return Path(uri)
    return None


def artifact_dir(mlmodel_dir: Path, flavors: Mapping[str, Any]) -> Path | None:
    """The basketry artifact inside a registered version's MLflow model (the folder holding its
    ``MLmodel``, whose ``flavors`` are given), or ``None`` when it is not a basketry model."""
    data = (flavors.get(PYFUNC_FLAVOR) or {}).get(PYFUNC_DATA)
    return mlmodel_dir / data if data else None
