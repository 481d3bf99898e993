"""Mining and looking at rules: `basketry mine`, `rules` and `recommend`."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from basketry.cli.console import console, err_console, fraction_progress, print_read_report
from basketry.cli.options import (
    EngineOptions,
    MiningOptions,
    Overwrite,
    ReadOptions,
    option_groups,
)
from basketry.cli.targets import check_target


@option_groups
def mine(
    data: Annotated[str, typer.Argument(
        help="Transaction file (basket lines, CSV or Parquet); with --engine spark, any path "
             "Spark reads (hdfs://, s3a://, a Parquet directory) or a table name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.",
                                      envvar="BASKETRY_MODEL_DIR")],
    mining: MiningOptions,
    overwrite: Overwrite = False,
    read: ReadOptions = ReadOptions(),
    engine: EngineOptions = EngineOptions(),
) -> None:
    """Read, validate and mine DATA; save the rules as a model.

    Examples:
      basketry mine baskets.dat -o model --min-support 0.01 --min-confidence 0.2
      basketry mine sales.csv -o model --preset online-retail --max-len 3
    """
    from basketry.data import read_baskets
    from basketry.mining import AssociationMiner
    from basketry.training.artifact import save_model

    params = mining.miner_params()
    spark = engine.spark
    check_target(out, overwrite=overwrite, inputs=(Path(data),))
    started = time.perf_counter()
    if spark:
        from basketry.mining.spark import mine_on_spark

        miner, baskets = mine_on_spark(data, params, read.reader_kwargs(),
                                       master=engine.spark_master, say=console.print)
        print_read_report(baskets)
    else:
        if Path(data).is_dir():  # a directory of Parquet files reports the rows read
            with fraction_progress(f"reading {data}") as progress:
                baskets = read_baskets(data, progress=progress, **read.reader_kwargs())
        else:
            with console.status(f"reading {data}"):
                baskets = read_baskets(data, **read.reader_kwargs())
        print_read_report(baskets)
        miner = AssociationMiner(**params)
        # the miner gives 90% to the itemsets, the rest to the rules and their measures
        with fraction_progress("mining itemsets", {0.9: "rules and their measures"}) as progress:
            miner.fit(baskets, progress=progress)
    with console.status(f"saving {len(miner.rules_arrays_):,} rules to {out}"):
        path = save_model(out, miner, baskets, overwrite=overwrite)
    elapsed = time.perf_counter() - started
    console.print(
        f"mined {len(miner.frequent_itemsets_):,} frequent itemsets and "
        f"{len(miner.rules_arrays_):,} rules "
        f"(min count {miner.min_count_:,} of {miner.n_baskets_:,} baskets) in {elapsed:.2f} s"
    )
    console.print(f"model saved to [bold]{path}[/]")


class RulesOutput(StrEnum):
    """What `basketry rules` writes."""

    table = "table"
    csv = "csv"
    json = "json"


def rules(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    sort: Annotated[str, typer.Option(help="Measure or count to sort by (descending).")] = "lift",
    top: Annotated[int, typer.Option(min=1, help="How many rules to show.")] = 20,
    item: Annotated[str | None, typer.Option(help="Only rules that mention this item.")] = None,
    output: Annotated[RulesOutput, typer.Option(
        "--output", case_sensitive=False,
        help="A table, or CSV or JSON on stdout (item lists, labels beside codes).",
    )] = RulesOutput.table,
) -> None:
    """Show the rules of a model, strongest first.

    Examples:
      basketry rules model --sort confidence --top 10
      basketry rules model --item 85123A --output csv > rules.csv
    """
    from basketry.cli.rules_export import SORTABLE, select_rules, write_csv, write_json

    if sort not in SORTABLE:
        raise typer.BadParameter(f"cannot sort by {sort!r}; choose one of {list(SORTABLE)}",
                                 param_hint="--sort")
    # on stderr: with --output csv > file, the terminal still shows what is being done
    with err_console.status("reading the model") as status:
        selection = select_rules(model_dir, sort=sort, top=top, item=item, stage=status.update)
    if output is RulesOutput.csv:
        write_csv(selection, sys.stdout)
    elif output is RulesOutput.json:
        write_json(selection, sys.stdout)
    else:
        print_rules(selection, sort)


def print_rules(selection: Any, sort: str) -> None:
    """The chosen rules as a terminal table: items with their labels, p-values as 1e-300."""
    from rich.table import Table

    from basketry.cli.rules_export import records

    table = Table(title=f"{selection.rows.num_rows} of {selection.n_rules:,} rules of model "
                        f"{selection.version} by {sort}")
    for name in ("antecedent", "consequent", "support", "confidence", "lift", "p_value"):
        table.add_column(name, justify="left" if name.endswith("ent") else "right")
    for record in records(selection):
        shown = []
        for side in ("antecedent", "consequent"):
            labels = record.get(f"{side}_labels") or [None] * len(record[side])
            shown.append(", ".join(f"{i} ({label})" if label else i
                                   for i, label in zip(record[side], labels, strict=True)))
        # a stored 0 is a p-value below the smallest double (an underflow), not a certainty
        p_value = f"{record['p_value']:.3g}" if record["p_value"] > 0 else "<5e-324"
        table.add_row(*shown, f"{record['support']:.4f}", f"{record['confidence']:.3f}",
                      f"{record['lift']:.2f}", p_value)
    console.print(table)


def recommend(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    items: Annotated[list[str], typer.Argument(help="Items in the basket.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many recommendations.")] = 5,
) -> None:
    """Recommend items to add to a basket, with the rule behind each.

    Example:
      basketry recommend model 22804 21232 -k 5
    """
    from basketry.model import load_model

    model = load_model(model_dir)
    print_recommendations(model.recommend(items, k=k), items)


def print_recommendations(result: Any, basket: list[str]) -> None:
    from rich.table import Table

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
