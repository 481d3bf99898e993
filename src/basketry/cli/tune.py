"""`basketry tune`: a parameter sweep (:func:`basketry.training.workflow.tune_workflow`) as
nested MLflow runs, printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from basketry.cli.console import console, feedback
from basketry.cli.errors import refuse
from basketry.cli.options import (
    TRACKING,
    DataStore,
    EngineOptions,
    MiningOptions,
    Overwrite,
    ReadOptions,
    RegisteredModel,
    option_groups,
)
from basketry.cli.targets import check_target
from basketry.cli.train import Printer, print_registration

GRID_HELP = "KEY=V1,V2,... (repeatable; keys below)."


@option_groups
def tune(
    data: Annotated[Path, typer.Argument(help="Transaction file (basket lines, CSV or Parquet).")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help=GRID_HELP,
                                                    metavar="KEY=VALUES")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the best model (and its report) here.")] = None,
    test_days: Annotated[float | None, typer.Option(
        help="Test on the last N days (30).")] = None,
    test_fraction: Annotated[float | None, typer.Option(
        help="Or on a random share (0.2).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split.")] = 0,
    scoring: Annotated[str | None, typer.Option(
        help="Scoring where the grid sets none (default: tuned).")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Report PREFIX (default: OUT-report).", metavar="PREFIX")] = None,
    mining: MiningOptions = MiningOptions(),
    overwrite: Overwrite = False,
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Record the sweep in MLflow (a run per point).",
        envvar="BASKETRY_TRACK", rich_help_panel=TRACKING)] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="Register the best (needs tracking).",
        rich_help_panel=TRACKING)] = False,
    registered_model: RegisteredModel = "basketry",
    force: Annotated[bool, typer.Option(
        "--force", help="Promote despite the gate.", rich_help_panel=TRACKING)] = False,
    tolerance: Annotated[float, typer.Option(
        help="HR@10 the best may lose.", rich_help_panel=TRACKING)] = 0.005,
    read: ReadOptions = ReadOptions(),
    data_store: DataStore = None,
    engine: EngineOptions = EngineOptions(),
) -> None:
    """Sweep mining thresholds and scoring over a grid; keep the best.

    Each point is evaluated on a validation slice of the training part (HR@10); the best is
    refit and evaluated on the test part, optionally saved (--out) and registered through the
    promotion gate (--register). Every combination of the --grid values is a point.

    Grid keys:
      min_support, min_confidence, min_lift, max_p_value, max_len (mining)
      scoring (tuned, smoothed, one_scale, confidence, lift)
      prior_weight, combine (smoothed and one_scale scoring)

    Example:
      basketry tune sales.csv --grid min_support=0.005,0.01 --grid scoring=tuned,lift
    """
    from basketry.training.pipeline import mining_with
    from basketry.training.tracking import mlflow_available
    from basketry.training.tune import parse_grid
    from basketry.training.workflow import tune_workflow

    params = mining.miner_params()
    miners = engine.miners(say=console.print)  # an unknown engine refused before any work
    if track is None:
        track = mlflow_available()
    # the whole grid is checked before any run starts
    parsed = parse_grid(grid or [])
    points = parsed.points(params, scoring)
    if register and not track:
        raise refuse("--register needs tracking (MLflow, --track)")
    if test_days is not None and test_fraction is not None:
        raise refuse("give either --test-days or --test-fraction, not both")
    if out is not None:
        check_target(out, overwrite=overwrite, inputs=(data,))
    console.print(f"grid: {len(points)} point(s) over {', '.join(k for k, _ in parsed.axes)}",
                  highlight=False)
    with miners as factory, mining_with(factory), feedback() as live:
        outcome = tune_workflow(
            data, parsed, mining=params, read_options=read.reader_kwargs(), scoring=scoring,
            out=out, report=report, test_days=test_days, test_fraction=test_fraction,
            seed=seed, overwrite=overwrite, track=track, register=register,
            registered_model=registered_model, force=force, tolerance=tolerance,
            events=SweepPrinter(live), data_store=data_store)
    if outcome.run is not None:
        console.print(f"MLflow run {outcome.run.run_id} with {len(outcome.sweep.points)} "
                      f"nested runs ({outcome.run.uri})", highlight=False)
    if outcome.registration is not None:
        print_registration(outcome.registration)


class SweepPrinter(Printer):
    """The tune workflow's events: the sweep's table, then the best model as train's."""

    def swept(self, sweep: Any) -> None:
        self.live.stop()
        print_sweep(sweep)

    def saved(self, model_dir: Path, reports: tuple[Path, ...]) -> None:
        self.live.stop()
        console.print(f"best model saved to [bold]{model_dir}[/]; report: "
                      f"{', '.join(map(str, reports))}")


def print_sweep(sweep: Any) -> None:
    from rich.table import Table

    from basketry.training.tune import MINING_KEYS

    queries = sweep.validation["queries"]["n_queries"]
    table = Table(title=f"{len(sweep.points)} grid points on the validation slice "
                        f"({queries:,} queries), best first by HR@10")
    keys = [key for key, _ in sweep.grid.axes if key in MINING_KEYS]
    for name in ("#", *keys, "scoring", "rules", "HR@10", "NDCG@10", "kNN HR@10",
                 "pop. HR@10"):
        table.add_column(name, justify="left" if name == "scoring" else "right")

    def show(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    for outcome in sweep.ranked():
        point = outcome.point
        spec = outcome.scoring or (point.scoring if isinstance(point.scoring, dict) else None)
        scoring = ("tuned: " if point.scoring == "tuned" else "") + (spec["method"] if spec
                                                                      else "")
        if spec is not None:
            scoring += "".join(f" {k[0]}={v:g}" for k, v in spec.items() if k != "method")
        row = [f"{point.index}{' ★' if outcome is sweep.best else ''}",
               *(_grid_value(point.values.get(key, point.mining.get(key))) for key in keys),
               scoring, "–" if outcome.n_rules is None else f"{outcome.n_rules:,}",
               show(outcome.figure()), show(outcome.figure("ndcg@10")),
               show(outcome.figure(ranker="item_knn")) if outcome.ok else "",
               show(outcome.figure(ranker="popularity")) if outcome.ok else "FAILED"]
        table.add_row(*row)
    console.print(table)
    console.print("scoring: p = prior_weight, c = combine of smoothed, one_scale and "
                  "lift_product; tuned: the method, p and c chosen on the validation slice as "
                  "train does", highlight=False)
    for outcome in sweep.failed:
        console.print(f"point {outcome.point.index} FAILED: {outcome.reason}", highlight=False)
    console.print(f"best: point {sweep.best.point.index} ({sweep.best.point.label}); "
                  "refit on the whole training part, on the test part:", highlight=False)


def _grid_value(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
