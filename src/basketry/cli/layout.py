"""`basketry layout`: a shelf plan from a model or from transaction data (parses, calls, prints)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from basketry.cli.console import console, err_console, feedback
from basketry.cli.options import ReadOptions, option_groups

if TYPE_CHECKING:
    from basketry.model.layout import LayoutPlan

#: rows of the table printed per aisle
SHOWN_PER_AISLE = 5


@option_groups
def layout(
    source: Annotated[str, typer.Argument(
        help="A model directory, models:/NAME@ALIAS, or a transaction file.")],
    aisles: Annotated[int | None, typer.Option(min=1, help="Number of aisles.")] = None,
    capacity: Annotated[int | None, typer.Option(min=1, help="Products per aisle.")] = None,
    capacities: Annotated[Path | None, typer.Option(
        help="File of aisle capacities, one per line in walking order (docs/layout.md).")] = None,
    categories: Annotated[Path | None, typer.Option(
        help="item,category lines and !together / !apart rules (docs/layout.md).")] = None,
    fixed: Annotated[Path | None, typer.Option(
        help="Products that do not move: lines of item, aisle and position (optional).")
        ] = None,
    current: Annotated[Path | None, typer.Option(
        help="The store's current layout (the plan's CSV or layout.json): propose moves.")] = None,
    max_moves: Annotated[str | None, typer.Option(
        help="Move budget with --current: a number of products or a share (10%). "
             "Default 10%.")] = None,
    weighting: Annotated[str | None, typer.Option(
        help="Affinity weighting: excess | significant | lift | pmi | confidence | jaccard | "
             "count (docs/layout.md: how the default was chosen).")] = None,
    evaluate: Annotated[Path | None, typer.Option(
        "--evaluate", help="Held-out transactions to evaluate the plan on (same read "
                           "options as a data SOURCE).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Directory to write layout.json, layout.csv (and moves.csv).")] = None,
    save_to_model: Annotated[bool, typer.Option(
        "--save-to-model", help="Write layout.json into the model directory SOURCE.")] = False,
    map_file: Annotated[Path | None, typer.Option(
        "--map", help="Draw the aisle map (.svg or .png).")] = None,
    graph_file: Annotated[Path | None, typer.Option(
        "--graph", help="Write the interactive affinity graph (.html, offline).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the communities and random baselines.")] = 0,
    output: Annotated[str, typer.Option("--output", help="table | json")] = "table",
    read: ReadOptions = ReadOptions(),
) -> None:
    """Place products bought together close to each other.

    Aisles, aisle order and shelf order; or, with --current, the moves that gain the most
    within a budget.

    Example:
      basketry layout model --aisles 12
    """
    if output not in ("table", "json"):
        raise typer.BadParameter(f"{output!r}: choose table or json", param_hint="--output")
    from basketry.layout import (
        DEFAULT_WEIGHTING,
        LayoutParams,
        pairs_from_baskets,
        pairs_from_model,
        plan_layout,
        read_capacities,
        read_categories,
        read_current,
        read_fixed,
    )
    from basketry.model import ModelError, is_model_directory
    from basketry.model.layout import write_layout
    from basketry.model.reference import is_registry_ref

    if out is not None and out.exists() and not out.is_dir():
        raise ModelError(f"--out {out} is a file; give a directory")
    if map_file is not None:
        from basketry.layout.pictures import check_map_path

        check_map_path(map_file)  # a bad suffix costs nothing
    if graph_file is not None and graph_file.suffix.lower() not in (".html", ".htm"):
        raise ModelError(f"--graph {graph_file}: the affinity graph is an .html page")
    model_dir: Path | None = None
    if is_registry_ref(source):
        from basketry.serving import resolve_model_ref

        model_dir = resolve_model_ref(source)
    elif is_model_directory(source):
        model_dir = Path(source)
    if save_to_model and model_dir is None:
        raise ModelError(f"--save-to-model: {source} is not a model directory")
    params = LayoutParams(
        aisles=aisles, capacity=capacity,
        capacities=read_capacities(capacities) if capacities else None,
        weighting=weighting or DEFAULT_WEIGHTING, seed=seed, max_moves=max_moves)
    cats = read_categories(categories) if categories else None
    anchors = read_fixed(fixed) if fixed else None
    now = read_current(current) if current else None
    with feedback() as live:
        if model_dir is not None:
            live.stage(f"reading the model {model_dir}")
            pairs = pairs_from_model(model_dir)
        else:
            from basketry.data import read_baskets

            live.stage(f"reading {source}")
            pairs = pairs_from_baskets(read_baskets(source, **read.reader_kwargs()))
        test = None
        if evaluate is not None:
            from basketry.data import read_baskets

            live.stage(f"reading {evaluate}")
            test = read_baskets(evaluate, **read.reader_kwargs())
        plan = plan_layout(pairs, params, categories=cats, fixed=anchors, current=now,
                           test_baskets=test, source_name=str(source), progress=live.stage)
        written: list[Path] = []
        # the pictures first: a missing plotting package fails before any plan file is written
        if map_file is not None or graph_file is not None:
            from basketry.layout.pictures import draw_aisle_map, write_affinity_graph

            if map_file is not None:
                live.stage(f"drawing {map_file}")
                draw_aisle_map(plan, map_file)
                written.append(map_file)
            if graph_file is not None:
                live.stage(f"writing {graph_file}")
                write_affinity_graph(plan, graph_file)
                written.append(graph_file)
        if out is not None:
            live.stage(f"writing {out}")
            written += write_outputs(plan, out, with_moves=now is not None)
        if save_to_model:
            assert model_dir is not None
            written.append(write_layout(plan, model_dir))
    if output == "json":
        import json

        console.print_json(json.dumps(plan.to_json(), ensure_ascii=False))
    else:
        print_plan(plan)
    for path in written:  # beside JSON on stdout, the notes go to stderr
        (err_console if output == "json" else console).print(f"wrote [bold]{path}[/]")


def plan_rows(plan: LayoutPlan) -> list[list[Any]]:
    return [[s.item, s.label or "", s.aisle, s.position, str(s.fixed).lower(), s.category or ""]
            for s in plan.slots()]


def move_rows(plan: LayoutPlan) -> list[list[Any]]:
    return [[m.item, m.label or "", m.from_aisle, m.to_aisle, m.to_position, f"{m.gain:.9g}"]
            for m in plan.moves]


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(plan: LayoutPlan, out: Path, *, with_moves: bool) -> list[Path]:
    """layout.json, layout.csv and (with a current layout) moves.csv in ``out``."""
    from basketry.model.layout import write_layout

    out.mkdir(parents=True, exist_ok=True)
    paths = [write_layout(plan, out / "layout.json")]
    _write_csv(out / "layout.csv", ["item", "label", "aisle", "position", "fixed", "category"],
               plan_rows(plan))
    paths.append(out / "layout.csv")
    if with_moves:
        _write_csv(out / "moves.csv",
                   ["item", "label", "from_aisle", "to_aisle", "to_position", "gain"],
                   move_rows(plan))
        paths.append(out / "moves.csv")
    return paths


def print_plan(plan: LayoutPlan) -> None:
    from rich.table import Table

    table = Table(title=f"{plan.n_items:,} products in {plan.n_aisles} aisles "
                        f"({plan.weighting} affinity, from {plan.source})")
    for name in ("aisle", "products", "first on the shelf"):
        table.add_column(name)
    for a in plan.aisles:
        names = ", ".join(s.name for s in a.items[:SHOWN_PER_AISLE])
        more = f" (+{len(a.items) - SHOWN_PER_AISLE})" if len(a.items) > SHOWN_PER_AISLE else ""
        table.add_row(str(a.aisle), f"{len(a.items)}/{a.capacity}", names + more)
    console.print(table)
    if plan.moves:
        moves = Table(title=f"{len(plan.moves)} moves (gain: share of affinity brought close)")
        for name in ("product", "from", "to", "position", "gain"):
            moves.add_column(name)
        for m in plan.moves[:20]:
            moves.add_row(m.label or m.item, str(m.from_aisle), str(m.to_aisle),
                          str(m.to_position), f"{m.gain:+.5f}")
        console.print(moves)
        before, after = plan.params.get("objective_before"), plan.params.get("objective_after")
        if before is not None and after is not None:
            console.print(f"objective {before:.4f} -> {after:.4f}")
    ev = plan.evaluation
    if ev:
        lay, rnd = ev["layout"], ev["random"]
        line = (f"held-out pairs in the same aisle: {lay['same_aisle']:.3f} "
                f"(random {rnd['same_aisle']:.3f} ± {rnd['same_aisle_sd']:.3f}")
        for name in ("current", "category_only"):
            if name in ev:
                line += f", {name.replace('_', '-')} {ev[name]['same_aisle']:.3f}"
        line += f"); same or adjacent: {lay['same_or_adjacent']:.3f}"
        console.print(line)
