"""`basketry mine` of a basket file, run as a user runs it, imports neither pandas nor
pyarrow.compute: pyarrow imports pandas at its first pa.array or to_numpy wherever pandas is
installed (0.2 s of the command's start), so the model's tables are built from buffers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from basketry.model import read_artifact

pytest.importorskip("pandas")  # without pandas installed, this test could not fail

BASKETRY = Path(sys.executable).with_name("basketry")
BASKETS = ["bread milk", "bread butter milk", "beer chips", "bread butter", "milk chips",
           "bread milk chips", "beer chips bread", "butter milk"] * 5


def imported_modules(importtime_output: str) -> set[str]:
    """The module names in the output of ``python -X importtime``."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_output.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


@pytest.mark.parametrize("name, sep", [("baskets.dat", " "), ("baskets.csv", ",")])
def test_mine_imports_neither_pandas_nor_pyarrow_compute(tmp_path, name, sep):
    data = tmp_path / name
    data.write_text("".join(line.replace(" ", sep) + "\n" for line in BASKETS))
    out = tmp_path / "model"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(BASKETRY), "mine", str(data),
         "--min-support", "0.1", "--min-confidence", "0.1", "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = imported_modules(done.stderr)
    assert {"pyarrow", "pyarrow.parquet", "basketry.model.artifact"} <= modules  # the parsing
    assert not {m for m in modules if m == "pandas" or m.startswith("pandas.")}
    assert "pyarrow.compute" not in modules
    artifact = read_artifact(out)
    assert artifact.rules.num_rows > 0
    assert set(artifact.items.column("item").to_pylist()) == {
        "beer", "bread", "butter", "chips", "milk"}
