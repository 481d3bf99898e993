"""The options declared once: every command that mines offers the same mining options, every
command that reads data the same read options, each from its one declaration; thresholds read in
one place; and the command starts without importing the heavy parts of basketry."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
import typer.main

from basketry.cli import app
from basketry.cli.options import MiningOptions, ReadOptions, group_parameters
from basketry.mining import MiningError
from basketry.mining._params import parse_min_support

MINING_COMMANDS = ("mine", "train", "tune", "demo")
READING_COMMANDS = ("mine", "train", "tune", "profile")


def _options(command: str) -> dict[str, Any]:
    """The command's options by parameter name, as the command line parser holds them."""
    found = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {p.name: p for p in found.params if p.param_type_name == "option"}


def _declared(group: type) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """The flags and variable of each option of a group, from its one declaration."""
    declared = {}
    for parameter in group_parameters(group):
        info = parameter.annotation.__metadata__[0]
        # in Annotated, an option's first flag sits where its default would
        given = [d for d in (info.default, *(info.param_decls or ())) if isinstance(d, str)]
        flags = given or [f"--{parameter.name.replace('_', '-')}"]
        declared[parameter.name] = (tuple(flags), info.envvar)
    return declared


@pytest.mark.parametrize(("group", "commands"), [(MiningOptions, MINING_COMMANDS),
                                                 (ReadOptions, READING_COMMANDS)])
def test_every_command_of_a_group_offers_its_options_as_declared(group, commands):
    declared = _declared(group)
    assert set(declared) == {f.name for f in dataclasses.fields(group)}
    for command in commands:
        options = _options(command)
        for name, (flags, envvar) in declared.items():
            assert name in options, f"{command} lacks {flags[0]}"
            assert set(flags) <= set(options[name].opts), (command, name)
            assert options[name].envvar == envvar, (command, name)


def test_defaults_come_from_the_group_unless_a_command_sets_its_own():
    for command in ("mine", "train", "tune"):
        options = _options(command)
        assert options["min_support"].default == "0.01"
        assert options["min_confidence"].default == 0.1
    assert _options("demo")["min_confidence"].default == 0.2  # the demo's own default


def test_mining_options_become_the_miners_parameters():
    params = MiningOptions(min_support="25", consequents="a, b,", exclude=None).miner_params()
    assert params["min_support"] == 25 and isinstance(params["min_support"], int)
    assert params["consequents"] == ["a", "b"] and params["exclude"] is None
    assert "n_jobs" not in params  # how the fit runs, recorded only when given
    assert MiningOptions(min_support="1.0", jobs=2).miner_params()["n_jobs"] == 2
    with pytest.raises(MiningError, match="not a number"):
        MiningOptions(min_support="1/2").miner_params()


def test_read_options_pass_only_what_was_given():
    assert ReadOptions().reader_kwargs() == {"format": "auto"}
    assert ReadOptions(fmt="long-csv", item_col="sku").reader_kwargs() == {
        "format": "long-csv", "item_col": "sku"}


@pytest.mark.parametrize(("text", "value"), [("25", 25), (" 1 ", 1), ("1.0", 1.0),
                                             ("0.01", 0.01), ("1e-3", 0.001)])
def test_min_support_text_is_a_count_or_a_fraction(text, value):
    parsed = parse_min_support(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "not a number"), ("0", "not a count"), ("-3", "not a count"),
    ("1.5", "not a fraction"), ("nan", "not a fraction"), ("0.0", "not a fraction")])
def test_bad_min_support_text_is_one_mining_error(text, message):
    with pytest.raises(MiningError, match=message):
        parse_min_support(text)


def test_the_cli_refuses_a_bad_threshold_in_one_line_before_reading(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["mine", str(tmp_path / "missing.dat"), "--out",
                                      str(tmp_path / "m"), "--min-support", "abc"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: min_support 'abc' is not a number (a fraction with a point such as 0.01, or a "
        "count written as an integer such as 25)"]


def test_the_command_starts_without_the_heavy_modules():
    heavy = ("numpy", "pyarrow", "pandas", "mlflow", "numba", "litestar", "uvicorn",
             "basketry.data", "basketry.mining", "basketry.model", "basketry.training",
             "basketry.serving")
    code = ("import sys, basketry.cli; print(' '.join(sorted(m for m in sys.modules "
            f"if m.startswith({heavy!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == []
