"""Model registry and promotion gate (MLflow Model Registry).

Every tracked training can be registered as a new version of a registered model (default
``basketry``); the version points at the run's ``model/`` (a ``python_function`` model whose
data is the basketry artifact). A new version gets the alias ``challenger``. It becomes
``champion`` only when, on the new model's own test split,

1. it beats the popularity baseline on the main metric (``hit_rate@10``), and
2. it is not worse than the current champion by more than the tolerance (default 0.005
   absolute), the champion's artifact being re-evaluated on that same split;

otherwise it stays challenger and the reasons are recorded (``basketry.gate`` tags) and
printed. ``force`` promotes anyway and is recorded (``basketry.forced``).

Champion history: the registered model's tag ``basketry.champion_history`` lists the versions
that were champion, oldest first; ``rollback`` drops the last and points ``champion`` at the
previous one (recorded as tags).

Concurrency and kills: every read-modify-write of a registered model (registration, promote,
rollback, repair) holds the store's writer lock (:mod:`basketry.training.locks`), so
concurrent trains each get their history entry. A registration writes in an order a kill can
be recognised from: the new version is created with ``basketry.registration = pending`` and
the aliases and history it found (``basketry.registration.before``); then the challenger
alias, the history, the champion alias, the version's and run's tags; ``complete`` last. The
history is written before the champion alias by promote and rollback too (rollback records its
intent, ``basketry.last_rollback``, first). What a SIGKILL leaves is found and put back by
:func:`basketry.training.doctor.doctor`, and by the next registration under the lock (a
pending version seen under the lock belongs to a dead process). SIGTERM and Ctrl-C undo the
registration as any failure does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from basketry.model.reference import artifact_dir, local_path
from basketry.training.faults import fault_point
from basketry.training.locks import LockTimeout, authoritative, store_lock
from basketry.training.signals import deferred_signals
from basketry.training.tracking import TrainingRun, client, redact, tracking_uri

DEFAULT_REGISTERED_MODEL = "basketry"
CHAMPION, CHALLENGER = "champion", "challenger"
MAIN_METRIC = "hit_rate@10"
DEFAULT_TOLERANCE = 0.005
HISTORY_TAG = "basketry.champion_history"
ROLLBACK_TAG = "basketry.last_rollback"
#: A version's registration state: ``pending`` until every write of the registration is done,
#: then ``complete`` (versions registered before this tag existed have none: complete).
STATE_TAG = "basketry.registration"
BEFORE_TAG = "basketry.registration.before"
PENDING, COMPLETE = "pending", "complete"
#: Registered-model names basketry accepts: they go into ``models:/NAME@ALIAS`` references
#: and registry filters, so no ``/``, ``@``, quotes or spaces.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RegistryError(Exception):
    """A registry operation that cannot be done (no such version, nothing to roll back...)."""


def check_model_name(name: str) -> None:
    """``RegistryError`` unless ``name`` is a registered-model name basketry accepts."""
    if not MODEL_NAME.fullmatch(name or ""):
        raise RegistryError(
            f"invalid registered model name {name!r}: use 1 to 128 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it goes into models:/NAME@ALIAS)")


@contextlib.contextmanager
def registry_lock(uri: str) -> Iterator[None]:
    """The store's writer lock, its timeout as a ``RegistryError``."""
    try:
        with store_lock(uri, "changing the model registry"):
            yield
    except LockTimeout as exc:
        raise RegistryError(str(exc)) from None


def _registered(c: Any, name: str, uri: str) -> Any:
    """The registered model ``name``, or ``RegistryError``."""
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException:
        raise RegistryError(f"no registered model {name!r} in {redact(uri)}") from None


def _open(name: str, uri: str | None) -> tuple[Any, str]:
    """A client of an existing store (nothing is created) and its URI, for the registry
    commands; ``RegistryError`` for a bad name."""
    check_model_name(name)
    uri = tracking_uri(uri)
    return client(uri, create=False), uri


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str]
    metric: str = MAIN_METRIC
    value: float | None = None
    popularity: float | None = None
    champion_version: str | None = None
    champion_value: float | None = None
    forced: bool = False

    def summary(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class Registration:
    name: str
    version: str
    decision: GateDecision
    aliases: list[str] = field(default_factory=list)
    #: Half-finished registrations of killed processes this one found and put back.
    repaired: list[str] = field(default_factory=list)


def gate(value: float, popularity: float, champion_value: float | None, *,
         tolerance: float = DEFAULT_TOLERANCE, metric: str = MAIN_METRIC,
         champion_version: str | None = None, force: bool = False) -> GateDecision:
    """The promotion rule on one split (pure: the numbers are measured elsewhere)."""
    reasons: list[str] = []
    ok = True
    if value > popularity:
        reasons.append(f"{metric} {value:.4f} beats popularity {popularity:.4f}")
    else:
        ok = False
        reasons.append(f"{metric} {value:.4f} does not beat popularity {popularity:.4f}")
    if champion_value is None:
        reasons.append("no current champion")
    elif value >= champion_value - tolerance:
        reasons.append(f"not worse than champion v{champion_version} ({champion_value:.4f}) "
                       f"beyond tolerance {tolerance:g}")
    else:
        ok = False
        reasons.append(f"worse than champion v{champion_version} ({champion_value:.4f}) "
                       f"beyond tolerance {tolerance:g}")
    if force and not ok:
        reasons.append("promoted anyway: --force")
    return GateDecision(promote=ok or force, reasons=reasons, metric=metric, value=value,
                        popularity=popularity, champion_version=champion_version,
                        champion_value=champion_value, forced=force and not ok)


# ---- finding a version's basketry artifact ---------------------------------------------------
def version_model_dir(mlflow_client: Any, name: str, version: str,
                      cache: str | os.PathLike[str] | None = None) -> Path:
    """The basketry artifact directory of a registered version (downloaded into ``cache`` or a
    temporary directory when the artifact store is remote)."""
    import mlflow.artifacts
    from mlflow.models import Model as MlflowModel

    uri = mlflow_client.get_model_version_download_uri(name, version)
    local = local_path(uri)
    if local is None or not local.is_dir():
        target = Path(cache or tempfile.mkdtemp(prefix="basketry-registry-"))
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    data = artifact_dir(local, MlflowModel.load(str(local)).flavors)
    if data is None:
        raise RegistryError(f"version {version} of {name!r} is not a basketry model")
    return data


# ---- the champion measured on a new split ----------------------------------------------------
def evaluate_on_split(model_dir: Path, result: Any, *, seed: int | None = None
                      ) -> dict[str, dict[str, float | None]]:
    """Metrics of the model at ``model_dir`` on the test part of ``result``'s split, with the
    same queries (same baskets, same hidden items; items the model does not know are dropped or
    count as misses, as for the new model)."""
    # imported here: numba (evaluate) and the model loader slow down the listing commands
    from basketry.model import load_model
    from basketry.training.evaluate import KS, evaluate, make_queries

    model = load_model(model_dir)
    protocol = result.report.get("protocol", {})
    seed = int(protocol.get("seed", 0) if seed is None else seed)
    test = result.split.test
    old_to_new = np.array([model.item_ids.get(str(item), -1) for item in test.items],
                          dtype=np.int32)
    queries = make_queries(test, old_to_new, max_queries=protocol.get("max_queries"),
                           max_hidden_per_basket=protocol.get("max_hidden_per_basket"),
                           seed=seed)
    return evaluate(model, queries, seed=seed, ks=KS)


# ---- registry operations ---------------------------------------------------------------------
def _ensure_registered_model(c: Any, name: str) -> bool:
    """Create the registered model ``name`` if it does not exist; whether it was created."""
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="basketry association-rule recommender")
        return True
    return False


def _alias_version(c: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def alias_version(alias: str, *, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None
                  ) -> str | None:
    """The version ``alias`` (``champion``, ``challenger``) points at, or ``None``."""
    return _alias_version(_open(name, uri)[0], name, alias)


def champion_history(c: Any, name: str) -> list[str]:
    tags = c.get_registered_model(name).tags or {}
    text = tags.get(HISTORY_TAG)
    return [str(v) for v in json.loads(text)] if text else []


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _set_champion(c: Any, name: str, version: str, *, reason: str, forced: bool) -> None:
    """History first, then the alias (a kill in between: ``doctor`` moves the alias to the
    history's last entry), then the version's record."""
    history = champion_history(c, name)
    if not history or history[-1] != version:
        history.append(version)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    fault_point("history_set")
    c.set_registered_model_alias(name, CHAMPION, version)
    fault_point("champion_set")
    c.set_model_version_tag(name, version, "basketry.promoted_at", _now())
    c.set_model_version_tag(name, version, "basketry.promotion", reason[:5000])
    if forced:
        c.set_model_version_tag(name, version, "basketry.forced", "true")
    fault_point("promotion_tagged")


@dataclass(frozen=True)
class _RegistryState:
    """What a registration may change on the registered model: its aliases and the champion
    history tag (the new version's own tags go with it)."""

    aliases: dict[str, str]
    history: str | None


def _registry_state(c: Any, name: str) -> _RegistryState:
    registered = c.get_registered_model(name)
    return _RegistryState(aliases={str(a): str(v) for a, v in (registered.aliases or {}).items()},
                          history=(registered.tags or {}).get(HISTORY_TAG))


def _undo_registration(c: Any, name: str, version: str | None, before: _RegistryState,
                       created_model: bool) -> list[str]:
    """Put the registered model back as it was before a registration that failed: aliases and
    history first (so ``champion`` never points at a deleted version), then delete the new
    version, then the registered model if this registration created it and it holds no
    version. Every step is tried; the steps that failed are returned."""
    problems: list[str] = []

    def attempt(what: str, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:
            problems.append(f"{what}: {type(exc).__name__}: {exc}")

    try:
        now = _registry_state(c, name)
    except Exception as exc:
        now = None
        problems.append(f"reading the registered model: {type(exc).__name__}: {exc}")
    if now is not None:
        for alias in sorted(set(now.aliases) | set(before.aliases)):
            old, new = before.aliases.get(alias), now.aliases.get(alias)
            if old == new:
                continue
            if old is None:
                attempt(f"removing alias {alias}", c.delete_registered_model_alias, name, alias)
            else:
                attempt(f"restoring alias {alias} -> v{old}", c.set_registered_model_alias,
                        name, alias, old)
        if now.history != before.history:
            if before.history is None:
                attempt("removing the champion history", c.delete_registered_model_tag, name,
                        HISTORY_TAG)
            else:
                attempt("restoring the champion history", c.set_registered_model_tag, name,
                        HISTORY_TAG, before.history)
    if version is not None:
        attempt(f"deleting version {version}", c.delete_model_version, name, version)
    if created_model and not problems:
        try:
            left = c.search_model_versions(f"name = '{name}'")
        except Exception as exc:
            problems.append(f"listing versions: {type(exc).__name__}: {exc}")
        else:
            if not left:
                attempt(f"deleting the registered model {name!r}", c.delete_registered_model,
                        name)
    return problems


def _champion_value(c: Any, name: str, champion: str | None, result: Any) -> float | None:
    if champion is None:
        return None
    metrics = evaluate_on_split(version_model_dir(c, name, champion), result)
    return metrics["model"][MAIN_METRIC]


def _existing_registration(c: Any, name: str, run_id: str) -> Any | None:
    """The complete version this run already registered (registering twice is a no-op)."""
    for mv in c.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        if (mv.tags or {}).get(STATE_TAG, COMPLETE) == COMPLETE:
            return mv
    return None


def register(run: TrainingRun, result: Any, *, name: str = DEFAULT_REGISTERED_MODEL,
             tolerance: float = DEFAULT_TOLERANCE, force: bool = False) -> Registration:
    """Register the run's model as a new version, alias it ``challenger``, and promote it to
    ``champion`` if the gate says so (or ``force``). The run must have logged its model.

    All or nothing: when any step fails (the store refuses a write, the champion cannot be
    evaluated, Ctrl-C or SIGTERM...), what was done is undone (the aliases and the champion
    history are put back, the new version is deleted) and ``RegistryError`` is raised with the
    reason (a signal is re-raised); the caller marks its run failed. A registration that could
    not be undone says what is left. Serialised with every other writer of the registry by the
    store's lock; registering the same run again returns its version."""
    from basketry.training.doctor import repair_pending

    check_model_name(name)
    c = run.client
    # the champion's evaluation is the slow part: done before the lock, redone under it only
    # if another registration moved the champion meanwhile
    try:
        seen = _alias_version(c, name, CHAMPION) if model_exists(c, name) else None
        champion_value = _champion_value(c, name, seen, result)
    except Exception:  # e.g. that champion was just replaced and deleted: redone below
        seen, champion_value = "", None
    with registry_lock(run.uri):
        fault_point("locked")
        try:
            repaired = repair_pending(c, name) if authoritative(run.uri) else []
            created_model = _ensure_registered_model(c, name)
            done = _existing_registration(c, name, str(run.run_id))
            before = _registry_state(c, name)
        except Exception as exc:
            raise RegistryError(f"registering {name!r} failed ({type(exc).__name__}: {exc}); "
                                "nothing was registered") from exc
        if done is not None:
            return _registration_of(c, name, done, repaired)
        version: str | None = None
        try:
            champion = before.aliases.get(CHAMPION)
            if champion != seen:
                champion_value = _champion_value(c, name, champion, result)
            value = float(result.metrics["model"][MAIN_METRIC])
            popularity = float(result.metrics["popularity"][MAIN_METRIC])
            decision = gate(value, popularity, champion_value, tolerance=tolerance,
                            champion_version=champion, force=force)
            created = c.create_model_version(
                name, run.model_uri, run_id=run.run_id,
                tags={"basketry.model_version": result.report.get("model_version", ""),
                      "basketry.gate": decision.summary()[:5000],
                      "basketry.gate.passed":
                          str(decision.promote and not decision.forced).lower(),
                      STATE_TAG: PENDING,
                      BEFORE_TAG: json.dumps({"aliases": before.aliases,
                                              "history": before.history})},
                description=f"{MAIN_METRIC} {value:.4f} (popularity {popularity:.4f})",
            )
            version = str(created.version)
            fault_point("version_created")
            c.set_registered_model_alias(name, CHALLENGER, version)
            fault_point("challenger_set")
            aliases = [CHALLENGER]
            if decision.promote:
                _set_champion(c, name, version, reason=decision.summary(),
                              forced=decision.forced)
                aliases.append(CHAMPION)
            if champion_value is not None:
                run.log_metrics({f"champion.{MAIN_METRIC.replace('@', '_at_')}":
                                 champion_value})
            run.set_tags({"basketry.registered_model": name,
                          "basketry.registered_version": version,
                          "basketry.promoted": str(decision.promote).lower(),
                          "basketry.forced": str(decision.forced).lower(),
                          "basketry.gate": decision.summary()[:5000]})
            fault_point("run_tagged")
            c.set_model_version_tag(name, version, STATE_TAG, COMPLETE)
            fault_point("completed")
        except BaseException as exc:
            with deferred_signals():  # a second Ctrl-C does not cut the undo short
                problems = _undo_registration(c, name, version, before, created_model)
            if not isinstance(exc, Exception):  # KeyboardInterrupt...: undone, then on its way
                raise
            what = f"registering {name!r} failed ({type(exc).__name__}: {exc})"
            if problems:
                raise RegistryError(f"{what}; undoing it failed too, left as is: "
                                    f"{'; '.join(problems)}") from exc
            raise RegistryError(f"{what}; nothing was registered and no alias moved") from exc
    fault_point("unlocked")
    return Registration(name=name, version=version, decision=decision, aliases=aliases,
                        repaired=repaired)


def model_exists(c: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException:
        return False
    return True


def _registration_of(c: Any, name: str, mv: Any, repaired: list[str]) -> Registration:
    """The :class:`Registration` a complete version records (for a repeated registration)."""
    tags = mv.tags or {}
    aliases = [a for a in (CHALLENGER, CHAMPION) if _alias_version(c, name, a) == str(mv.version)]
    forced = tags.get("basketry.forced") == "true"
    decision = GateDecision(promote=CHAMPION in aliases or forced,
                            reasons=[tags.get("basketry.gate", "registered before")],
                            forced=forced)
    return Registration(name=name, version=str(mv.version), decision=decision, aliases=aliases,
                        repaired=repaired)


def promote(version: str, *, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None
            ) -> str | None:
    """Point ``champion`` at ``version`` by hand (recorded as forced); the previous champion."""
    c, uri = _open(name, uri)
    _registered(c, name, uri)
    with registry_lock(uri):
        mv = _check_version(c, name, version)
        if (mv.tags or {}).get(STATE_TAG, COMPLETE) != COMPLETE:
            raise RegistryError(f"version {version} of {name!r} is a registration that did not "
                                "finish; run `basketry models doctor --repair`")
        previous = _alias_version(c, name, CHAMPION)
        with deferred_signals():
            _set_champion(c, name, str(version),
                          reason="promoted by hand (basketry models promote)", forced=True)
    return previous


def rollback(*, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None
             ) -> tuple[str, str]:
    """Point ``champion`` back at the previous champion; ``(from_version, to_version)``.

    The intent (``basketry.last_rollback``) is written first, then the shortened history, then
    the alias: a rollback killed half-way is finished by ``doctor`` or by rolling back again."""
    c, uri = _open(name, uri)
    _registered(c, name, uri)
    with registry_lock(uri):
        history = champion_history(c, name)
        current = _alias_version(c, name, CHAMPION)
        if current is not None and (not history or history[-1] != current):
            history.append(current)
        if len(history) < 2:
            raise RegistryError(f"{name!r} has no previous champion to roll back to")
        rolled_back = history.pop()
        target = history[-1]
        stamp = _now()
        with deferred_signals():
            c.set_registered_model_tag(name, ROLLBACK_TAG, json.dumps(
                {"from": rolled_back, "to": target, "at": stamp}))
            c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
            fault_point("rollback_history_set")
            c.set_registered_model_alias(name, CHAMPION, target)
            c.set_model_version_tag(name, rolled_back, "basketry.rolled_back_at", stamp)
            c.set_model_version_tag(name, target, "basketry.restored_by_rollback_at", stamp)
    return rolled_back, target


def _check_version(c: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"{name!r} has no version {version}") from None


def list_versions(*, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None
                  ) -> list[dict[str, Any]]:
    """The versions of ``name``, newest first, with aliases, main metric and gate outcome.
    The local SQLite store is read directly, without importing MLflow (seconds saved: see
    :mod:`basketry.training.registry_sqlite`); any other store, or anything unexpected in it,
    through MLflow's client."""
    from basketry.training.registry_sqlite import list_versions as read_sqlite

    check_model_name(name)
    uri = tracking_uri(uri)
    metrics = {key: f"{ranker}.{MAIN_METRIC.replace('@', '_at_')}"
               for key, ranker in ((MAIN_METRIC, "model"),
                                   (f"popularity {MAIN_METRIC}", "popularity"))}
    fast = read_sqlite(uri, name, metrics)
    return fast if fast is not None else list_versions_mlflow(name=name, uri=uri)


def list_versions_mlflow(*, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None
                         ) -> list[dict[str, Any]]:
    """:func:`list_versions` through MLflow's client, whatever the store."""
    c, uri = _open(name, uri)
    registered = _registered(c, name, uri)
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in c.search_model_versions(f"name = '{name}'"):
        row = _describe(c, mv)
        row["aliases"] = sorted(aliases.get(row["version"], []))
        rows.append(row)
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def show_version(version: str, *, name: str = DEFAULT_REGISTERED_MODEL,
                 uri: str | None = None) -> dict[str, Any]:
    c, uri = _open(name, uri)
    _registered(c, name, uri)
    out = _describe(c, _check_version(c, name, version), metrics=True)
    out["model_dir"] = str(version_model_dir(c, name, str(version)))
    return out


def _describe(c: Any, mv: Any, *, metrics: bool = False) -> dict[str, Any]:
    run_metrics: dict[str, float] = {}
    status = None
    if mv.run_id:
        from mlflow.exceptions import MlflowException

        try:
            run = c.get_run(mv.run_id)
            run_metrics = dict(run.data.metrics)
            status = run.info.status
        except MlflowException:
            pass
    out: dict[str, Any] = {
        "name": mv.name, "version": str(mv.version), "aliases": sorted(mv.aliases or []),
        "created": time.strftime("%Y-%m-%d %H:%M:%S",
                                 time.gmtime((mv.creation_timestamp or 0) / 1000)),
        "run_id": mv.run_id, "run_status": status, "source": mv.source,
        MAIN_METRIC: run_metrics.get(f"model.{MAIN_METRIC.replace('@', '_at_')}"),
        "popularity " + MAIN_METRIC:
            run_metrics.get(f"popularity.{MAIN_METRIC.replace('@', '_at_')}"),
        "tags": dict(mv.tags or {}),
    }
    if metrics:
        out["metrics"] = dict(sorted(run_metrics.items()))
    return out
