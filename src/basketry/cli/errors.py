"""How the `basketry` command fails: exit statuses, the one line a failure prints, and the
failure funnel every command runs through."""

from __future__ import annotations

import os
from typing import Any

import typer
import typer.core
from rich.markup import escape

from basketry.cli.console import err_console
from basketry.cli.help_text import tidy_help

#: Exit status for bad input (data, parameters, model files, I/O, budget, an unreachable store):
#: one line says what, and nothing was written.
EXIT_BAD_INPUT = 2
#: Exit status for an unexpected failure (a bug): a short message; ``--debug`` shows the traceback.
EXIT_INTERNAL = 1
#: Exit status after Ctrl-C or SIGTERM, as a shell reports a SIGINT or SIGTERM death.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: Exit status of `models doctor` when the registry has problems left.
EXIT_INCONSISTENT = 3


#: The library's error types for failures the user can fix, by qualified name: matched along an
#: exception's classes, so that mapping a failure imports nothing and cannot fail itself
#: (tests/test_cli_failures.py checks that each name still names an exception class).
KNOWN_ERRORS = frozenset({
    "basketry.data.errors.DataError",
    "basketry.mining.errors.MiningError",
    "basketry.model.errors.ModelError",
    "basketry.training.registry.RegistryError",
    "basketry.training.retrain.RetrainError",
    "basketry.training.assessment.AssessmentError",
    "basketry.simulation.replay.SimulationError",
    "basketry.training.tracking.TrackingError",
    "basketry.training.tune.GridError",
    "basketry.training.tune.SweepError",
    "basketry.serving.settings.SettingsError",
    "basketry._kernels.loader.KernelsUnavailable",
    "basketry.monitoring.orders.OrderError",
    "basketry.monitoring.settings.MonitorSettingsError",
    "basketry.monitoring.store.MonitorStoreError",
    "basketry.monitoring.schema.DamagedRowError",
    "basketry.monitoring.windows.WindowError",
    "basketry.monitoring.performance.PerformanceError",
})
#: Where each optional dependency comes from: a command that needs one the install lacks says
#: which extra brings it, instead of reporting a bug.
EXTRA_OF = {
    "numba": "train", "llvmlite": "train", "pandas": "train", "matplotlib": "train",
    "mlflow": "mlflow", "sqlalchemy": "monitor", "alembic": "monitor", "psycopg2": "monitor",
    "litestar": "serve", "uvicorn": "serve", "msgspec": "serve", "prometheus_client": "serve",
}


def _is_known(exc: BaseException) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" in KNOWN_ERRORS for c in type(exc).__mro__)


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one line every command prints for a failure: the one place where
    failures are mapped (known ones to status 2, anything unexpected to status 1)."""
    if isinstance(exc, KeyboardInterrupt):
        terminated = any(c.__name__ == "Terminated" for c in type(exc).__mro__)
        return ((EXIT_TERMINATED, "terminated (SIGTERM); nothing was left half-written")
                if terminated else (EXIT_INTERRUPTED, "interrupted; nothing was left half-written"))
    if isinstance(exc, MemoryError):
        return EXIT_BAD_INPUT, ("out of memory; lower the work asked for (a higher --min-support, "
                                "--max-len, --max-itemsets) or free memory")
    if _is_known(exc):
        return EXIT_BAD_INPUT, " ".join(str(exc).split()) or type(exc).__name__
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if missing and missing.split(".")[0] in EXTRA_OF:
        extra = EXTRA_OF[missing.split(".")[0]]
        return EXIT_BAD_INPUT, (f"this command needs {missing.split('.')[0]}, which this install "
                                f"lacks: pip install 'basketry[{extra}]'")
    if isinstance(exc, OSError):
        return EXIT_BAD_INPUT, _describe_os_error(exc)
    return EXIT_INTERNAL, (
        f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
        "(this is a bug; re-run with `basketry --debug ...` for the traceback, and report it)")


def _describe_os_error(exc: OSError) -> str:
    import errno

    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    advice = {errno.ENOSPC: "; free space and run again (nothing was left half-written)",
              errno.EROFS: "; choose a writable place",
              errno.EACCES: "; check the permissions", errno.EPERM: "; check the permissions "
              "and attributes (chattr)"}.get(exc.errno or 0, "")
    return f"{where}: {reason}{advice}" if where else f"{reason}{advice}"


class FailureFunnel(typer.core.TyperGroup):
    """Every command runs through here: a failure becomes one line on stderr and an exit
    status (see :func:`describe_failure`), unless ``--debug`` asks for the traceback. Its
    commands' environment variables are named in their help texts (:mod:`help_text`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors: typer's own
            raise
        except BaseException as exc:  # the one place where failures are mapped
            if _debugging(ctx) or isinstance(exc, SystemExit | GeneratorExit):
                raise
            status, line = describe_failure(exc)
            # the line is text, not markup: a path or an extra in brackets stays as it is
            err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(status) from None


def _debugging(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("debug")) or os.environ.get(
        "BASKETRY_DEBUG", "").lower() in ("1", "true", "yes", "on")


def refuse(message: str) -> typer.Exit:
    """A refusal found by the CLI itself (e.g. two options that exclude each other)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)
