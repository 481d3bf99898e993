"""Every command's help at 80 columns, as a new user reads it: no option name or environment
variable cut (rich cuts with ``…``), each variable named once, an example in each command's help,
and a bounded length."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from basketry.cli import app

runner = CliRunner()

#: Lines of `basketry COMMAND --help` at 80 columns (train: 222 before the panels).
MAX_LINES = 110
MAX_LINES_OF = {"": 45, "train": 100, "mine": 75, "rules": 30}


def _commands() -> list[tuple[list[str], Any]]:
    def walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


COMMANDS = _commands()


def _help(path: list[str]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _words(text: str) -> set[str]:
    """The help's words, frame characters and punctuation around them stripped."""
    return {w.strip(".,;:()[]'\"`") for w in re.split(r"[\s│╭╮╰╯─]+", text)}


@pytest.mark.parametrize(("path", "command"), COMMANDS,
                         ids=[" ".join(p) or "basketry" for p, _ in COMMANDS])
def test_help_fits_80_columns_without_cutting_a_name(path, command):
    text = _help(path)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in text, [line for line in lines if "…" in line]
    words = _words(text)
    for param in command.params:
        if param.param_type_name != "option" or param.hidden:
            continue
        for name in (*param.opts, *param.secondary_opts):
            assert name in words, f"{' '.join(path)}: {name} is not shown whole"
        envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        for envvar in envvars:
            assert envvar in words, f"{' '.join(path)}: {envvar} is not shown whole"
            named = len(re.findall(rf"\b{envvar}\b", text))
            assert named == 1, f"{' '.join(path)}: {envvar} named {named} times"
    assert len(lines) <= MAX_LINES_OF.get(" ".join(path), MAX_LINES), len(lines)
    if not getattr(command, "commands", None) or not path:
        assert "Example" in text, f"{' '.join(path) or 'basketry'} has no example"


def test_the_command_list_gives_each_command_one_line():
    text = _help([])
    listed = [line for line in text.splitlines() if re.match(r"│ [a-z]+ {2,}\S", line)]
    assert len(listed) == len(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_help_text_is_not_read_as_markup():
    """`pip install 'basketry[spark]'` keeps its extra (rich read ``[spark]`` as a style)."""
    assert "basketry[spark]" in _help(["mine"])


def test_examples_keep_their_indent():
    """Examples stand out from the text, also when they follow the first line directly."""
    for path in (["rules"], ["monitor", "drift"], []):
        lines = _help(path).splitlines()
        example = next(i for i, line in enumerate(lines) if line.strip().startswith("Example"))
        assert lines[example + 1].startswith("   basketry"), lines[example:example + 2]
