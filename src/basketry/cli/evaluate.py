"""`basketry evaluate`: a saved model on the test part of its own split, against the
baselines, as :func:`basketry.training.workflow.evaluate_workflow` measures it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.options import ReadOptions, option_groups

ModelDir = Annotated[Path, typer.Argument(help="Model directory saved by `basketry train`.")]
Data = Annotated[Path, typer.Argument(help="The transaction file it was trained from.")]


@option_groups
def evaluate(
    model: ModelDir,
    data: Data,
    metrics: Annotated[Path | None, typer.Option(
        "--metrics", help="Write the figures as JSON here (a DVC metrics file).")] = None,
    read: ReadOptions = ReadOptions(),
) -> None:
    """Measure a saved MODEL again on DATA's test part, as train did.

    DATA is split as MODEL's training split it (refused if the training part is not the one
    MODEL was trained on); MODEL is compared with max-confidence, item-kNN, popularity and
    random: the figures `train` printed.

    Example:
      basketry evaluate model data/sales.parquet --metrics reports/metrics.json
    """
    from basketry.cli.console import feedback
    from basketry.cli.targets import check_target
    from basketry.cli.train import Printer
    from basketry.training.workflow import evaluate_workflow

    if metrics is not None:
        check_target(metrics, overwrite=True, inputs=(data,), kind="report")
    with feedback() as live:
        evaluate_workflow(model, data, read_options=read.reader_kwargs(), metrics_out=metrics,
                          events=Printer(live))
    if metrics is not None:
        from basketry.cli.console import console

        console.print(f"figures written to {metrics}", highlight=False)
