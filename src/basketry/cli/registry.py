"""`basketry models ...`: the model registry (MLflow) by hand: list, show, promote, roll back,
the doctor, registering a model trained elsewhere, and training a version again from its
recorded data (reproduce)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console
from basketry.cli.errors import EXIT_INCONSISTENT
from basketry.cli.options import DataStore, Overwrite, ReadOptions, RegisteredModel, option_groups

models_app = typer.Typer(help="The model registry (MLflow): versions, champion, rollback."
                         "\n\nStore: MLFLOW_TRACKING_URI, else $BASKETRY_HOME/mlflow.db."
                         "\n\nExamples:\n  basketry models list\n  basketry models promote 3",
                         no_args_is_help=True)


@models_app.command(name="list")
def models_list(name: RegisteredModel = "basketry") -> None:
    """The versions of the registered model, newest first.

    Example:
      basketry models list
    """
    from rich.table import Table

    from basketry.training.registry import MAIN_METRIC, list_versions

    rows = list_versions(name=name)
    table = Table(title=f"registered model {name}")
    for column in ("version", "aliases", "created (UTC)", "HR@10", "popularity HR@10", "gate"):
        table.add_column(column)
    for row in rows:
        value, popularity = row[MAIN_METRIC], row["popularity " + MAIN_METRIC]
        table.add_row(row["version"], ", ".join(row["aliases"]), row["created"],
                      "–" if value is None else f"{value:.4f}",
                      "–" if popularity is None else f"{popularity:.4f}",
                      "forced" if row["tags"].get("basketry.forced") == "true" else
                      "passed" if row["tags"].get("basketry.gate.passed") == "true" else
                      "not passed")
    console.print(table)


@models_app.command(name="show")
def models_show(version: Annotated[str, typer.Argument(help="Version number.")],
                name: RegisteredModel = "basketry") -> None:
    """One version as JSON: aliases, tags, run metrics, model directory.

    Example:
      basketry models show 3
    """
    from basketry.training.registry import show_version

    sys.stdout.write(json.dumps(show_version(version, name=name), indent=2) + "\n")


@models_app.command(name="promote")
def models_promote(version: Annotated[str, typer.Argument(help="Version number.")],
                   name: RegisteredModel = "basketry") -> None:
    """Make VERSION the champion by hand (recorded as forced; no gate).

    Example:
      basketry models promote 3
    """
    from basketry.training.registry import promote

    previous = promote(version, name=name)
    console.print(f"{name} champion: version {version}"
                  + (f" (was {previous})" if previous else ""))


@models_app.command(name="rollback")
def models_rollback(name: RegisteredModel = "basketry") -> None:
    """Point champion back at the previous champion.

    Example:
      basketry models rollback
    """
    from basketry.training.registry import rollback

    rolled_back, target = rollback(name=name)
    console.print(f"{name} champion: version {target} (rolled back from {rolled_back})")


@models_app.command(name="doctor")
def models_doctor(
    repair: Annotated[bool, typer.Option(
        "--repair", help="Repair what is found (idempotent); without it, only report.")] = False,
    name: RegisteredModel = "basketry",
) -> None:
    """Find half-finished registrations; --repair puts them in order.

    A killed train, promote or rollback can leave one. Exit 0: consistent; 3: problems left.

    Example:
      basketry models doctor --repair
    """
    from basketry.training.doctor import doctor

    report = doctor(name=name, repair=repair)
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.consistent else EXIT_INCONSISTENT)


@models_app.command(name="reproduce")
def models_reproduce(
    version: Annotated[str, typer.Argument(help="Version number.")],
    name: RegisteredModel = "basketry",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Keep the model trained again here (default: a temporary "
        "directory, removed).")] = None,
    overwrite: Overwrite = False,
    data_store: Annotated[str | None, typer.Option(
        "--data-store", help="Look for the snapshot in this data store (a folder or an fsspec "
        "URL) instead of where the run recorded it.")] = None,
) -> None:
    """Train VERSION again from its run's snapshot; compare the files.

    Exit 0: the same checksums; 3: a file differs.

    Example:
      basketry models reproduce 3
    """
    from basketry.cli.console import feedback
    from basketry.cli.targets import check_target
    from basketry.training.reproduce import reproduce

    if out is not None:
        check_target(out, overwrite=overwrite)
    with feedback() as live:
        result = reproduce(version, name=name, out=out, overwrite=overwrite,
                           data_store=data_store, progress=live.stage)
    snapshot = result.snapshot
    console.print(f"{name} version {result.version} (run {result.run_id}) trained again from "
                  f"{snapshot.url} ({snapshot.n_baskets:,} baskets, {snapshot.digest})",
                  highlight=False, soft_wrap=True)
    for check in result.files:
        verdict = "same" if check.same else "[bold red]different[/]"
        detail = (check.reproduced or "missing") if check.same else (
            f"registered {check.registered or 'missing'}, "
            f"reproduced {check.reproduced or 'missing'}")
        label = "manifest.json (without created_at)" if check.name == "manifest.json" \
            else check.name
        console.print(f"  {label}: {verdict} ({detail})", highlight=False, soft_wrap=True)
    if result.model_dir is not None:
        console.print(f"model trained again: {result.model_dir}", highlight=False)
    console.print("reproduced: the same checksums" if result.identical else
                  "[bold red]not reproduced[/]: the artifacts differ", highlight=False)
    raise typer.Exit(0 if result.identical else EXIT_INCONSISTENT)


@models_app.command(name="register")
@option_groups
def models_register(
    model: Annotated[Path, typer.Argument(help="Model directory saved by `basketry train "
                                          "--no-register`.")],
    data: Annotated[Path, typer.Argument(help="The transaction file it was trained from.")],
    name: RegisteredModel = "basketry",
    force: Annotated[bool, typer.Option(
        help="Promote to champion even if the gate says no (recorded).")] = False,
    tolerance: Annotated[float, typer.Option(
        help="How much worse than the champion on HR@10 a new model may be.")] = 0.005,
    record: Annotated[Path | None, typer.Option(
        "--record", help="Write the registration as JSON here (version, promoted, the "
        "gate's reasons).")] = None,
    read: ReadOptions = ReadOptions(),
    data_store: DataStore = None,
) -> None:
    """Register MODEL, trained elsewhere, through the promotion gate.

    DATA is split again as MODEL's training split it (refused if its training part is not the
    one MODEL was trained on), MODEL is measured on the test part, the run is recorded in
    MLflow with a snapshot of DATA, and the gate compares MODEL with the champion on that
    same test part.

    Example:
      basketry models register model data/sales.parquet --record reports/registration.json
    """
    from basketry.cli.console import feedback
    from basketry.cli.targets import check_target
    from basketry.cli.train import Printer, print_outcome
    from basketry.training.workflow import register_workflow

    if record is not None:
        check_target(record, overwrite=True, inputs=(data,), kind="record")
    with feedback() as live:
        outcome = register_workflow(model, data, read_options=read.reader_kwargs(),
                                    registered_model=name, force=force, tolerance=tolerance,
                                    data_store=data_store, record_out=record,
                                    events=Printer(live))
    print_outcome(outcome)
