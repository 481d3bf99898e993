"""Loading and scoring a model imports neither pandas nor pyarrow.compute: pyarrow imports
pandas at its first to_numpy wherever pandas is installed, 0.2 s of every serving worker's
start (a serving install has no pandas; a development one does)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serving.conftest import write_version


def test_loading_and_scoring_a_model_imports_no_pandas(tmp_path: Path) -> None:
    write_version(tmp_path / "model", "v1")
    code = (
        "import sys\n"
        "from basketry.model import load_model\n"
        f"m = load_model({str(tmp_path / 'model')!r})\n"
        "m.recommend(['a', 'b'], k=3)\n"
        "print(sorted(n for n in ('pandas', 'pyarrow.compute') if n in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
