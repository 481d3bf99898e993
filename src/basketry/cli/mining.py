"""Mining and looking at rules: `basketry mine`, `rules` and `recommend`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from basketry.cli.console import console, fraction_progress, print_read_report
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
    """Read, validate and mine DATA; save the rules as a model directory."""
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
        with console.status(f"reading {data}"):
            baskets = read_baskets(data, **read.reader_kwargs())
        print_read_report(baskets)
        miner = AssociationMiner(**params)
        with fraction_progress("mining") as progress:
            miner.fit(baskets, progress=progress)
    path = save_model(out, miner, baskets, overwrite=overwrite)
    elapsed = time.perf_counter() - started
    console.print(
        f"mined {len(miner.frequent_itemsets_):,} frequent itemsets and "
        f"{len(miner.rules_arrays_):,} rules "
        f"(min count {miner.min_count_:,} of {miner.n_baskets_:,} baskets) in {elapsed:.2f} s"
    )
    console.print(f"model saved to [bold]{path}[/]")


def _rules_frame(model_dir: Path):  # -> pandas.DataFrame with item strings
    import pandas as pd

    from basketry.model import read_artifact

    artifact = read_artifact(model_dir)
    items = artifact.items.column("item").to_pylist()
    frame = artifact.rules.to_pandas()
    for side in ("antecedent", "consequent"):
        frame[side] = [tuple(items[i] for i in ids) for ids in frame[side]]
    return pd.DataFrame(frame), artifact


def rules(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    sort: Annotated[str, typer.Option(help="Measure to sort by (descending).")] = "lift",
    top: Annotated[int, typer.Option(min=1, help="How many rules to show.")] = 20,
    item: Annotated[str | None, typer.Option(help="Only rules that mention this item.")] = None,
    output: Annotated[str, typer.Option("--output", help="table | csv | json")] = "table",
) -> None:
    """Show the rules of a model, strongest first."""
    from rich.table import Table

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


def recommend(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    items: Annotated[list[str], typer.Argument(help="Items in the basket.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many recommendations.")] = 5,
) -> None:
    """Recommend items to add to a basket, with the rule behind each."""
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
