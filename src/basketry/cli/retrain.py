"""`basketry retrain`: parse the options, run :func:`basketry.training.retrain.retrain`, print
what it reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console, feedback
from basketry.cli.errors import refuse
from basketry.cli.monitor import Db, _settings, _when
from basketry.cli.options import ReadOptions, RegisteredModel, option_groups


@option_groups
def retrain(
    data: Annotated[Path | None, typer.Argument(
        help="The original transaction file (omit: the monitoring store's orders alone).",
        show_default=False)] = None,
    days: Annotated[float | None, typer.Option(
        help="Training window: the last N days up to --until (default: all history).",
        show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        help="End of the window: a date or time (UTC unless a zone is given) or an age "
        "(7d). Default: the latest basket.", show_default=False)] = None,
    test_days: Annotated[float, typer.Option(
        help="The most recent days held out: the new model and the champion are compared "
        "there.")] = 7.0,
    orders: Annotated[bool, typer.Option(
        "--orders/--no-orders", help="Add the completed orders of the monitoring store "
        "(when it exists).")] = True,
    min_baskets: Annotated[int, typer.Option(
        min=1, help="Refuse a window with fewer baskets.")] = 1_000,
    registered_model: RegisteredModel = "basketry",
    tolerance: Annotated[float, typer.Option(
        help="How much worse than the champion on HR@10 the new model may be.")] = 0.005,
    seed: Annotated[int, typer.Option(help="Seed of the query sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Model directory to write (default: a new one in the models "
        "folder of BASKETRY_HOME).", show_default=False)] = None,
    db: Db = None,
    read: ReadOptions = ReadOptions(),
) -> None:
    """Retrain the champion on newer data; promote if the gate agrees.

    Its own mining parameters on a newer window (the data, the monitoring store's orders, or
    both), tested on the most recent days against the champion on the same days. A failure
    changes nothing.

    Example:
      basketry retrain sales.parquet --preset online-retail --days 180
    """
    import numpy as np

    from basketry.cli.train import Printer, print_outcome
    from basketry.training.retrain import RetrainPlan
    from basketry.training.retrain import retrain as run_retrain

    if data is None and not orders:
        raise refuse("nothing to retrain on: give the data file, or leave --orders on")
    end = None
    if until is not None:
        seconds = _when(until, datetime.now(UTC).timestamp(), "--until")
        end = np.datetime64(round(seconds * 1e9), "ns")
    store_url = _store_url(db) if orders else None
    if data is None and store_url is None:
        raise refuse("no monitoring store to take orders from, and no data file given")
    plan = RetrainPlan(data=data, read_options=read.reader_kwargs(), store_url=store_url,
                       days=days, until=end, test_days=test_days, min_baskets=min_baskets,
                       registered_model=registered_model, tolerance=tolerance, seed=seed,
                       out=out)
    with feedback() as live:
        done = run_retrain(plan, events=Printer(live))
    console.print(f"retrained champion v{done.champion_version} on {done.n_baskets:,} baskets "
                  f"({done.window.describe()}; {done.orders_added:,} orders from the "
                  f"monitoring store, {done.orders_already_in_data:,} already in the data)",
                  highlight=False)
    print_outcome(done.outcome)


def _store_url(db: str | None) -> str | None:
    """The monitoring store's URL when it exists (a SQLite file that is not there: None)."""
    settings = _settings(db)
    url = settings.url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None if db is None else url
    return url
