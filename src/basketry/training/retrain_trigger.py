"""Retraining when the monitoring raises an alert (``basketry monitor watch --retrain``).

When a watch cycle opens alerts, :class:`RetrainTrigger` runs ``basketry retrain ARGS`` in a
process of its own (its memory and any failure stay out of the watcher; its output is kept),
at most once per cooldown: an alert that stays open does not open again, and a new one soon
after a retrain waits for the cooldown rather than retraining twice on nearly the same data.
The last attempt (when, why, how it ended) is kept in a small JSON file under
``$BASKETRY_HOME``, written before the retrain starts, so that a watcher restarted (or killed
during a retrain) keeps its cooldown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How the retrain is started: this interpreter, the ``basketry`` command's entry point.
ENTRY = "from basketry.cli import main; main()"


@dataclass(frozen=True)
class Attempt:
    """One retrain started by the trigger."""

    started: float
    alerts: list[str]
    returncode: int | None = None
    seconds: float | None = None
    last_line: str = ""


class RetrainTrigger:
    """Runs ``basketry retrain *args`` when alerts open, at most once per ``cooldown`` s."""

    def __init__(self, args: Sequence[str], cooldown: float, state: Path, *,
                 timeout: float = 6 * 3_600) -> None:
        if cooldown < 0:
            raise ValueError("the retrain cooldown must be >= 0 seconds")
        self.args = list(args)
        self.cooldown = cooldown
        self.state = state
        self.timeout = timeout

    def last(self) -> Attempt | None:
        """The last attempt recorded (None: none, or an unreadable file)."""
        try:
            data: dict[str, Any] = json.loads(self.state.read_text())
            return Attempt(**data)
        except (OSError, ValueError, TypeError):
            return None

    def on_alerts(self, opened: Sequence[Any], now: float | None = None) -> str | None:
        """React to the alerts a cycle opened: a line saying what was done, or None when
        there was nothing to react to."""
        if not opened:
            return None
        now = time.time() if now is None else now
        reasons = sorted({f"{a.kind} ({a.model_version or 'service'})" for a in opened})
        last = self.last()
        if last is not None and now - last.started < self.cooldown:
            wait = self.cooldown - (now - last.started)
            return (f"retrain not started for {', '.join(reasons)}: the last one began "
                    f"{_age(now - last.started)} ago (cooldown {_age(self.cooldown)}, "
                    f"{_age(wait)} left)")
        self._write(Attempt(started=now, alerts=reasons))
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", ENTRY, "retrain", *self.args],
                             capture_output=True, text=True, timeout=self.timeout,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
            code, out = done.returncode, (done.stdout or "") + (done.stderr or "")
        except subprocess.TimeoutExpired:
            code, out = None, f"stopped after {_age(self.timeout)}"
        except OSError as exc:
            code, out = None, f"could not start: {exc}"
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        attempt = Attempt(started=now, alerts=reasons, returncode=code,
                          seconds=round(time.perf_counter() - started, 1),
                          last_line=lines[-1][:500] if lines else "")
        self._write(attempt)
        verdict = "done" if code == 0 else "FAILED, nothing changed"
        return (f"retrain for {', '.join(reasons)}: {verdict} in {attempt.seconds:g} s"
                + (f": {attempt.last_line}" if attempt.last_line else ""))

    def _write(self, attempt: Attempt) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(attempt.__dict__) + "\n")
        os.replace(tmp, self.state)


def _age(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
