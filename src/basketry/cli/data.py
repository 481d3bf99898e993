"""Transaction data itself: `basketry profile` and `generate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console
from basketry.cli.options import ReadOptions, option_groups


@option_groups
def profile(
    data: Annotated[Path, typer.Argument(help="Transaction file.")],
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write the profile as an offline HTML page instead of printing "
                       "JSON.")] = None,
    read: ReadOptions = ReadOptions(),
) -> None:
    """Validate DATA; print its profile and fingerprint (--html: a page).

    The page: sizes, item frequencies and their long tail, basket sizes, time coverage.

    Example: basketry profile sales.parquet --html profile.html
    """
    from basketry.data import profile as profile_of
    from basketry.data import read_baskets

    if html is not None:
        from basketry.training.pages import check_page_path, plotly_source

        check_page_path(html, "--html")  # before the data is read: a bad path costs nothing
        plotly_source()
    with console.status(f"reading {data}"):
        baskets = read_baskets(data, **read.reader_kwargs())
    profile = profile_of(baskets)
    if html is None:
        sys.stdout.write(json.dumps(profile, indent=2, default=str) + "\n")
        return
    from basketry.training.profile_page import write_profile_page

    with console.status(f"writing {html}"):
        write_profile_page(baskets, profile, html)
    console.print(f"wrote the profile of {profile['n_baskets']:,} baskets to {html} "
                  f"({html.stat().st_size / 1e6:.1f} MB)")


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
    drift: Annotated[list[str] | None, typer.Option(
        "--drift", metavar="KIND:DAY[:SIZE]",
        help="Plant a change from DAY on (repeatable): popularity:DAY:SIZE (the top 10 items "
             "drawn 1+SIZE times as often), new-items:DAY:SHARE (10 new items take SHARE of the "
             "random draws), break-rule:DAY[:N] (the N most frequent planted patterns lose "
             "their consequent), basket-size:DAY:FACTOR (mean basket size times FACTOR).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="long-parquet | long-csv | basket "
                                            "(default: from the extension)")] = None,
    groups: Annotated[int, typer.Option(
        help="Plant G product groups bought together (the right answer of `basketry layout`); "
             "the groups are written to OUT's name + .groups.csv (item,category).")] = 0,
    group_size: Annotated[int, typer.Option(
        help="Items per planted group (0: the catalogue split into the groups).")] = 0,
    group_rate: Annotated[float, typer.Option(
        help="Share of baskets that also hold items of one planted group.")] = 0.5,
) -> None:
    """Write a synthetic transaction history (Zipf, planted patterns).

    Example:
      basketry generate synthetic.parquet --baskets 20000 --items 500 --patterns 10
    """
    from basketry.data.synthetic import SyntheticSpec
    from basketry.data.synthetic import generate as draw
    from basketry.data.synthetic_drift import parse_drift
    from basketry.data.writers import write_baskets

    by_suffix = {".parquet": "long-parquet", ".csv": "long-csv", ".dat": "basket",
                 ".txt": "basket"}
    fmt = fmt or by_suffix.get(out.suffix.lower())
    if fmt is None:
        raise typer.BadParameter(f"cannot tell the format of {out}; pass --format",
                                 param_hint="--format")
    try:
        drifts = tuple(parse_drift(text) for text in drift or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--drift") from None
    spec = SyntheticSpec(n_baskets=baskets, n_items=items, mean_basket_size=mean_size,
                         zipf_exponent=zipf, zipf_offset=zipf_offset, n_patterns=patterns,
                         pattern_rate=pattern_rate, days=days, seed=seed, drifts=drifts,
                         groups=groups, group_size=group_size, group_rate=group_rate)
    try:
        spec.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with console.status(f"drawing {baskets:,} baskets"):
        drawn = draw(spec)
    with console.status(f"writing {out}"):
        write_baskets(drawn, out, fmt)
    console.print(f"wrote {drawn.n_baskets:,} baskets ({drawn.indices.shape[0]:,} items) to {out}")
    if groups:
        truth = out.with_name(out.name + ".groups.csv")
        truth.write_text("item,category\n" + "".join(
            f"{item},g{k + 1}\n" for k, group in enumerate(drawn.report["groups"])
            for item in group))
        console.print(f"planted {groups} product groups, written to {truth}")
    for planted in drawn.report.get("drifts", []):
        console.print(f"planted {planted['kind']} from day {planted['day']} "
                      f"(basket {planted['first_basket']:,}): "
                      + json.dumps({k: v for k, v in planted.items()
                                    if k not in ("kind", "day", "first_basket")}))
