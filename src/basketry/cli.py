"""The `basketry` command: the composition root that wires the data, mining, model and serving
packages together (the only module allowed to import both sides)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    "basketry.training.tracking.TrackingError",
    "basketry.training.tune.GridError",
    "basketry.training.tune.SweepError",
    "basketry.serving.settings.SettingsError",
})


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


class _FailureFunnel(typer.core.TyperGroup):
    """Every command runs through here: a failure becomes one line on stderr and an exit
    status (see :func:`describe_failure`), unless ``--debug`` asks for the traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors: typer's own
            raise
        except BaseException as exc:  # the one place where failures are mapped
            if _debugging(ctx) or isinstance(exc, SystemExit | GeneratorExit):
                raise
            status, line = describe_failure(exc)
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
            raise typer.Exit(status) from None


def _debugging(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("debug")) or os.environ.get(
        "BASKETRY_DEBUG", "").lower() in ("1", "true", "yes", "on")


app = typer.Typer(
    name="basketry",
    help="Association rules from transaction histories, from raw sales to a served model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_FailureFunnel,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of a failure. Env: BASKETRY_DEBUG.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


def _refuse(message: str) -> typer.Exit:
    """A refusal found by the CLI itself (e.g. two options that exclude each other)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def _progress(description: str) -> Iterator[Callable[[float], None]]:
    """A rich progress bar fed by a fraction-done callback (silent when not on a terminal)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=1.0)
        yield lambda fraction: bar.update(task, completed=min(max(fraction, 0.0), 1.0))


def parse_support(text: str) -> float | int:
    """``"25"`` is an absolute count, ``"0.01"`` or ``"1.0"`` a fraction (so ``1`` is never
    ambiguous: an integer is a count, a number with a point or exponent is a fraction)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint="--min-support") from None


def _split(value: str | None) -> list[str] | None:
    return None if not value else [v.strip() for v in value.split(",") if v.strip()]


# Options shared by every command that reads transaction data
Format = Annotated[str, typer.Option("--format", help="auto | basket | long-csv | long-parquet",
                                     envvar="BASKETRY_FORMAT")]
TransactionCol = Annotated[str | None, typer.Option(help="Transaction id column (long tables).")]
ItemCol = Annotated[str | None, typer.Option(help="Item column (long tables).")]
TimestampCol = Annotated[str | None, typer.Option(help="Timestamp column (optional).")]
CustomerCol = Annotated[str | None, typer.Option(help="Customer column (optional).")]
QuantityCol = Annotated[str | None, typer.Option(help="Quantity column; rows <= 0 are dropped.")]
LabelCol = Annotated[str | None, typer.Option(help="Item description column (optional).")]
Sep = Annotated[str | None, typer.Option(
    help="Item separator (basket lines) or field delimiter (long CSV): one character; "
         "\\t for a tab.")]
TimestampFormat = Annotated[str | None, typer.Option(
    help="strftime format of the timestamps, e.g. '%d/%m/%Y %H:%M' (default: guessed from "
         "the first value, then applied to every row).")]
Preset = Annotated[str | None, typer.Option(help="Column preset, e.g. online-retail.")]

# Options shared by every command that mines (mine, train)
MinSupport = Annotated[str, typer.Option(
    help="A fraction of baskets in (0, 1] written with a point (0.01, 1.0), or an absolute "
         "basket count written as an integer (25).", envvar="BASKETRY_MIN_SUPPORT")]
MinConfidence = Annotated[float, typer.Option(help="In [0, 1].", envvar="BASKETRY_MIN_CONFIDENCE")]
MinLift = Annotated[float | None, typer.Option(help="Keep rules with lift >= this.")]
MaxPValue = Annotated[float | None, typer.Option(
    help="Keep rules whose one-sided Fisher p-value is <= this.")]
MaxLen = Annotated[int | None, typer.Option(help="Longest itemset mined.")]
Algorithm = Annotated[str, typer.Option(help="fpgrowth | apriori")]
Consequents = Annotated[str | None, typer.Option(
    help="Comma-separated items allowed as consequents.")]
Antecedents = Annotated[str | None, typer.Option(
    help="Comma-separated items allowed in antecedents.")]
Exclude = Annotated[str | None, typer.Option(help="Comma-separated items to ignore.")]
MultiConsequent = Annotated[bool, typer.Option(
    help="Also rules with several items in the consequent.")]
MaxItemsets = Annotated[int | None, typer.Option(help="Stop with advice past this many itemsets.")]
MaxRules = Annotated[int | None, typer.Option(help="Stop with advice past this many rules.")]
MemoryBudget = Annotated[str | None, typer.Option(
    help="Memory mining may use, e.g. 4G or 512M, or off (default: half of what the machine, "
         "cgroup and rlimits leave); sets the default --max-itemsets and --max-rules.",
    envvar="BASKETRY_MEMORY_BUDGET")]
Jobs = Annotated[int | None, typer.Option(
    "--jobs", "-j", help="Threads FP-Growth uses (default: one per core); never changes a result.",
    envvar="BASKETRY_JOBS")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing model dir.")]
def _registered_model_name(name: str) -> str:
    """Checked before any work, so that a bad name never fails after a model was written (a
    RegistryError: one line through the failure funnel)."""
    from basketry.training.registry import check_model_name

    check_model_name(name)
    return name


RegisteredModel = Annotated[str, typer.Option("--registered-model", "-m",
                                              help="Registered model name.",
                                              envvar="BASKETRY_REGISTERED_MODEL",
                                              callback=_registered_model_name)]


def check_target(out: Path, *, overwrite: bool, inputs: tuple[Path, ...] = (),
                 kind: str = "model directory") -> None:
    """Refuse, before any work, an output that cannot or must not be written: a file where a
    directory goes (or the reverse), a path under a file, an existing target without
    ``--overwrite``, one that ``--overwrite`` may not replace (not a basketry model directory),
    or a target that is or holds an input."""
    from basketry.model import ModelError, check_model_target

    target = out.expanduser().absolute()
    for source in inputs:
        source = source.expanduser().absolute()
        if source == target:
            raise ModelError(f"--out {out} is the input; write the {kind} elsewhere")
        if target in source.parents:
            raise ModelError(f"--out {out} holds the input {source}; write the {kind} elsewhere")
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ModelError(f"--out {out}: {ancestor} is a file, not a directory")
    if not target.exists() and not target.is_symlink():
        return
    if kind == "model directory":
        if not target.is_dir():
            raise ModelError(f"--out {out} is a file, not a {kind}")
        if any(target.iterdir()) and not overwrite:
            raise ModelError(f"{out} already exists; pass --overwrite to replace it")
        check_model_target(target, overwrite=overwrite)  # the contract's rule for --overwrite
    elif target.is_dir():
        raise ModelError(f"--out {out} is a directory; give a file path")
    elif not overwrite:
        raise ModelError(f"{out} already exists; pass --overwrite to replace it")


def _read(data: Path, **options: Any):  # -> Baskets
    from basketry.data import read_baskets

    with console.status(f"reading {data}"):
        return read_baskets(data, **{k: v for k, v in options.items() if v is not None})


@app.command()
def mine(
    data: Annotated[Path, typer.Argument(help="Transaction file (basket lines, CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.",
                                      envvar="BASKETRY_MODEL_DIR")],
    min_support: MinSupport = "0.01",
    min_confidence: MinConfidence = 0.1,
    min_lift: MinLift = None,
    max_p_value: MaxPValue = None,
    max_len: MaxLen = None,
    algorithm: Algorithm = "fpgrowth",
    consequents: Consequents = None,
    antecedents: Antecedents = None,
    exclude: Exclude = None,
    multi_consequent: MultiConsequent = False,
    max_itemsets: MaxItemsets = None,
    max_rules: MaxRules = None,
    memory_budget: MemoryBudget = None,
    jobs: Jobs = None,
    overwrite: Overwrite = False,
    fmt: Format = "auto",
    transaction_col: TransactionCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    timestamp_format: TimestampFormat = None,
    customer_col: CustomerCol = None,
    quantity_col: QuantityCol = None,
    label_col: LabelCol = None,
    sep: Sep = None,
    preset: Preset = None,
) -> None:
    """Read, validate and mine DATA; save the rules as a model directory."""
    from basketry.mining import AssociationMiner
    from basketry.training import save_model

    support = parse_support(str(min_support))
    check_target(out, overwrite=overwrite, inputs=(data,))
    started = time.perf_counter()
    baskets = _read(data, format=fmt, transaction_col=transaction_col, item_col=item_col,
                    timestamp_col=timestamp_col, timestamp_format=timestamp_format,
                    customer_col=customer_col, quantity_col=quantity_col, label_col=label_col,
                sep=sep, preset=preset)
    _print_read_report(baskets)
    miner = AssociationMiner(
        min_support=support, min_confidence=min_confidence, min_lift=min_lift,
        max_p_value=max_p_value, max_len=max_len, algorithm=algorithm,
        consequents=_split(consequents), antecedents=_split(antecedents),
        exclude=_split(exclude), multi_consequent=multi_consequent,
        max_itemsets=max_itemsets, max_rules=max_rules, memory_budget=memory_budget,
        n_jobs=jobs,
    )
    with _progress("mining") as progress:
        miner.fit(baskets, progress=progress)
    path = save_model(out, miner, baskets, overwrite=overwrite)
    elapsed = time.perf_counter() - started
    console.print(
        f"mined {len(miner.frequent_itemsets_):,} frequent itemsets and "
        f"{len(miner.rules_arrays_):,} rules "
        f"(min count {miner.min_count_:,} of {miner.n_baskets_:,} baskets) in {elapsed:.2f} s"
    )
    console.print(f"model saved to [bold]{path}[/]")


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Transaction file (basket lines, CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.",
                                      envvar="BASKETRY_MODEL_DIR")],
    test_days: Annotated[float | None, typer.Option(
        help="Time split: test on the last N days, train before (default 30 with timestamps).",
    )] = None,
    test_fraction: Annotated[float | None, typer.Option(
        help="Seeded random split: this share of baskets is the test part (default 0.2 "
             "without timestamps).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split and query sampling.")] = 0,
    scoring: Annotated[str | None, typer.Option(
        help="Scoring method (smoothed | confidence | lift) with its default parameters; "
             "default: smoothed, tuned on a validation slice of the training part.")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Report path prefix: writes PREFIX.json and PREFIX.html "
             "(default: OUT-report next to the model).")] = None,
    min_support: MinSupport = "0.01",
    min_confidence: MinConfidence = 0.1,
    min_lift: MinLift = None,
    max_p_value: MaxPValue = None,
    max_len: MaxLen = None,
    algorithm: Algorithm = "fpgrowth",
    consequents: Consequents = None,
    antecedents: Antecedents = None,
    exclude: Exclude = None,
    multi_consequent: MultiConsequent = False,
    max_itemsets: MaxItemsets = None,
    max_rules: MaxRules = None,
    memory_budget: MemoryBudget = None,
    overwrite: Overwrite = False,
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Record the run in MLflow (default: when MLflow is "
        "installed). Env: BASKETRY_TRACK.", envvar="BASKETRY_TRACK")] = None,
    register: Annotated[bool | None, typer.Option(
        "--register/--no-register", help="Register the model as a new version and apply the "
        "promotion gate (default: when tracking).")] = None,
    registered_model: RegisteredModel = "basketry",
    force: Annotated[bool, typer.Option(
        help="Promote to champion even if the gate says no (recorded).")] = False,
    tolerance: Annotated[float, typer.Option(
        help="How much worse than the champion on HR@10 a new model may be.")] = 0.005,
    fmt: Format = "auto",
    transaction_col: TransactionCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    timestamp_format: TimestampFormat = None,
    customer_col: CustomerCol = None,
    quantity_col: QuantityCol = None,
    label_col: LabelCol = None,
    sep: Sep = None,
    preset: Preset = None,
) -> None:
    """Split DATA, mine the training part, evaluate on the test part against popularity,
    max-confidence and random baselines; save the model (metrics in its manifest) and a
    report (terminal table, JSON, HTML)."""
    from basketry.model import scoring_spec
    from basketry.training.tracking import TrainingRun, mlflow_available

    support = parse_support(str(min_support))
    prefix = report or out.with_name(out.name + "-report")
    if track is None:
        track = mlflow_available()
    if register is None:
        register = track
    if register and not track:
        raise _refuse("--register needs tracking (MLflow, --track)")
    if test_days is not None and test_fraction is not None:
        raise _refuse("give either --test-days or --test-fraction, not both")
    check_target(out, overwrite=overwrite, inputs=(data,))
    for suffix in (".json", ".html"):
        check_target(prefix.with_name(prefix.name + suffix), overwrite=True, inputs=(data,),
                     kind="report")
    run: Any = None
    spec = None if scoring is None else scoring_spec(scoring)
    run = TrainingRun(run_name=out.name) if track else None
    if run is not None:
        run.__enter__()
    try:
        registration = _train_run(
            run, data, out, prefix, spec, seed, test_days, test_fraction, overwrite,
            register, registered_model, force, tolerance, dict(
                format=fmt, transaction_col=transaction_col, item_col=item_col,
                timestamp_col=timestamp_col, timestamp_format=timestamp_format,
                customer_col=customer_col, quantity_col=quantity_col, label_col=label_col,
                sep=sep, preset=preset),
            dict(min_support=support, min_confidence=min_confidence, min_lift=min_lift,
                 max_p_value=max_p_value, max_len=max_len, algorithm=algorithm,
                 consequents=_split(consequents), antecedents=_split(antecedents),
                 exclude=_split(exclude), multi_consequent=multi_consequent,
                 max_itemsets=max_itemsets, max_rules=max_rules,
                 memory_budget=memory_budget))
    except BaseException as exc:
        if run is not None:
            run.__exit__(type(exc), exc, exc.__traceback__)
            err_console.print(f"MLflow run {run.run_id} marked {run.status or 'FAILED'}",
                              highlight=False)
        raise
    if run is not None:
        run.__exit__(None, None, None)
    if run is not None:
        console.print(f"MLflow run {run.run_id} ({run.uri})", highlight=False)
    if registration is not None:
        _print_registration(registration)


def _train_run(run: Any, data: Path, out: Path, prefix: Path, spec: Any, seed: int,
               test_days: float | None, test_fraction: float | None, overwrite: bool,
               register: bool, registered_model: str, force: bool, tolerance: float,
               read_options: dict[str, Any], params: dict[str, Any]) -> Any:
    """The body of ``train``: read, train, evaluate, save, report; track and register when
    ``run`` is an MLflow run. Returns the registration (or ``None``)."""
    from basketry.model import read_manifest
    from basketry.training import save_trained, train_and_evaluate, write_report

    started = time.perf_counter()
    baskets = _read(data, **read_options)
    _print_read_report(baskets)
    with console.status("training") as status:
        result = train_and_evaluate(
            baskets, params, test_days=test_days, test_fraction=test_fraction, seed=seed,
            scoring=spec, progress=lambda message: status.update(message))
    path = save_trained(out, result, overwrite=overwrite)
    result.report["model_version"] = read_manifest(path)["model_version"]
    result.report["seconds"] = round(time.perf_counter() - started, 3)
    json_path, html_path = write_report(result.report, prefix)
    _print_evaluation(result)
    console.print(f"model saved to [bold]{path}[/]; report: {json_path}, {html_path}")
    if run is None:
        return None
    with console.status("tracking"):
        run.log_training(result, params, path, (json_path, html_path), data=data)
    if not register:
        return None
    from basketry.training.registry import register as register_version

    with console.status("registering"):
        return register_version(run, result, name=registered_model, tolerance=tolerance,
                                force=force)


def _print_evaluation(result: Any) -> None:
    split, queries = result.split.describe(), result.queries.describe()
    table = Table(title=f"hide-one evaluation: {queries['n_queries']:,} queries from "
                        f"{queries['n_eligible_baskets']:,} test baskets ({split['method']} split)")
    columns = ("hit_rate@1", "hit_rate@5", "hit_rate@10", "ndcg@10", "mrr", "item_coverage",
               "fallback_share")
    table.add_column("ranker")
    for name in ("HR@1", "HR@5", "HR@10", "NDCG@10", "MRR", "coverage", "fallback"):
        table.add_column(name, justify="right")
    for ranker, metrics in result.metrics.items():
        table.add_row(ranker, *("–" if metrics.get(c) is None else f"{metrics[c]:.4f}"
                                for c in columns))
    console.print(table)
    console.print(f"scoring: {result.scoring}", highlight=False)


# ---- tune: a parameter sweep as nested MLflow runs (basketry.training.tune) ------------------
GRID_HELP = (
    "KEY=V1,V2,... one key per option, repeatable; every combination is a point. Keys: "
    "min_support, min_confidence, min_lift, max_p_value, max_len (mining), scoring "
    "(tuned | smoothed | confidence | lift), prior_weight, combine (smoothed scoring). "
    "E.g. --grid min_support=0.005,0.01 --grid scoring=tuned,confidence")


@app.command()
def tune(
    data: Annotated[Path, typer.Argument(help="Transaction file (basket lines, CSV or Parquet).")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help=GRID_HELP)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the best model (and its report) here.")] = None,
    test_days: Annotated[float | None, typer.Option(
        help="Time split: test on the last N days (default 30 with timestamps).")] = None,
    test_fraction: Annotated[float | None, typer.Option(
        help="Seeded random split: this share of baskets is the test part.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split and query sampling.")] = 0,
    scoring: Annotated[str | None, typer.Option(
        help="Scoring of points the grid does not set: tuned (default) | smoothed | "
             "confidence | lift.")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Report path prefix (default: OUT-report next to the model).")] = None,
    min_support: MinSupport = "0.01",
    min_confidence: MinConfidence = 0.1,
    min_lift: MinLift = None,
    max_p_value: MaxPValue = None,
    max_len: MaxLen = None,
    algorithm: Algorithm = "fpgrowth",
    consequents: Consequents = None,
    antecedents: Antecedents = None,
    exclude: Exclude = None,
    multi_consequent: MultiConsequent = False,
    max_itemsets: MaxItemsets = None,
    max_rules: MaxRules = None,
    memory_budget: MemoryBudget = None,
    overwrite: Overwrite = False,
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Record the sweep in MLflow: a parent run, a nested run per "
        "point (default: when MLflow is installed).", envvar="BASKETRY_TRACK")] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="Register the best as a new version through the "
        "promotion gate (needs tracking).")] = False,
    registered_model: RegisteredModel = "basketry",
    force: Annotated[bool, typer.Option(
        help="Promote the best to champion even if the gate says no (recorded).")] = False,
    tolerance: Annotated[float, typer.Option(
        help="How much worse than the champion on HR@10 the best may be.")] = 0.005,
    fmt: Format = "auto",
    transaction_col: TransactionCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    timestamp_format: TimestampFormat = None,
    customer_col: CustomerCol = None,
    quantity_col: QuantityCol = None,
    label_col: LabelCol = None,
    sep: Sep = None,
    preset: Preset = None,
) -> None:
    """Sweep mining thresholds and the scoring rule over a grid: each point evaluated on a
    validation slice of the training part (HR@10), the best refit and evaluated on the test
    part; optionally saved (--out) and registered through the promotion gate (--register)."""
    from basketry.training.tracking import TrainingRun, mlflow_available
    from basketry.training.tune import SOURCE, SweepError, parse_grid

    support = parse_support(str(min_support))
    mining = dict(min_support=support, min_confidence=min_confidence, min_lift=min_lift,
                  max_p_value=max_p_value, max_len=max_len, algorithm=algorithm,
                  consequents=_split(consequents), antecedents=_split(antecedents),
                  exclude=_split(exclude), multi_consequent=multi_consequent,
                  max_itemsets=max_itemsets, max_rules=max_rules, memory_budget=memory_budget)
    if track is None:
        track = mlflow_available()

    # the whole grid is checked before any run starts
    parsed = parse_grid(grid or [])
    points = parsed.points(mining, scoring)
    if register and not track:
        raise _refuse("--register needs tracking (MLflow, --track)")
    if test_days is not None and test_fraction is not None:
        raise _refuse("give either --test-days or --test-fraction, not both")
    if out is not None:
        check_target(out, overwrite=overwrite, inputs=(data,))
    console.print(f"grid: {len(points)} point(s) over {', '.join(k for k, _ in parsed.axes)}",
                  highlight=False)
    parent: Any = None
    if track:
        parent = TrainingRun(run_name=out.name if out else "tune", source=SOURCE)
        parent.__enter__()
    try:
        sweep, registration = _tune_run(
            parent, data, parsed, mining, scoring, out, report, seed, test_days,
            test_fraction, overwrite, register, registered_model, force, tolerance, dict(
                format=fmt, transaction_col=transaction_col, item_col=item_col,
                timestamp_col=timestamp_col, timestamp_format=timestamp_format,
                customer_col=customer_col, quantity_col=quantity_col, label_col=label_col,
                sep=sep, preset=preset))
    except SweepError as exc:
        if parent is None:
            raise
        parent.__exit__(type(exc), exc, exc.__traceback__)
        raise SweepError(f"{exc}; MLflow run marked {parent.status or 'FAILED'}") from None
    except BaseException as exc:
        if parent is not None:
            parent.__exit__(type(exc), exc, exc.__traceback__)
            err_console.print(f"MLflow run {parent.run_id} marked {parent.status or 'FAILED'}",
                              highlight=False)
        raise
    if parent is not None:
        parent.__exit__(None, None, None)
    if parent is not None:
        console.print(f"MLflow run {parent.run_id} with {len(sweep.points)} nested runs "
                      f"({parent.uri})", highlight=False)
    if registration is not None:
        _print_registration(registration)


def _tune_run(parent: Any, data: Path, grid: Any, mining: dict[str, Any], scoring: str | None,
              out: Path | None, report: Path | None, seed: int, test_days: float | None,
              test_fraction: float | None, overwrite: bool, register: bool,
              registered_model: str, force: bool, tolerance: float,
              read_options: dict[str, Any]) -> tuple[Any, Any]:
    """The body of ``tune``: read, sweep, show, save the best (``out``, or a temporary
    directory to register it), log and register. Returns (the sweep, the registration)."""
    import tempfile

    from basketry.model import read_manifest
    from basketry.training import save_trained, write_report
    from basketry.training.tune import log_sweep, run_sweep

    baskets = _read(data, **read_options)
    _print_read_report(baskets)
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} points"), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("sweep", total=None)
        sweep = run_sweep(
            baskets, grid, mining, scoring=scoring, test_days=test_days,
            test_fraction=test_fraction, seed=seed, parent=parent,
            progress=lambda done, total, message: bar.update(
                task, completed=done, total=total, description=message))
    _print_sweep(sweep)
    result = sweep.result
    _print_evaluation(result)
    with tempfile.TemporaryDirectory(prefix="basketry-tune-") as tmp:
        path = reports = None
        if out is not None or register:
            target = out if out is not None else Path(tmp) / "best"
            path = save_trained(target, result, overwrite=overwrite)
            result.report["model_version"] = read_manifest(path)["model_version"]
            reports = write_report(result.report, report or target.with_name(
                target.name + "-report"))
            if out is not None:
                console.print(f"best model saved to [bold]{path}[/]; report: "
                              f"{', '.join(map(str, reports))}")
        if parent is None:
            return sweep, None
        with console.status("tracking"):
            log_sweep(parent, sweep)
            if path is not None:
                parent.log_training(result, sweep.best.point.mining, path, reports or (),
                                    data=data)
            else:
                parent.log_result(result, sweep.best.point.mining, data=data)
        if not register:
            return sweep, None
        from basketry.training.registry import register as register_version

        with console.status("registering"):
            return sweep, register_version(parent, result, name=registered_model,
                                           tolerance=tolerance, force=force)


def _print_sweep(sweep: Any) -> None:
    from basketry.training.tune import MINING_KEYS

    queries = sweep.validation["queries"]["n_queries"]
    table = Table(title=f"{len(sweep.points)} grid points on the validation slice "
                        f"({queries:,} queries), best first by HR@10")
    keys = [key for key, _ in sweep.grid.axes if key in MINING_KEYS]
    for name in ("#", *keys, "scoring", "rules", "HR@10", "NDCG@10", "pop. HR@10"):
        table.add_column(name, justify="left" if name == "scoring" else "right")

    def show(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    for outcome in sweep.ranked():
        point = outcome.point
        spec = outcome.scoring or (point.scoring if isinstance(point.scoring, dict) else None)
        scoring = "tuned" if point.scoring == "tuned" else spec["method"] if spec else ""
        if spec is not None:
            scoring += "".join(f" {k[0]}={v:g}" for k, v in spec.items() if k != "method")
        row = [f"{point.index}{' ★' if outcome is sweep.best else ''}",
               *(_grid_value(point.values.get(key, point.mining.get(key))) for key in keys),
               scoring, "–" if outcome.n_rules is None else f"{outcome.n_rules:,}",
               show(outcome.figure()), show(outcome.figure("ndcg@10")),
               show(outcome.figure(ranker="popularity")) if outcome.ok else "FAILED"]
        table.add_row(*row)
    console.print(table)
    console.print("scoring: p = prior_weight, c = combine of smoothed; tuned: smoothed with p "
                  "and c chosen on the validation slice as train does", highlight=False)
    for outcome in sweep.failed:
        console.print(f"point {outcome.point.index} FAILED: {outcome.reason}", highlight=False)
    console.print(f"best: point {sweep.best.point.index} ({sweep.best.point.label}); "
                  "refit on the whole training part, on the test part:", highlight=False)


def _grid_value(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _print_registration(registration: Any) -> None:
    for repaired in registration.repaired:
        err_console.print(f"[bold yellow]note:[/] put back a half-finished registration of a "
                          f"killed process: {repaired}", highlight=False, soft_wrap=True)
    decision = registration.decision
    verdict = ("promoted to [bold]champion[/]" + (" (forced)" if decision.forced else "")
               if decision.promote else "stays [bold]challenger[/], not promoted")
    console.print(f"registered {registration.name} version {registration.version}: "
                  f"{verdict}: {decision.summary()}")


def _print_read_report(baskets: Any) -> None:
    report = baskets.report
    dropped = {k: v for k, v in report.items() if k.startswith(("dropped", "duplicate", "empty"))
               and v}
    console.print(
        f"read {baskets.n_baskets:,} baskets over {baskets.n_items:,} items from {baskets.source}"
        + (f" (dropped: {', '.join(f'{k}={v:,}' for k, v in dropped.items())})" if dropped else "")
    )


def _rules_frame(model_dir: Path):  # -> pandas.DataFrame with item strings
    import pandas as pd

    from basketry.model import read_artifact

    artifact = read_artifact(model_dir)
    items = artifact.items.column("item").to_pylist()
    frame = artifact.rules.to_pandas()
    for side in ("antecedent", "consequent"):
        frame[side] = [tuple(items[i] for i in ids) for ids in frame[side]]
    return pd.DataFrame(frame), artifact


@app.command()
def rules(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    sort: Annotated[str, typer.Option(help="Measure to sort by (descending).")] = "lift",
    top: Annotated[int, typer.Option(min=1, help="How many rules to show.")] = 20,
    item: Annotated[str | None, typer.Option(help="Only rules that mention this item.")] = None,
    output: Annotated[str, typer.Option("--output", help="table | csv | json")] = "table",
) -> None:
    """Show the rules of a model, strongest first."""
    if output not in ("table", "csv", "json"):
        raise typer.BadParameter(f"{output!r}: choose table, csv or json", param_hint="--output")
    frame, artifact = _rules_frame(model_dir)
    if sort not in frame.columns or sort in ("antecedent", "consequent"):
        measures = [c for c in frame.columns if c not in ("antecedent", "consequent")]
        raise typer.BadParameter(f"cannot sort by {sort!r}; choose one of {measures}",
                                 param_hint="--sort")
    if item is not None:
        mask = [item in a or item in c for a, c in zip(frame.antecedent, frame.consequent,
                                                       strict=True)]
        frame = frame[mask]
    frame = frame.sort_values([sort, "count"], ascending=False, kind="stable").head(top)
    if output == "csv":
        frame.to_csv(sys.stdout, index=False)
        return
    if output == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
        return
    labels = dict(zip(artifact.items.column("item").to_pylist(),
                      artifact.items.column("label").to_pylist(), strict=True))
    table = Table(title=f"{len(frame)} rules of model {artifact.version} by {sort}")
    for name in ("antecedent", "consequent", "support", "confidence", "lift", "p_value"):
        table.add_column(name, justify="left" if name.endswith("ent") else "right")

    def show(items: tuple[str, ...]) -> str:
        return ", ".join(f"{i} ({labels[i]})" if labels.get(i) else i for i in items)

    for row in frame.itertuples():
        table.add_row(show(row.antecedent), show(row.consequent), f"{row.support:.4f}",
                      f"{row.confidence:.3f}", f"{row.lift:.2f}", f"{row.p_value:.2g}")
    console.print(table)


@app.command()
def recommend(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    items: Annotated[list[str], typer.Argument(help="Items in the basket.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many recommendations.")] = 5,
) -> None:
    """Recommend items to add to a basket, with the rule behind each."""
    from basketry.model import load_model

    model = load_model(model_dir)
    _print_recommendations(model.recommend(items, k=k), items)


def _print_recommendations(result: Any, basket: list[str]) -> None:
    table = Table(title=f"basket {basket} -> top {len(result.items)}")
    for name in ("item", "label", "score", "because"):
        table.add_column(name)
    for rec in result.items:
        because = ("popular item (fallback)" if rec.rule is None else
                   f"{{{', '.join(rec.rule.antecedent)}}} -> {rec.item}: "
                   f"confidence {rec.rule.confidence:.2f}, lift {rec.rule.lift:.1f}")
        table.add_row(rec.item, rec.label or "", f"{rec.score:.3f}", because)
    console.print(table)
    if result.unknown:
        console.print(f"unknown items ignored: {', '.join(result.unknown)}")


@app.command(name="profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="Transaction file.")],
    fmt: Format = "auto",
    transaction_col: TransactionCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    timestamp_format: TimestampFormat = None,
    customer_col: CustomerCol = None,
    quantity_col: QuantityCol = None,
    label_col: LabelCol = None,
    sep: Sep = None,
    preset: Preset = None,
) -> None:
    """Validate DATA and print its profile and fingerprint as JSON."""
    from basketry.data import profile

    baskets = _read(data, format=fmt, transaction_col=transaction_col, item_col=item_col,
                    timestamp_col=timestamp_col, timestamp_format=timestamp_format,
                    customer_col=customer_col, quantity_col=quantity_col, label_col=label_col,
                sep=sep, preset=preset)
    sys.stdout.write(json.dumps(profile(baskets), indent=2, default=str) + "\n")


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="File to write (.parquet, .csv or .dat).")],
    baskets: Annotated[int, typer.Option(help="Number of baskets.")] = 1_000_000,
    items: Annotated[int, typer.Option(help="Catalogue size.")] = 100_000,
    mean_size: Annotated[float, typer.Option(help="Mean number of random items per basket.")] = 8.0,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of item popularity.")] = 1.0,
    zipf_offset: Annotated[float, typer.Option(
        help="Zipf-Mandelbrot offset: weight 1 / (rank + offset) ** exponent.")] = 10.0,
    patterns: Annotated[int, typer.Option(help="Planted co-purchase patterns.")] = 500,
    pattern_rate: Annotated[float, typer.Option(help="Share of baskets with a pattern.")] = 0.3,
    days: Annotated[int, typer.Option(help="Time span of the timestamps.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fmt: Annotated[str | None, typer.Option("--format", help="long-parquet | long-csv | basket "
                                            "(default: from the extension)")] = None,
) -> None:
    """Write a synthetic transaction history (Zipf popularity, planted patterns, timestamps)."""
    from basketry.data.synthetic import SyntheticSpec
    from basketry.data.synthetic import generate as draw
    from basketry.data.writers import write_baskets

    by_suffix = {".parquet": "long-parquet", ".csv": "long-csv", ".dat": "basket",
                 ".txt": "basket"}
    fmt = fmt or by_suffix.get(out.suffix.lower())
    if fmt is None:
        raise typer.BadParameter(f"cannot tell the format of {out}; pass --format",
                                 param_hint="--format")
    spec = SyntheticSpec(n_baskets=baskets, n_items=items, mean_basket_size=mean_size,
                         zipf_exponent=zipf, zipf_offset=zipf_offset, n_patterns=patterns,
                         pattern_rate=pattern_rate, days=days, seed=seed)
    try:
        spec.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with console.status(f"drawing {baskets:,} baskets"):
        drawn = draw(spec)
    with console.status(f"writing {out}"):
        write_baskets(drawn, out, fmt)
    console.print(f"wrote {drawn.n_baskets:,} baskets ({drawn.indices.shape[0]:,} items) to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo model.",
                                      envvar="BASKETRY_DEMO_MODEL")] = Path("models/demo"),
    min_support: Annotated[str, typer.Option(envvar="BASKETRY_MIN_SUPPORT")] = "0.01",
    min_confidence: Annotated[float, typer.Option(envvar="BASKETRY_MIN_CONFIDENCE")] = 0.2,
    track: Annotated[bool | None, typer.Option(
        "--track/--no-track", help="Track, register and gate in MLflow (default: when MLflow "
        "is installed). Env: BASKETRY_TRACK.", envvar="BASKETRY_TRACK")] = None,
    registered_model: RegisteredModel = "basketry",
    serve_ref: Annotated[Path | None, typer.Option(
        "--serve-ref", help="Write the model reference to serve into this file "
        "(`make demo` serves what it names).")] = None,
    host: Annotated[str, typer.Option(help="Where `make demo` will serve it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Where `make demo` will serve it.")] = 8000,
) -> None:
    """The main job on the bundled sample: train with an offline evaluation, register the
    model, apply the promotion gate, show rules and example recommendations of the model to
    serve (the champion), and say how to serve it."""
    from basketry.data import sample_path
    from basketry.model import load_model
    from basketry.training.tracking import mlflow_available

    data = sample_path()
    if track is None:
        track = mlflow_available()
    console.rule("basketry demo: UCI Online Retail sample (CC BY 4.0)")
    train(data, out=out, test_days=30.0, test_fraction=None, seed=0, scoring=None, report=None,
          min_support=min_support, min_confidence=min_confidence, min_lift=None,
          max_p_value=None, max_len=None, algorithm="fpgrowth", consequents=None,
          antecedents=None, exclude=None, multi_consequent=False, max_itemsets=None,
          max_rules=None, overwrite=True, track=track, register=track,
          registered_model=registered_model, force=False, tolerance=0.005, fmt="auto",
          transaction_col=None, item_col=None, timestamp_col=None, customer_col=None,
          quantity_col=None, label_col=None, sep=None, preset=None)
    ref, model_dir = (_demo_registry_ref(registered_model) if track
                      else (str(out), out))
    if not track:
        console.print("MLflow is not installed (pip install 'basketry[mlflow]'): nothing was "
                      f"registered; serving the model directory {out}", highlight=False)
    console.rule(f"the model to serve: {ref}")
    rules(model_dir, sort="lift", top=10, item=None, output="table")
    model = load_model(model_dir)
    popular = [model.items[i] for i in model.popular[:3].tolist()]
    for basket in ([popular[0]], popular[1:3], ["NO-SUCH-ITEM"]):
        _print_recommendations(model.recommend(basket, k=5), basket)
    if serve_ref is not None:
        serve_ref.parent.mkdir(parents=True, exist_ok=True)
        serve_ref.write_text(ref + "\n")
    base = f"http://{host}:{port}"
    console.rule(f"serve it: basketry serve --model {ref}  (make demo does it next)")
    console.print(
        "Then, from another terminal:\n"
        f"  curl -s {base}/v1/recommendations -H 'content-type: application/json' "
        f"-d '{{\"basket\": {json.dumps(popular[1:3])}, \"k\": 5}}'\n"
        f"  curl -s '{base}/v1/items/{popular[0]}/associations?k=5'\n"
        f"  curl -s {base}/v1/model\n"
        f"  curl -s {base}/metrics\n"
        f"  open {base}/docs for the interactive API documentation\n"
        f"  basketry models list    (the registry: versions, champion, challenger)",
        highlight=False, soft_wrap=True,
    )


def _demo_registry_ref(name: str) -> tuple[str, Path]:
    """What the demo serves after a registration: the champion (which the new version became,
    or not: the gate's reasons were printed); with no champion at all (the first version did
    not pass the gate), the new version as challenger, said loudly. The reference and the
    version's local basketry artifact."""
    from basketry.training.registry import (
        CHALLENGER,
        CHAMPION,
        RegistryError,
        alias_version,
        version_model_dir,
    )
    from basketry.training.tracking import client

    champion = alias_version(CHAMPION, name=name)
    new = alias_version(CHALLENGER, name=name)
    alias = CHAMPION if champion is not None else CHALLENGER
    version = champion if champion is not None else new
    if version is None:  # a registration sets challenger: someone removed it since
        raise RegistryError(f"{name!r} has neither a champion nor a challenger to serve")
    model_dir = version_model_dir(client(), name, version)
    if champion == new:
        console.print(f"version {new} is the champion: serving models:/{name}@champion",
                      highlight=False)
    elif champion is not None:
        console.print(f"version {new} stays challenger (the gate's reasons are above); the "
                      f"champion is still version {champion}: serving models:/{name}@champion",
                      highlight=False)
    else:
        err_console.print(
            f"[bold yellow]note:[/] no version of {name!r} has passed the promotion gate, so "
            f"there is no champion; serving version {new} as challenger "
            f"(models:/{name}@challenger) for the demo only. It does not beat the popularity "
            "baseline: try a lower --min-support.", highlight=False)
    return f"models:/{name}@{alias}", model_dir


models_app = typer.Typer(help="The model registry (MLflow): versions, champion, promotion, "
                         "rollback. Store: MLFLOW_TRACKING_URI, else $BASKETRY_HOME/mlflow.db.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command(name="list")
def models_list(name: RegisteredModel = "basketry") -> None:
    """The versions of the registered model, newest first, with aliases and HR@10."""
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
    """One version as JSON: aliases, tags, run metrics, its model directory."""
    from basketry.training.registry import show_version

    sys.stdout.write(json.dumps(show_version(version, name=name), indent=2) + "\n")


@models_app.command(name="promote")
def models_promote(version: Annotated[str, typer.Argument(help="Version number.")],
                   name: RegisteredModel = "basketry") -> None:
    """Make VERSION the champion by hand (recorded as forced; no gate)."""
    from basketry.training.registry import promote

    previous = promote(version, name=name)
    console.print(f"{name} champion: version {version}"
                  + (f" (was {previous})" if previous else ""))


@models_app.command(name="rollback")
def models_rollback(name: RegisteredModel = "basketry") -> None:
    """Point champion back at the previous champion (recorded as tags)."""
    from basketry.training.registry import rollback

    rolled_back, target = rollback(name=name)
    console.print(f"{name} champion: version {target} (rolled back from {rolled_back})")


@models_app.command(name="doctor")
def models_doctor(
    repair: Annotated[bool, typer.Option(
        "--repair", help="Repair what is found (idempotent); without it, only report.")] = False,
    name: RegisteredModel = "basketry",
) -> None:
    """Find half-finished registrations (a killed train, promote or rollback) and, with
    --repair, put the registry back in order. Exit 0: consistent; 3: problems left."""
    from basketry.training.doctor import doctor

    report = doctor(name=name, repair=repair)
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.consistent else EXIT_INCONSISTENT)


@app.command(name="export")
def export_command(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="pmml (PMML 4.4 AssociationModel)")] = "pmml",
    k: Annotated[int, typer.Option(
        "-k", help="Ranked recommendations the PMML Output declares for PMML scorers.")] = 5,
    overwrite: Overwrite = False,
) -> None:
    """Write a model as a PMML 4.4 AssociationModel: items, itemsets and rules with support,
    confidence, lift and leverage; the rest in basketry Extension elements, so that
    `basketry import` restores the model exactly."""
    from basketry.training.pmml import export_pmml

    if fmt.lower() != "pmml":
        raise typer.BadParameter(f"{fmt!r}: basketry exports pmml", param_hint="--format")
    check_target(out, overwrite=overwrite, inputs=(model_dir,), kind="PMML file")
    path = export_pmml(model_dir, out, k=k, overwrite=overwrite)
    console.print(f"PMML 4.4 AssociationModel of {model_dir} written to [bold]{path}[/] "
                  f"({path.stat().st_size:,} bytes)")


@app.command(name="import")
def import_command(
    pmml: Annotated[Path, typer.Argument(help="A PMML 4.4 file written by `basketry export`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    overwrite: Overwrite = False,
) -> None:
    """Read a PMML 4.4 AssociationModel written by `basketry export` back into a model
    directory (nothing is written if the document is refused)."""
    from basketry.model import read_manifest
    from basketry.training.pmml import import_pmml

    check_target(out, overwrite=overwrite, inputs=(pmml,))
    path = import_pmml(pmml, out, overwrite=overwrite)
    manifest = read_manifest(path)
    counts = manifest["counts"]
    console.print(f"model {manifest['model_version']} ({counts['n_items']:,} items, "
                  f"{counts['n_rules']:,} rules) saved to [bold]{path}[/]")


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(
        "--model", help="Model reference: a model directory, or models:/NAME@ALIAS or "
        "models:/NAME/VERSION in the registry. Env: BASKETRY_MODEL.")] = None,
    host: Annotated[str | None, typer.Option(help="Env: BASKETRY_HOST (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Env: BASKETRY_PORT (8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Env: BASKETRY_WORKERS (1).")] = None,
    admin_token: Annotated[str | None, typer.Option(
        help="Token of /v1/admin/*; none: admin off. Env: BASKETRY_ADMIN_TOKEN.")] = None,
    catalogue: Annotated[str | None, typer.Option(
        help="File of unavailable items, one per line. Env: BASKETRY_CATALOGUE.")] = None,
    watch: Annotated[float | None, typer.Option(
        help="Seconds between checks for a new model; 0: off. Env: BASKETRY_WATCH.")] = None,
    keep_alive: Annotated[float | None, typer.Option(
        help="Seconds an idle connection stays open; above a load balancer's idle timeout. "
        "Env: BASKETRY_KEEP_ALIVE (5).")] = None,
    header_timeout: Annotated[float | None, typer.Option(
        help="Seconds a request's head may take to come in (then 408). "
        "Env: BASKETRY_HEADER_TIMEOUT (10).")] = None,
    body_timeout: Annotated[float | None, typer.Option(
        help="Seconds a request's body may take after its head (then 408). "
        "Env: BASKETRY_BODY_TIMEOUT (10).")] = None,
    max_connections: Annotated[int | None, typer.Option(
        help="Open connections per worker; more are closed at once. "
        "Env: BASKETRY_MAX_CONNECTIONS (1000).")] = None,
    log_format: Annotated[str | None, typer.Option(
        help="json | text. Env: BASKETRY_LOG_FORMAT (json).")] = None,
    log_level: Annotated[str | None, typer.Option(
        help="Env: BASKETRY_LOG_LEVEL (info).")] = None,
    access_log: Annotated[bool | None, typer.Option(
        "--access-log/--no-access-log",
        help="One log line per request. Env: BASKETRY_ACCESS_LOG (on).")] = None,
    max_basket: Annotated[int | None, typer.Option(
        help="Items in a basket. Env: BASKETRY_MAX_BASKET (100).")] = None,
    max_k: Annotated[int | None, typer.Option(
        help="Largest k. Env: BASKETRY_MAX_K (50).")] = None,
    default_k: Annotated[int | None, typer.Option(
        help="k when a request gives none. Env: BASKETRY_DEFAULT_K (5).")] = None,
    max_exclude: Annotated[int | None, typer.Option(
        help="Items in exclude. Env: BASKETRY_MAX_EXCLUDE (100).")] = None,
    max_batch: Annotated[int | None, typer.Option(
        help="Requests in a batch. Env: BASKETRY_MAX_BATCH (100).")] = None,
    max_item_length: Annotated[int | None, typer.Option(
        help="Characters in an item. Env: BASKETRY_MAX_ITEM_LENGTH (128).")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(
        help="Bytes in a request body. Env: BASKETRY_MAX_BODY_BYTES (262144).")] = None,
    fast_path: Annotated[bool | None, typer.Option(
        "--fast-path/--no-fast-path", help="Answer the recommendation endpoints below the "
        "framework. Env: BASKETRY_FAST_PATH (on).")] = None,
    verify: Annotated[bool | None, typer.Option(
        "--verify/--no-verify",
        help="Verify model file checksums on load. Env: BASKETRY_VERIFY (on).")] = None,
) -> None:
    """Serve recommendations over HTTP (uvicorn); every option also has a BASKETRY_* variable."""
    # the parameters are named as Settings' fields; None: not given (the variable or default)
    options = dict(locals())
    from basketry.serving import Settings, SettingsError
    from basketry.serving import serve as run

    try:
        # the options override the variables before validation, so that e.g. --max-k 100
        # can go with BASKETRY_DEFAULT_K=60
        run(Settings.from_env(**options))
    except SettingsError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
