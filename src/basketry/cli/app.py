"""The `basketry` typer application: the root options and every command, each from the module
of its group. Importing it imports no data, mining, training or serving code: each command
imports what it needs when it runs, so that `basketry --help` starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from basketry.cli import (
    data,
    demo,
    evaluate,
    explore,
    init,
    layout,
    mining,
    pmml,
    retrain,
    serve,
    simulate,
    train,
    tune,
)
from basketry.cli.errors import FailureFunnel
from basketry.cli.monitor import monitor_app
from basketry.cli.registry import models_app

app = typer.Typer(
    name="basketry",
    help="Association rules from transaction histories, from raw sales to a served model."
         "\n\nExamples:\n  basketry demo\n  basketry train sales.csv -o model --min-support 0.01"
         "\n  basketry serve --model model",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=FailureFunnel,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("basketry")
        except PackageNotFoundError:  # a source tree on the path, not installed
            from basketry import __version__ as number
        typer.echo(f"basketry {number}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of a failure. Env: BASKETRY_DEBUG.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


# in the order `basketry --help` lists them
app.command()(mining.mine)
app.command()(train.train)
app.command()(tune.tune)
app.command()(evaluate.evaluate)
app.command()(retrain.retrain)
app.command()(mining.rules)
app.command()(mining.recommend)
app.command()(explore.explore)
app.command(name="profile")(data.profile)
app.command()(data.generate)
app.command()(layout.layout)
app.command()(demo.demo)
app.command()(init.init)
app.command()(simulate.simulate)
app.add_typer(models_app, name="models")
app.command(name="export")(pmml.export_command)
app.command(name="import")(pmml.import_command)
app.command()(serve.serve)
app.add_typer(monitor_app, name="monitor")


def main() -> None:
    app()
