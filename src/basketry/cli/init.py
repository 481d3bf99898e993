"""`basketry init`: write a small project (params.yaml; with --dvc, a dvc.yaml pipeline whose
stages call basketry). What is written: :mod:`basketry.training.project`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from basketry.cli.console import console
from basketry.cli.errors import refuse


def init(
    directory: Annotated[Path, typer.Argument(
        help="Project directory (created when missing).")] = Path("."),
    dvc: Annotated[bool, typer.Option(
        "--dvc", help="Also write dvc.yaml: the stages prepare (profile), train, evaluate and "
        "register, for `dvc repro` and `dvc exp run`.")] = False,
    data: Annotated[Path | None, typer.Option(
        help="Transaction file the project trains on (default: a copy of the bundled sample "
             "in data/).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Registered model name (default: basketry).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the project's files.")] = False,
) -> None:
    """Write a project: params.yaml, and a DVC pipeline with --dvc.

    params.yaml holds `basketry train`'s parameters with their defaults, commented. `git init`
    and `dvc init` are yours: the command says which to run.

    Example:
      basketry init --dvc
    """
    try:
        import yaml  # noqa: F401  (what writes the files; MLflow brings it)
    except ModuleNotFoundError:
        raise refuse("basketry init writes YAML with PyYAML, which this install lacks: "
                     "pip install pyyaml (or 'basketry[mlflow]', which brings it)") from None
    from basketry.data import sample_path
    from basketry.training.project import ProjectError, plan, train_command, write

    if name is not None:
        from basketry.training.registry import check_model_name

        check_model_name(name)
    try:
        files = plan(directory, _train_params(), dvc=dvc, data=data, sample=sample_path(),
                     name=name)
        written = write(directory, files, force=force)
    except ProjectError as exc:
        raise refuse(str(exc)) from None
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    cd = "" if directory == Path(".") else f"cd {shlex.quote(str(directory))} && "
    if dvc:
        console.print(f"next: {cd}git init && dvc init && dvc repro (in an existing git "
                      "repository: `dvc init --subdir` when not at its root)",
                      highlight=False, soft_wrap=True)
    else:
        params = next(f for f in files if f.path == "params.yaml")
        console.print(f"train with: {cd}{train_command(params.text or '')}", highlight=False,
                      soft_wrap=True)


def _train_params() -> list:  # list[basketry.training.project.Param]
    """`basketry train`'s options with their defaults and help, read from the command itself."""
    import typer.main

    from basketry.cli.app import app
    from basketry.training.project import Param

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    # the help as text: the command's help is escaped for rich markup (cli/help_text.py)
    return [Param(key=p.opts[0].removeprefix("--"), default=p.default,
                  help=(p.help or "").replace("\\[", "["))
            for p in command.params if p.opts[0].startswith("--")]
