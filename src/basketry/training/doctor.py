"""Find and repair what killed processes left half-done in the model registry.

``basketry models doctor [--repair]`` (:func:`doctor`) looks, under the store's writer lock, for

1. versions whose registration did not finish (``basketry.registration = pending``): their
   aliases go back to what the registration found (recorded on the version), their history
   entry is dropped, the version is deleted and its run ended ``KILLED``;
2. champion-history entries naming versions that no longer exist: dropped;
3. a champion alias that disagrees with the history (a promotion or rollback killed between
   its two writes; a champion deleted by hand; a champion set before the history existed):
   the alias follows the history's last entry, or a champion missing from the history is
   appended to it;
4. runs still ``RUNNING`` whose process (``basketry.pid`` on ``basketry.host``) is gone: ended
   ``FINISHED`` if their registration completed, else ``KILLED``.

Without ``repair`` it only reports. Every repair is idempotent: a second run finds nothing.
A pending version whose run names a live process, or one on another host when the store's lock
only covers this machine (an ``http(s)`` server), is reported and left alone.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from basketry.training.locks import authoritative
from basketry.training.registry import (
    BEFORE_TAG,
    CHAMPION,
    COMPLETE,
    DEFAULT_REGISTERED_MODEL,
    HISTORY_TAG,
    PENDING,
    ROLLBACK_TAG,
    STATE_TAG,
    check_model_name,
    model_exists,
    registry_lock,
)
from basketry.training.tracking import client, process_alive, redact, tracking_uri


@dataclass
class Finding:
    """One inconsistency: what is wrong, what the repair does, whether it was done."""

    subject: str
    problem: str
    action: str
    repaired: bool = False
    error: str | None = None

    def line(self) -> str:
        state = ("repaired" if self.repaired else
                 f"repair failed: {self.error}" if self.error else "not repaired")
        return f"{self.subject}: {self.problem}; {self.action} [{state}]"


@dataclass
class DoctorReport:
    name: str
    uri: str
    repair: bool
    findings: list[Finding] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """Whether the registry is consistent now (nothing found, or everything repaired)."""
        return all(f.repaired for f in self.findings)

    def lines(self) -> list[str]:
        head = f"registry {self.name!r} in {redact(self.uri)}: "
        if not self.findings:
            return [head + "consistent"]
        left = sum(not f.repaired for f in self.findings)
        summary = (f"{len(self.findings)} problem(s), "
                   + ("all repaired" if not left else f"{left} not repaired"
                      + ("" if self.repair else " (run with --repair)")))
        return [head + summary, *(f"  {f.line()}" for f in self.findings)]


def _history(c: Any, name: str) -> list[str]:
    text = (c.get_registered_model(name).tags or {}).get(HISTORY_TAG)
    return [str(v) for v in json.loads(text)] if text else []


def _aliases(c: Any, name: str) -> dict[str, str]:
    return {str(a): str(v) for a, v in (c.get_registered_model(name).aliases or {}).items()}


def _versions(c: Any, name: str) -> dict[str, Any]:
    return {str(mv.version): mv for mv in c.search_model_versions(f"name = '{name}'")}


def _run_process(c: Any, run_id: str | None) -> tuple[Any | None, str]:
    """The run and whether its process is ``alive``, ``gone`` or ``unknown`` (another host,
    no record)."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None, "unknown"
    try:
        run = c.get_run(run_id)
    except MlflowException:
        return None, "gone"
    tags = run.data.tags
    if run.info.status != "RUNNING":
        return run, "gone"
    if "basketry.pid" not in tags or tags.get("basketry.host") != socket.gethostname():
        return run, "unknown"
    alive = process_alive(int(tags["basketry.pid"]), tags.get("basketry.pid_start"))
    return run, "alive" if alive else "gone"


def _end_run(c: Any, run: Any, status: str, reason: str | None) -> None:
    if reason is not None:
        c.set_tag(run.info.run_id, "basketry.failure", reason[:5000])
    c.set_terminated(run.info.run_id, status)


def _undo_pending(c: Any, name: str, mv: Any, versions: dict[str, Any]) -> None:
    """Put back what the pending version's registration changed, delete it, end its run."""
    version = str(mv.version)
    before = json.loads((mv.tags or {}).get(BEFORE_TAG) or "{}")
    old_aliases = before.get("aliases") or {}
    for alias, target in _aliases(c, name).items():
        if target != version:
            continue
        old = old_aliases.get(alias)
        ok = (old is not None and old in versions
              and (versions[old].tags or {}).get(STATE_TAG, COMPLETE) == COMPLETE)
        if ok:
            c.set_registered_model_alias(name, alias, old)
        else:
            c.delete_registered_model_alias(name, alias)
    history = _history(c, name)
    if version in history:
        c.set_registered_model_tag(name, HISTORY_TAG,
                                   json.dumps([v for v in history if v != version]))
    c.delete_model_version(name, version)
    run, _ = _run_process(c, mv.run_id)
    if run is not None and run.info.status == "RUNNING":
        _end_run(c, run, "KILLED", f"the registration of {name} version {version} was "
                 "interrupted (its process is gone); undone by basketry models doctor")


def _pending(c: Any, name: str, uri: str | None, findings: list[Finding], repair: bool
             ) -> None:
    versions = _versions(c, name)
    for version, mv in sorted(versions.items(), key=lambda kv: int(kv[0])):
        if (mv.tags or {}).get(STATE_TAG) != PENDING:
            continue
        _run, process = _run_process(c, mv.run_id)
        aliases = sorted(a for a, v in _aliases(c, name).items() if v == version)
        problem = ("registration did not finish"
                   + (f" (aliases {', '.join(aliases)} point at it)" if aliases else ""))
        finding = Finding(f"version {version}", problem,
                          "restore the aliases and history it found, delete it, end its run "
                          "KILLED")
        findings.append(finding)
        if process == "alive" or (process == "unknown" and uri is not None
                                  and not authoritative(uri)):
            where = "still running" if process == "alive" else "on another host"
            finding.action = f"left alone: its process is {where}"
            continue
        if repair:
            _attempt(finding, _undo_pending, c, name, mv, versions)


def _attempt(finding: Finding, action: Any, *args: Any) -> None:
    try:
        action(*args)
    except Exception as exc:
        finding.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    else:
        finding.repaired = True


def repair_pending(c: Any, name: str) -> list[str]:
    """Undo the pending registrations of ``name`` (called under the registry lock, where a
    pending version belongs to a dead process); what was repaired, one line each."""
    if not model_exists(c, name):
        return []
    findings: list[Finding] = []
    _pending(c, name, None, findings, repair=True)
    return [f.line() for f in findings if f.repaired]


def _history_and_champion(c: Any, name: str, findings: list[Finding], repair: bool) -> None:
    versions = _versions(c, name)
    history = _history(c, name)
    kept = [v for v in history if v in versions]
    kept = [v for i, v in enumerate(kept) if i == 0 or kept[i - 1] != v]
    if kept != history:
        gone = sorted(set(history) - set(versions), key=int)
        finding = Finding("champion history", f"names versions that no longer exist "
                          f"({', '.join(gone)})" if gone else "repeats a version",
                          f"keep {kept}")
        findings.append(finding)
        if repair:
            _attempt(finding, c.set_registered_model_tag, name, HISTORY_TAG, json.dumps(kept))
        history = kept if finding.repaired else history
    champion = _aliases(c, name).get(CHAMPION)
    tags = c.get_registered_model(name).tags or {}
    last_rollback = json.loads(tags.get(ROLLBACK_TAG) or "{}")
    if champion is None and history and history[-1] in versions:
        finding = Finding("champion", f"no champion, the history ends with {history[-1]}",
                          f"point champion at version {history[-1]}")
        action: Any = (c.set_registered_model_alias, name, CHAMPION, history[-1])
    elif champion is None or (history and history[-1] == champion):
        return
    elif champion not in history and last_rollback.get("from") == champion and history:
        finding = Finding("champion", f"a rollback from version {champion} to "
                          f"{history[-1]} did not finish",
                          f"point champion at version {history[-1]}")
        action = (c.set_registered_model_alias, name, CHAMPION, history[-1])
    elif champion not in history:
        finding = Finding("champion", f"version {champion} is missing from the history",
                          f"append it: {[*history, champion]}")
        action = (c.set_registered_model_tag, name, HISTORY_TAG,
                  json.dumps([*history, champion]))
    else:
        finding = Finding("champion", f"points at version {champion} but the history ends "
                          f"with {history[-1]} (a promotion did not finish)",
                          f"point champion at version {history[-1]}")
        action = (c.set_registered_model_alias, name, CHAMPION, history[-1])
    findings.append(finding)
    if repair:
        _attempt(finding, *action)


def _orphan_runs(c: Any, findings: list[Finding], repair: bool) -> None:
    """Runs still RUNNING whose process on this host is gone."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in c.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return
    for run in c.search_runs(experiments, "attributes.status = 'RUNNING'",
                             run_view_type=ViewType.ALL, max_results=10_000):
        _run, process = _run_process(c, run.info.run_id)
        if process != "gone":
            continue
        tags = run.data.tags
        version, model = tags.get("basketry.registered_version"), tags.get(
            "basketry.registered_model")
        complete = False
        if version and model:
            from mlflow.exceptions import MlflowException

            try:
                mv = c.get_model_version(model, version)
                complete = (mv.tags or {}).get(STATE_TAG, COMPLETE) == COMPLETE
            except MlflowException:
                complete = False
        status = "FINISHED" if complete else "KILLED"
        finding = Finding(f"run {run.info.run_id}",
                          f"RUNNING but its process {tags.get('basketry.pid')} is gone",
                          f"end it {status}" + (f" (its registration of {model} version "
                                                f"{version} completed)" if complete else ""))
        findings.append(finding)
        if repair:
            reason = None if complete else "its process is gone; ended by basketry models doctor"
            _attempt(finding, _end_run, c, run, status, reason)


def doctor(*, name: str = DEFAULT_REGISTERED_MODEL, uri: str | None = None,
           repair: bool = False) -> DoctorReport:
    """Check (and with ``repair``, repair) the registered model ``name`` and the store's runs;
    see the module's docstring. Nothing is created: a missing store is a ``TrackingError``."""
    check_model_name(name)
    uri = tracking_uri(uri)
    c = client(uri, create=False)
    report = DoctorReport(name=name, uri=uri, repair=repair)
    with registry_lock(uri):
        if model_exists(c, name):
            _pending(c, name, uri, report.findings, repair)
            _history_and_champion(c, name, report.findings, repair)
        _orphan_runs(c, report.findings, repair)
    return report
