"""`basketry train`: parse the options, run :func:`basketry.training.workflow.train_workflow`,
print what it reports. Also the printing the train, tune and demo commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from basketry.cli.console import Feedback, console, err_console, feedback, print_read_report
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


@option_groups
def train(
    data: Annotated[Path, typer.Argument(help="Transaction file (basket lines, CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.",
                                      envvar="BASKETRY_MODEL_DIR")],
    test_days: Annotated[float | None, typer.Option(
        help="Test on the last N days (30).")] = None,
    test_fraction: Annotated[float | None, typer.Option(
        help="Or on a random share (0.2).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split.")] = 0,
    scoring: Annotated[str | None, typer.Option(
        help="smoothed, one_scale, confidence or lift (default: tuned).")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Report PREFIX (default: OUT-report).", metavar="PREFIX")] = None,
    mining: MiningOptions = MiningOptions(),
    overwrite: Overwrite = False,
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Record the run in MLflow.",
        envvar="BASKETRY_TRACK", rich_help_panel=TRACKING)] = None,
    register: Annotated[bool | None, typer.Option(
        "--register/--no-register", help="Register a version (when tracking).",
        rich_help_panel=TRACKING)] = None,
    registered_model: RegisteredModel = "basketry",
    force: Annotated[bool, typer.Option(
        "--force", help="Promote despite the gate.",
        rich_help_panel=TRACKING)] = False,
    tolerance: Annotated[float, typer.Option(
        help="HR@10 a new model may lose.",
        rich_help_panel=TRACKING)] = 0.005,
    read: ReadOptions = ReadOptions(),
    data_store: DataStore = None,
    engine: EngineOptions = EngineOptions(),
    no_after_purchase: Annotated[bool, typer.Option(
        "--no-after-purchase", help="No sequential rules (mined when the data has "
        "customers and timestamps).")] = False,
    horizon_days: Annotated[float, typer.Option(
        help="Sequential rules' horizon.")] = 30.0,
) -> None:
    """Train and evaluate a model on DATA; save it with a report.

    DATA is split (the last days, or a random share), the training part mined, and the model
    compared on the test part with max-confidence, item-kNN, popularity and random.

    Examples:
      basketry train sales.csv -o model --preset online-retail --min-support 0.005
      basketry train baskets.dat -o model --test-fraction 0.2 --no-track
    """
    from basketry.training.pipeline import mining_with
    from basketry.training.tracking import mlflow_available
    from basketry.training.workflow import report_prefix, train_workflow

    params = mining.miner_params()
    miners = engine.miners(say=console.print)  # an unknown engine refused before any work
    prefix = report_prefix(out, report)
    if track is None:
        track = mlflow_available()
    if register is None:
        register = track
    if register and not track:
        raise refuse("--register needs tracking (MLflow, --track)")
    if test_days is not None and test_fraction is not None:
        raise refuse("give either --test-days or --test-fraction, not both")
    check_train_targets(data, out, prefix, overwrite=overwrite)
    with miners as factory, mining_with(factory), feedback() as live:
        outcome = train_workflow(
            data, out, mining=params, read_options=read.reader_kwargs(), report=prefix,
            test_days=test_days, test_fraction=test_fraction, seed=seed, scoring=scoring,
            overwrite=overwrite, track=track, register=register,
            registered_model=registered_model, force=force, tolerance=tolerance,
            events=Printer(live), data_store=data_store,
            after_purchase=not no_after_purchase, horizon_days=horizon_days)
    print_outcome(outcome)


def print_outcome(outcome: Any) -> None:
    """The MLflow run and the registration of a finished train workflow."""
    if outcome.run is not None:
        console.print(f"MLflow run {outcome.run.run_id} ({outcome.run.uri})", highlight=False)
    if outcome.registration is not None:
        print_registration(outcome.registration)


def check_train_targets(data: Path, out: Path, prefix: Path, *, overwrite: bool) -> None:
    """The model directory and both report files, refused before any work."""
    check_target(out, overwrite=overwrite, inputs=(data,))
    for suffix in (".json", ".html"):
        check_target(prefix.with_name(prefix.name + suffix), overwrite=True, inputs=(data,),
                     kind="report")


class Printer:
    """What the train and tune workflows report, printed: implements
    :class:`basketry.training.workflow.WorkflowEvents` without importing it (the training
    side is imported only when a command runs)."""

    def __init__(self, live: Feedback) -> None:
        self.live = live

    def stage(self, message: str) -> None:
        self.live.stage(message)

    def read(self, baskets: Any) -> None:
        self.live.stop()
        print_read_report(baskets)

    def sweep_progress(self, done: int, total: int, message: str) -> None:
        self.live.steps(done, total, message)

    def swept(self, sweep: Any) -> None:
        self.live.stop()

    def evaluated(self, result: Any) -> None:
        self.live.stop()
        print_evaluation(result)

    def saved(self, model_dir: Path, reports: tuple[Path, ...]) -> None:
        self.live.stop()
        console.print(f"model saved to [bold]{model_dir}[/]; report: "
                      f"{', '.join(map(str, reports))}")

    def run_failed(self, run: Any) -> None:
        self.live.stop()
        err_console.print(f"MLflow run {run.run_id} marked {run.status or 'FAILED'}",
                          highlight=False)


#: Rankers in words (the table's first column stays narrow enough for 80 columns).
RANKER_NAMES = {"model": "model", "max_confidence": "max-confidence", "item_knn": "item-kNN",
                "popularity": "popularity", "random": "random"}
#: The scoring methods in words.
SCORING_NAMES = {"smoothed": "smoothed confidence",
                 "one_scale": "smoothed confidence, on one scale with popular items",
                 "lift_product": "product of smoothed lifts", "confidence": "rule confidence",
                 "lift": "rule lift"}
_SETTING_NAMES = {"prior_weight": "prior weight", "combine": "evidence combination weight"}
#: The table's columns: header, metric, format; the last two only when the terminal is wide.
_METRICS = (("HR@1", "hit_rate@1", "{:.3f}"), ("HR@5", "hit_rate@5", "{:.3f}"),
            ("HR@10", "hit_rate@10", "{:.3f}"), ("NDCG@10", "ndcg@10", "{:.3f}"),
            ("MRR", "mrr", "{:.3f}"), ("coverage", "item_coverage", "{:.0%}"),
            ("fallback", "fallback_share", "{:.0%}"))
_NARROW = 76  # below this width, coverage and fallback are left out


def scoring_in_words(scoring: dict[str, Any], *, tuned: bool) -> str:
    """``{'method': 'smoothed', 'prior_weight': 10.0, 'combine': 0.01}`` -> ``smoothed
    confidence (prior weight 10, evidence combination 0.01)``."""
    method = str(scoring.get("method", ""))
    settings = [f"{_SETTING_NAMES.get(name, name)} {value:g}" if isinstance(value, int | float)
                else f"{_SETTING_NAMES.get(name, name)} {value}"
                for name, value in scoring.items() if name != "method"]
    words = SCORING_NAMES.get(method, method) + (f" ({', '.join(settings)})" if settings else "")
    return words + ("; tuned on a validation slice of the training part" if tuned else "")


def print_evaluation(result: Any) -> None:
    from rich import box
    from rich.table import Table

    split, queries = result.split.describe(), result.queries.describe()
    metrics = _METRICS if console.width >= _NARROW else _METRICS[:-2]
    # a simple box: the vertical rules would push the last columns past 80 characters
    table = Table(title=f"hide-one evaluation: {queries['n_queries']:,} queries from "
                        f"{queries['n_eligible_baskets']:,} test baskets ({split['method']} split)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ranker", no_wrap=True)
    for header, _, _ in metrics:
        table.add_column(header, justify="right", no_wrap=True)
    for ranker, values in result.metrics.items():
        table.add_row(RANKER_NAMES.get(ranker, ranker),
                      *("–" if values.get(name) is None else form.format(values[name])
                        for _, name, form in metrics))
    console.print(table)
    tuned = getattr(result, "tuning", None) is not None
    console.print(f"scoring: {scoring_in_words(result.scoring, tuned=tuned)}",
                  highlight=False)
    # said plainly when a baseline beats the rules on this data
    for sentence in result.report.get("verdict") or ():
        console.print(f"[bold yellow]note:[/] {sentence}", highlight=False)
    print_after_purchase(result.report.get("after_purchase"))


#: The after-the-purchase rankers as the table names them.
NEXT_ORDER_NAMES = {"sequential": "sequential + buy again", "own_frequent": "own most frequent",
                    "co_purchase": "co-purchase, last order", "popularity": "popularity"}


def print_after_purchase(after: dict[str, Any] | None) -> None:
    """The next-order evaluation (the moment after the purchase), or why there is none."""
    from rich import box
    from rich.table import Table

    if not after:
        return
    if "skipped" in after:
        console.print(f"after the purchase: not evaluated ({after['skipped']})", highlight=False)
        return
    columns = (("HR@1", "hit_rate@1"), ("HR@5", "hit_rate@5"), ("HR@10", "hit_rate@10"),
               ("recall@10", "recall@10"))
    table = Table(title=f"after the purchase: the next order of {after['n_cases']:,} customers",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ranker", no_wrap=True)
    for header, _ in columns:
        table.add_column(header, justify="right", no_wrap=True)
    for ranker, values in after["metrics"].items():
        table.add_row(NEXT_ORDER_NAMES.get(ranker, ranker),
                      *("–" if values.get(name) is None else f"{values[name]:.3f}"
                        for _, name in columns))
    console.print(table)
    for sentence in after.get("verdict") or ():
        console.print(f"[bold yellow]note:[/] {sentence}", highlight=False)


def print_registration(registration: Any) -> None:
    for repaired in registration.repaired:
        err_console.print(f"[bold yellow]note:[/] put back a half-finished registration of a "
                          f"killed process: {repaired}", highlight=False, soft_wrap=True)
    decision = registration.decision
    verdict = ("promoted to [bold]champion[/]" + (" (forced)" if decision.forced else "")
               if decision.promote else "stays [bold]challenger[/], not promoted")
    console.print(f"registered {registration.name} version {registration.version}: "
                  f"{verdict}: {decision.summary()}")
