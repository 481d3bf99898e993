"""The model being served, its catalogue of unavailable items, and atomic hot reload.

A request reads :attr:`ModelHolder.current` once and uses only that snapshot, so it is answered
entirely by one model version even when a reload swaps the reference meanwhile. Loading happens
off the event loop; a model that fails to load or verify is refused and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from basketry.model import Model, ModelError, load_model, read_manifest
from basketry.model.reference import (
    ModelRefError,
    artifact_dir,
    basketry_home,
    is_registry_ref,
    local_path,
    parse_registry_ref,
    store_uri,
)

log = logging.getLogger("basketry.serving")


def resolve_model_ref(ref: str) -> Path:
    """The model directory a reference points to.

    A reference is a directory path (``~`` expanded) or a registry reference
    ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``, resolved with the MLflow client (an
    optional dependency) against the store the contract names (:mod:`basketry.model.reference`:
    ``MLFLOW_TRACKING_URI``, else ``sqlite:///$BASKETRY_HOME/mlflow.db``). The watcher resolves
    the reference again at every check, which is how serving follows a promotion or a rollback.
    """
    if not ref or not ref.strip():
        raise ModelRefError("no model reference given (set BASKETRY_MODEL or --model)")
    if is_registry_ref(ref):
        return _resolve_registry_ref(ref)
    path = Path(ref).expanduser()
    if not path.is_dir():
        raise ModelRefError(f"no model directory at {path}")
    return path.resolve()


def _resolve_registry_ref(ref: str) -> Path:
    parsed = parse_registry_ref(ref)
    name, version = parsed.name, parsed.version
    try:
        import mlflow
        import mlflow.artifacts
        import yaml  # MLflow's own dependency
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ModelRefError(
            f"{ref!r}: registry references need MLflow: pip install 'basketry[mlflow]'"
        ) from None
    uri = store_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ModelRefError(f"{ref!r}: no model registry at {uri}")
    try:
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        if parsed.alias is not None:
            version = str(client.get_model_version_by_alias(name, parsed.alias).version)
        download = client.get_model_version_download_uri(name, version)
        local = local_path(download)
        if local is None or not local.is_dir():
            # a remote artifact store: one local copy per version, reused
            target = basketry_home() / "registry-cache" / name / str(version)
            found = next(target.rglob("MLmodel"), None) if target.is_dir() else None
            if found is None:
                target.mkdir(parents=True, exist_ok=True)
                mlflow.artifacts.download_artifacts(artifact_uri=download, dst_path=str(target))
                found = next(target.rglob("MLmodel"), None)
            if found is None:
                raise ModelRefError(f"{ref!r}: version {version} has no MLmodel")
            local = found.parent
        mlmodel = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))
    except MlflowException as exc:
        raise ModelRefError(f"{ref!r}: {exc.message}") from None
    except OSError as exc:
        raise ModelRefError(f"{ref!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ModelRefError(f"{ref!r}: version {version}'s MLmodel is not YAML: "
                            f"{' '.join(str(exc).split())}") from None
    # the MLmodel file read as the YAML it is: MLflow's reader (mlflow.models.Model.load)
    # imports pandas for the signature, which a serving install (basketry[serve,mlflow]) lacks
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    data = artifact_dir(local, flavors) if isinstance(flavors, dict) else None
    if data is None or not data.is_dir():
        raise ModelRefError(f"{ref!r}: version {version} is not a basketry model")
    return data.resolve()


def read_catalogue(path: str | os.PathLike[str]) -> frozenset[str]:
    """Unavailable or banned items: one item per line, blank lines and ``#`` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read the catalogue file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"the catalogue file {path} is not UTF-8: {exc}") from exc
    items = set()
    for line in text.splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            items.add(item)
    return frozenset(items)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Snapshot:
    """One model version with its catalogue: what a request is answered with, as a whole."""

    model: Model
    reference: str
    path: Path
    unavailable: frozenset[str]
    #: The ids of the unavailable items the model knows: scoring never recommends them
    #: (resolved once per load, not per request).
    banned: np.ndarray = field(compare=False, repr=False)
    catalogue_stamp: tuple[int, int] | None
    loaded_at: str = field(default_factory=_now)
    #: The serving side's cache of this model's answers encoded as JSON (see serving.encoding).
    encoded: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> str:
        return self.model.version


#: What a load read, as :func:`_inputs` stamps it: the model directory, the manifest's model
#: version, a stamp of the directory's files and one of the catalogue file.
Inputs = tuple[Path, str | None, tuple[tuple[str, int, int, int, int], ...],
               tuple[int, int] | None]


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    at: str
    reference: str
    model_version: str | None = None
    previous_version: str | None = None
    changed: bool = False
    error: str | None = None
    #: For a failed load: what it read, stamped before loading. The watcher retries the load
    #: only once these change (see :meth:`ModelHolder.needs_reload`).
    inputs: Inputs | None = field(default=None, compare=False, repr=False)


def _stamp(path: str | None) -> tuple[int, int] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def _dir_stamp(path: Path) -> tuple[tuple[str, int, int, int, int], ...]:
    """``(name, inode, size, mtime_ns, ctime_ns)`` of each entry of a model directory, sorted.

    One ``scandir`` and a ``stat`` per entry (a model has three files). It changes as a copy
    into the directory progresses: sizes and mtimes for ``cp``; the inode and ctime also when
    a copy keeps the source's mtimes (``cp -p``, ``rsync -a``, which renames a temporary file).
    """
    entries = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                try:
                    st = entry.stat()
                except OSError:  # removed meanwhile
                    continue
                entries.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns,
                                st.st_ctime_ns))
    except OSError:
        return ()
    return tuple(sorted(entries))


def _inputs(path: Path, version: str | None, catalogue: str | None) -> Inputs:
    return (path, version, _dir_stamp(path), _stamp(catalogue))


def _manifest_version(path: Path) -> str | None:
    try:
        return str(read_manifest(path)["model_version"])
    except ModelError:
        return None


def load_snapshot(reference: str, catalogue: str | None, *, verify: bool = True,
                  path: Path | None = None) -> Snapshot:
    """Resolve, load and verify a model and read the catalogue; ``ModelError`` on any problem.

    ``path``: the directory ``reference`` resolves to, when the caller resolved it already.
    """
    if path is None:
        path = resolve_model_ref(reference)
    stamp = _stamp(catalogue)
    unavailable = read_catalogue(catalogue) if catalogue else frozenset()
    model = load_model(path, verify=verify)
    banned = model.ids_of(unavailable)
    # warm up before the swap: the first call of compiled scoring code pays its (cached) load
    model.rank(model.items[:3], k=3, banned=banned)
    return Snapshot(model=model, reference=reference, path=path, unavailable=unavailable,
                    banned=banned, catalogue_stamp=stamp)


class ModelHolder:
    """Holds the current :class:`Snapshot` and swaps it atomically on reload."""

    def __init__(self, reference: str | None, catalogue: str | None, *, verify: bool = True
                 ) -> None:
        self.reference = reference
        self.catalogue = catalogue
        self.verify = verify
        self.current: Snapshot | None = None
        self.last_reload: ReloadOutcome | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[ReloadOutcome, Snapshot | None], None]] = []
        #: Called on the event loop after ``reload`` swapped in a new snapshot, once the
        #: loading thread is done with the previous one.
        self.after_swap: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[ReloadOutcome, Snapshot | None], None]) -> None:
        """``listener(outcome, snapshot_or_None)`` is called after every reload attempt."""
        self._listeners.append(listener)

    def _emit(self, outcome: ReloadOutcome) -> None:
        for listener in self._listeners:
            listener(outcome, self.current)

    def load_initial(self) -> ReloadOutcome:
        """Load at start-up (blocking). A failure leaves the service alive but not ready."""
        return self._attempt(self.reference, force=True)

    async def reload(self, reference: str | None = None, *, force: bool = True) -> ReloadOutcome:
        """Load ``reference`` (default: the current one) off the event loop and swap it in.

        ``force=False`` (the watcher) skips the load when :meth:`needs_reload` finds nothing
        to do: the manifest's model version and the catalogue file unchanged, or a failed load's
        files unchanged since it failed. At most one reload runs at a time.
        """
        async with self._lock:
            before = self.current
            outcome = await asyncio.to_thread(self._attempt, reference or self.reference,
                                              force=force)
            if self.current is not before:
                del before
                for hook in self.after_swap:
                    hook()
            return outcome

    def needs_reload(self, reference: str | None = None) -> bool:
        """Cheap check used by the watcher at every tick: the manifest and a stat of the
        catalogue file, and after a failed load a stat of the model directory's files.

        A load that failed is retried only once something it read changed: the directory the
        reference resolves to, the model version, a file of that directory or the catalogue.
        So a broken model is not reloaded (and logged) at every tick, while a directory
        replaced in place by a non-atomic copy (``cp``, ``rsync``: the new manifest first, the
        data files later) that a check caught half-way is loaded once the copy completes.
        """
        ref = reference or self.reference
        current = self.current
        if ref is None:
            return False
        last = self.last_reload
        try:
            path = resolve_model_ref(ref)
            version = str(read_manifest(path)["model_version"])
        except ModelError as exc:
            # report a broken reference once per distinct error, not at every tick
            return not (last and not last.ok and last.error == str(exc))
        if (current is not None and version == current.version and path == current.path
                and _stamp(self.catalogue) == current.catalogue_stamp):
            return False
        if last is None or last.ok or last.inputs is None:
            return True
        # the directory is scanned only here, while a failed load is remembered
        return _inputs(path, version, self.catalogue) != last.inputs

    def _attempt(self, reference: str | None, *, force: bool) -> ReloadOutcome:
        previous = self.current
        prev_version = previous.version if previous else None
        ref = reference or ""
        started = time.perf_counter()
        inputs: Inputs | None = None
        try:
            if not force and not self.needs_reload(ref):
                outcome = ReloadOutcome(ok=True, at=_now(), reference=ref,
                                        model_version=prev_version,
                                        previous_version=prev_version)
                return outcome
            path = resolve_model_ref(ref)
            # stamped before loading: files that change during the load (a copy in progress)
            # differ from the stamp, so the failure they may cause is retried at the next tick
            inputs = _inputs(path, _manifest_version(path), self.catalogue)
            snapshot = load_snapshot(ref, self.catalogue, verify=self.verify, path=path)
        except ModelError as exc:
            outcome = ReloadOutcome(ok=False, at=_now(), reference=ref,
                                    model_version=inputs[1] if inputs else None,
                                    previous_version=prev_version, error=str(exc),
                                    inputs=inputs)
            self.last_reload = outcome
            log.error(
                "model load refused; %s", "the previous model keeps serving"
                if previous else "no model is being served",
                extra={"event": "model_load_failed", "reference": ref, "error": str(exc),
                       "serving_version": prev_version},
            )
            self._emit(outcome)
            return outcome
        except Exception as exc:  # never let an unexpected loader bug take the service down
            # no inputs recorded: what failed may be transient, so the watcher tries again
            outcome = ReloadOutcome(ok=False, at=_now(), reference=ref,
                                    previous_version=prev_version,
                                    error=f"{type(exc).__name__}: {exc}")
            self.last_reload = outcome
            log.exception("model load failed unexpectedly",
                          extra={"event": "model_load_failed", "reference": ref})
            self._emit(outcome)
            return outcome
        # the swap: one reference assignment; requests in flight keep the snapshot they hold
        self.current = snapshot
        self.reference = ref
        changed = prev_version != snapshot.version or previous is None
        outcome = ReloadOutcome(ok=True, at=_now(), reference=ref,
                                model_version=snapshot.version, previous_version=prev_version,
                                changed=changed or previous.unavailable != snapshot.unavailable)
        self.last_reload = outcome
        log.info(
            "model loaded", extra={
                "event": "model_loaded", "reference": ref, "model_version": snapshot.version,
                "previous_version": prev_version, "rules": snapshot.model.n_rules,
                "items": len(snapshot.model.items), "unavailable_items": len(snapshot.unavailable),
                "seconds": round(time.perf_counter() - started, 3)},
        )
        self._emit(outcome)
        return outcome
