"""The CLI's promise on failure, as a table of cases: one line naming the problem on stderr, exit
status 2 (or 1 with a `--debug` hint for a bug), no traceback, and nothing written or lost.

Full disks and read-only places are real file systems (a small tmpfs mounted for the test), so
the errors come from the kernel, as they would in production.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import basketry.cli as cli
import basketry.cli.mining
from basketry.cli import app
from basketry.model import load_model

BASKETS = "\n".join(["bread milk", "bread butter milk", "beer chips", "bread milk eggs",
                     "beer chips salsa", "milk eggs"] * 5) + "\n"
MINE = ["--min-support", "0.1", "--min-confidence", "0.3"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with its bytes: what 'nothing changed' means."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def assert_one_line(status: int, stderr: str, expected_status: int, *needles: str) -> None:
    assert status == expected_status, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A folder holding the shop's data and an unrelated file."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "sales.dat").write_text(BASKETS)
    (folder / "notes.txt").write_text("do not delete\n")
    return folder


def _model(tmp_path: Path, shop: Path) -> Path:
    out = tmp_path / "model"
    status, _, stderr = invoke("mine", str(shop / "sales.dat"), "--out", str(out), *MINE)
    assert status == 0, stderr
    return out


# ---- outputs that must be refused before any work ------------------------------------------
def _other_dir(tmp_path: Path, shop: Path) -> Path:
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.csv").write_text("precious\n")
    return other


OUTPUT_CASES: list[tuple[str, Callable[[Path, Path], list[str]], tuple[str, ...]]] = [
    ("the folder holding the input, with --overwrite",
     lambda t, s: ["mine", str(s / "sales.dat"), "--out", str(s), "--overwrite"],
     ("holds the input",)),
    ("a parent of the folder holding the input",
     lambda t, s: ["mine", str(s / "sales.dat"), "--out", str(t), "--overwrite"],
     ("holds the input",)),
    ("the input file itself", lambda t, s: ["mine", str(s / "sales.dat"), "--out",
                                            str(s / "sales.dat"), "--overwrite"],
     ("is the input",)),
    ("an existing regular file", lambda t, s: ["mine", str(s / "sales.dat"), "--out",
                                               str(s / "notes.txt"), "--overwrite"],
     ("notes.txt", "is a file")),
    ("a path under a regular file", lambda t, s: ["mine", str(s / "sales.dat"), "--out",
                                                  str(s / "notes.txt" / "model")],
     ("notes.txt", "is a file")),
    ("a directory that is not a model, with --overwrite",
     lambda t, s: ["mine", str(s / "sales.dat"), "--out", str(_other_dir(t, s)), "--overwrite"],
     ("not a basketry model directory",)),
    ("a directory that is not a model, without --overwrite",
     lambda t, s: ["mine", str(s / "sales.dat"), "--out", str(_other_dir(t, s))],
     ("already exists", "--overwrite")),
    ("train: the folder holding the input",
     lambda t, s: ["train", str(s / "sales.dat"), "--out", str(s), "--overwrite", *MINE],
     ("holds the input",)),
    ("train: a report prefix that is a directory",
     lambda t, s: ["train", str(s / "sales.dat"), "--out", str(t / "m"), "--report",
                   str(_report_dir(t)), *MINE], ("is a directory",)),
    ("tune: the folder holding the input",
     lambda t, s: ["tune", str(s / "sales.dat"), "--out", str(s), "--overwrite", *MINE,
                   "--grid", "scoring=confidence"],
     ("holds the input",)),
    ("export onto its own model directory",
     lambda t, s: ["export", str(_model(t, s)), "--out", str(t / "model"), "--overwrite"],
     ("is the input",)),
    ("export onto a directory", lambda t, s: ["export", str(_model(t, s)), "--out", str(s)],
     ("is a directory",)),
    ("rules --output of an unknown kind",
     lambda t, s: ["rules", str(_model(t, s)), "--output", "xlsx"], ("xlsx",)),
]


def _report_dir(tmp_path: Path) -> Path:
    (tmp_path / "r.json").mkdir()
    return tmp_path / "r"


@pytest.mark.parametrize(("args", "needles"), [(c[1], c[2]) for c in OUTPUT_CASES],
                         ids=[c[0] for c in OUTPUT_CASES])
def test_refused_outputs_change_nothing(tmp_path, shop, args, needles):
    argv = args(tmp_path, shop)
    before = snapshot(tmp_path)
    status, stdout, stderr = invoke(*argv)
    assert status == 2, stdout + stderr
    for needle in needles:
        assert needle in stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert snapshot(tmp_path) == before


# ---- the kernel says no: full disk, read-only, immutable ----------------------------------
@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    where.mkdir()
    opts = ",".join((f"size={size}", *options))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot mount a tmpfs here ({exc}); CI runs this as root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("size", ["4k", "16k", "40k"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, shop, size):
    """ENOSPC at different points of the write (staging dir, first table, manifest)."""
    with mounted_tmpfs(tmp_path / "disk", size) as disk:
        # fill what is left so that the model cannot fit whatever the size
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as fh:
            fh.write(b"x" * (int(size[:-1]) * 1024 - 2048))
        before = snapshot(disk)
        status, _, stderr = invoke("mine", str(shop / "sales.dat"), "--out",
                                   str(disk / "model"), *MINE)
        if status == 0:  # it fitted after all: then it must be a whole, loadable model
            load_model(disk / "model")
            return
        assert_one_line(status, stderr, 2, "No space left on device")
        assert snapshot(disk) == before  # no model, no staging directory left behind


def test_a_read_only_file_system_is_one_line(tmp_path, shop):
    with mounted_tmpfs(tmp_path / "ro", "1m", "ro") as place:
        status, _, stderr = invoke("mine", str(shop / "sales.dat"), "--out",
                                   str(place / "model"), *MINE)
        assert_one_line(status, stderr, 2, "Read-only file system")
        assert list(place.iterdir()) == []


def test_an_immutable_directory_is_one_line(tmp_path, shop):
    place = tmp_path / "frozen"
    place.mkdir()
    if subprocess.run(["chattr", "+i", str(place)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported on this file system or user")
    try:
        status, _, stderr = invoke("mine", str(shop / "sales.dat"), "--out",
                                   str(place / "model"), *MINE)
        assert_one_line(status, stderr, 2, str(place))
        assert list(place.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(place)], check=False)


# ---- the mapping itself --------------------------------------------------------------------
@pytest.mark.parametrize(("exc", "status", "needle"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/m"), 2, "/data/m: No space left"),
    (PermissionError(errno.EACCES, "Permission denied", "/x"), 2, "check the permissions"),
    (MemoryError(), 2, "out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (ZeroDivisionError("division by zero"), 1, "basketry --debug"),
    (RuntimeError("multi\nline\nmessage"), 1, "multi line message"),
    (ModuleNotFoundError("No module named 'numba'", name="numba"), 2, "basketry[train]"),
    (ModuleNotFoundError("No module named 'mlflow.x'", name="mlflow.x"), 2, "basketry[mlflow]"),
    (ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy"), 2,
     "basketry[monitor]"),
    (ModuleNotFoundError("No module named 'nosuch'", name="nosuch"), 1, "basketry --debug"),
])
def test_describe_failure_maps_each_class_to_one_line(exc, status, needle):
    got_status, line = cli.describe_failure(exc)
    assert got_status == status
    assert needle in line and "\n" not in line


def test_an_unexpected_error_is_short_and_debug_shows_the_traceback(tmp_path, shop, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("the bug")

    monkeypatch.setattr(basketry.cli.mining, "print_read_report", broken)
    argv = ["mine", str(shop / "sales.dat"), "--out", str(tmp_path / "m"), *MINE]
    status, _, stderr = invoke(*argv)
    assert_one_line(status, stderr, 1, "ZeroDivisionError", "the bug", "--debug")
    assert not (tmp_path / "m").exists()
    result = CliRunner().invoke(app, ["--debug", *argv])
    assert isinstance(result.exception, ZeroDivisionError)  # the traceback is the user's
    monkeypatch.setenv("BASKETRY_DEBUG", "1")
    assert isinstance(CliRunner().invoke(app, argv).exception, ZeroDivisionError)


def test_the_installed_command_prints_no_traceback(tmp_path, shop):
    """The real console script, not the test runner: a bad input is one line and exit 2."""
    script = Path(sys.executable).with_name("basketry")
    if not script.exists():
        pytest.skip("the basketry console script is not installed beside this Python")
    done = subprocess.run([str(script), "mine", str(shop / "sales.dat"), "--out", str(shop),
                           "--overwrite"], capture_output=True, text=True, timeout=120)
    assert_one_line(done.returncode, done.stderr, 2, "holds the input")
    assert (shop / "notes.txt").read_text() == "do not delete\n"


@pytest.mark.parametrize("name", sorted(cli.KNOWN_ERRORS))
def test_every_known_error_name_is_an_exception_class(name):
    import importlib

    module, _, qualname = name.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), qualname), Exception)


def test_the_timestamp_advice_names_a_flag_that_exists(tmp_path):
    table = tmp_path / "sales.csv"
    table.write_text("order,sku,when\n1,a,2024-13-01\n1,b,2024-13-01\n2,a,2024-14-01\n")
    base = ["profile", str(table), "--format", "long-csv", "--transaction-col", "order",
            "--item-col", "sku", "--timestamp-col", "when"]
    status, _, stderr = invoke(*base)
    assert_one_line(status, stderr, 2, "line 2", "--timestamp-format")
    status, stdout, stderr = invoke(*base, "--timestamp-format", "%Y-%d-%m")
    assert status == 0, stderr
    assert '"n_baskets": 2' in stdout


def test_a_command_whose_extra_is_missing_names_the_extra(tmp_path, shop):
    """On an install without the training extra (numba made unimportable here), `train` says
    which extra to install instead of reporting a bug."""
    script = Path(sys.executable).with_name("basketry")
    if not script.exists():
        pytest.skip("the basketry console script is not installed beside this Python")
    blocker = tmp_path / "blocker" / "numba"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'numba'\", name='numba')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "BASKETRY_KERNELS": "jit",
           "BASKETRY_TRACK": "false"}
    done = subprocess.run([str(script), "train", str(shop / "sales.dat"), "--out",
                           str(tmp_path / "m"), *MINE], capture_output=True, text=True,
                          timeout=120, env=env)
    assert_one_line(done.returncode, done.stderr, 2, "pip install 'basketry[train]'")
    assert not (tmp_path / "m").exists()


def test_the_error_line_is_text_not_markup(tmp_path):
    """A path holding brackets is printed as it is (rich would take [x] for a style)."""
    missing = tmp_path / "sales[2024].dat"
    status, _, stderr = invoke("mine", str(missing), "--out", str(tmp_path / "m"), *MINE)
    assert_one_line(status, stderr, 2, "sales[2024].dat")
