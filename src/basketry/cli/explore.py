"""`basketry explore`: a model's rules as an interactive offline page (parses, calls, prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console


def explore(
    model: Annotated[str, typer.Argument(help="A model directory or models:/NAME@ALIAS.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="The page to write (.html; works offline).")] = Path("rules.html"),
    top: Annotated[int, typer.Option(
        min=1, help="Rules shown: the top N by lift (a model of millions is cut to N).")] = 1_000,
    png_dir: Annotated[Path | None, typer.Option(
        help="Also draw each figure as DIR/NAME.png (for reports).")] = None,
    svg_dir: Annotated[Path | None, typer.Option(
        help="Also draw each figure as DIR/NAME.svg (for reports).")] = None,
) -> None:
    """Explore a model's rules in the browser (one offline HTML page).

    Rules by support x confidence, the rule graph, the grouped matrix, items, basket sizes.

    --png-dir or --svg-dir also draws each figure for reports.

    Example: basketry explore models/retail --out rules.html --png-dir pictures
    """
    from basketry.cli.errors import refuse
    from basketry.model.reference import is_registry_ref
    from basketry.training.explore import describe, explore_model
    from basketry.training.pages import check_page_path

    if png_dir is not None and svg_dir is not None:
        raise refuse("--png-dir and --svg-dir exclude each other; choose one format")
    check_page_path(out)  # before the model is read: a bad --out costs nothing
    model_dir: str | Path = model
    if is_registry_ref(model):
        from basketry.serving import resolve_model_ref

        model_dir = resolve_model_ref(model)
    with console.status(f"reading {model}"):
        explored = explore_model(model_dir, out, top=top, picture_dir=png_dir or svg_dir,
                                 picture_format="svg" if svg_dir is not None else "png")
    console.print(describe(explored))
    if explored.pictures:
        console.print(f"drew {len(explored.pictures)} pictures in "
                      f"{explored.pictures[0].parent}: "
                      + ", ".join(p.name for p in explored.pictures))
