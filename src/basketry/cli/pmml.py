"""PMML 4.4 in and out: `basketry export` and `import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console
from basketry.cli.options import Overwrite
from basketry.cli.targets import check_target


def export_command(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="pmml (PMML 4.4 AssociationModel)")] = "pmml",
    k: Annotated[int, typer.Option(
        "-k", help="Ranked recommendations the PMML Output declares for PMML scorers.")] = 5,
    overwrite: Overwrite = False,
) -> None:
    """Write a model as a PMML 4.4 AssociationModel.

    Items, itemsets and rules with support, confidence, lift and leverage; the rest in
    basketry Extension elements, so that `basketry import` restores the model exactly.

    Example:
      basketry export model --out model.pmml
    """
    from basketry.training.pmml import export_pmml

    if fmt.lower() != "pmml":
        raise typer.BadParameter(f"{fmt!r}: basketry exports pmml", param_hint="--format")
    check_target(out, overwrite=overwrite, inputs=(model_dir,), kind="PMML file")
    path = export_pmml(model_dir, out, k=k, overwrite=overwrite)
    console.print(f"PMML 4.4 AssociationModel of {model_dir} written to [bold]{path}[/] "
                  f"({path.stat().st_size:,} bytes)")


def import_command(
    pmml: Annotated[Path, typer.Argument(help="A PMML 4.4 file written by `basketry export`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    overwrite: Overwrite = False,
) -> None:
    """Read a PMML file written by `basketry export` into a model.

    Nothing is written if the document is refused.

    Example:
      basketry import model.pmml --out model
    """
    from basketry.model import read_manifest
    from basketry.training.pmml import import_pmml

    check_target(out, overwrite=overwrite, inputs=(pmml,))
    path = import_pmml(pmml, out, overwrite=overwrite)
    manifest = read_manifest(path)
    counts = manifest["counts"]
    console.print(f"model {manifest['model_version']} ({counts['n_items']:,} items, "
                  f"{counts['n_rules']:,} rules) saved to [bold]{path}[/]")
