"""`basketry simulate`: the continuous-training loop replayed month by month through the real
server; parse, call :func:`basketry.simulation.replay.replay`, print the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console
from basketry.cli.options import MiningOptions, ReadOptions, option_groups


@option_groups
def simulate(
    data: Annotated[Path, typer.Argument(
        help="A transaction history with order ids and times (e.g. Online Retail with "
        "--preset online-retail).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="An empty directory for the "
                                      "policies' homes, replay.json and timeline.html.")],
    initial_months: Annotated[int, typer.Option(
        min=1, help="Months the first model is trained on.")] = 3,
    policies: Annotated[str, typer.Option(
        help="Comma-separated: never, monthly, alert.")] = "never,monthly,alert",
    test_days: Annotated[float, typer.Option(
        help="Days held out by every training (the gate compares there).")] = 14.0,
    retrain_days: Annotated[float | None, typer.Option(
        help="A retrain's window: the last N days (default: all history so far).",
        show_default=False)] = None,
    min_baskets: Annotated[int, typer.Option(min=1, help="A retrain's least baskets.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the items hidden from the requests.")] = 0,
    retrain_on: Annotated[str, typer.Option(
        help="The alerts the alert policy retrains on: any, critical (the online HR below "
        "the offline figure), or alert kinds (performance, rule_confidence, ...).")] = "any",
    monthly_first: Annotated[int, typer.Option(
        min=0, help="The alert policy retrains every month for its first N months, then on "
        "alerts.")] = 0,
    mining: MiningOptions = MiningOptions(),
    read: ReadOptions = ReadOptions(),
) -> None:
    """Replay months of orders through a model, retraining by policy.

    Train on the first months, replay each next month through `basketry serve`, monitor at
    each month's end and retrain never, every month, or when alerts open. Prints online HR@10
    per month and policy.

    Example:
      basketry simulate online_retail.parquet --preset online-retail --out sim/
    """
    from basketry.simulation.replay import Setup, replay
    from basketry.simulation.timeline import write_timeline

    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    if out.exists() and any(out.iterdir()):
        raise typer.BadParameter(f"{out} is not empty", param_hint="--out")
    setup = Setup(data=data, read_options=read.reader_kwargs(), out=out,
                  mining=mining.miner_params(), initial_months=initial_months,
                  policies=chosen, test_days=test_days, retrain_days=retrain_days,
                  min_baskets=min_baskets, seed=seed, retrain_on=retrain_on,
                  monthly_first=monthly_first)
    runs = replay(setup, say=lambda line: console.print(line, highlight=False))
    write_timeline(runs, out / "timeline.html", title=f"basketry simulate: {data.name}")
    from rich.table import Table

    table = Table(title="online HR@10 per month (the monitoring's replay of each month's "
                  "orders with the version that served them)")
    table.add_column("month")
    for run in runs:
        table.add_column(run.policy, justify="right")
    for i, month in enumerate(runs[0].months):
        cells = []
        for run in runs:
            m = run.months[i]
            mark = " R*" if m.promoted else " R" if m.retrained else ""
            cells.append(("-" if m.hit_rate is None else f"{m.hit_rate:.4f}") + mark)
        table.add_row(month.label, *cells)
    table.add_row("mean", *("-" if r.mean_hit_rate is None else f"{r.mean_hit_rate:.4f}"
                            for r in runs))
    table.add_row("retrains (promoted)", *(f"{r.retrains} ({r.promotions})" for r in runs))
    console.print(table)
    console.print("R: retrained at the month's end, R*: and promoted. "
                  f"Details: {out / 'replay.json'}; picture: {out / 'timeline.html'}",
                  highlight=False)
