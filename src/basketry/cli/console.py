"""Where the `basketry` command writes: the consoles, progress, and the lines every command that
reads data prints. rich's progress module is imported only by the commands that show one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.status import Status

console = Console()
err_console = Console(stderr=True)


@contextmanager
def fraction_progress(description: str, stages: Mapping[float, str] | None = None
                      ) -> Iterator[Callable[[float], None]]:
    """A rich progress bar fed by a fraction-done callback (silent when not on a terminal).
    ``stages`` names what is done from a fraction on (``{0.9: "rules"}``), so that a bar
    standing still says why."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn()]
    named = sorted((stages or {}).items())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=1.0)

        def update(fraction: float) -> None:
            fraction = min(max(fraction, 0.0), 1.0)
            now = [text for start, text in named if fraction >= start - 1e-9]
            bar.update(task, completed=fraction, description=now[-1] if now else description)

        yield update


class Feedback:
    """The one live line of a long command: a status naming the stage, or a bar counting
    steps; :meth:`stop` clears it before anything is printed (rich allows one live display)."""

    def __init__(self) -> None:
        self._status: Status | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def stage(self, message: str) -> None:
        """Show ``message`` as what is being done now."""
        if self._status is None:
            self.stop()
            self._status = console.status(message)
            self._status.start()
        else:
            self._status.update(message)

    def steps(self, done: int, total: int, message: str, unit: str = "points") -> None:
        """Show ``done`` of ``total`` steps and what is being done."""
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.stop()
            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                       TextColumn(f"{{task.completed}}/{{task.total}} {unit}"),
                       TimeElapsedColumn()]
            self._bar = Progress(*columns, console=err_console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(message, total=total)
        assert self._task is not None
        self._bar.update(self._task, completed=done, total=total, description=message)

    def stop(self) -> None:
        """Clear the live line (the next stage or steps start a new one)."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None


@contextmanager
def feedback() -> Iterator[Feedback]:
    """A :class:`Feedback` cleared when the command is done, or fails."""
    live = Feedback()
    try:
        yield live
    finally:
        live.stop()


def print_read_report(baskets: Any) -> None:
    report = baskets.report
    dropped = {k: v for k, v in report.items() if k.startswith(("dropped", "duplicate", "empty"))
               and v}
    console.print(
        f"read {baskets.n_baskets:,} baskets over {baskets.n_items:,} items from {baskets.source}"
        + (f" (dropped: {', '.join(f'{k}={v:,}' for k, v in dropped.items())})" if dropped else "")
    )
