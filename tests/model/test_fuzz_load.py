"""Random edits of a sound model, re-signed, never crash the process that loads and scores them
(tests/model/fuzz_load.py, run in a subprocess so that a segfault fails this test instead of
ending the test run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_random_edits_are_refused_or_load_into_a_model_that_answers() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.model.fuzz_load", "300"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    # a negative status is a signal: -11 is the segfault this test exists to catch
    assert done.returncode == 0, f"status {done.returncode}\n{done.stdout}\n{done.stderr}"
    found = re.search(r"loaded=(\d+) refused=(\d+)", done.stdout)
    assert found, done.stdout
    loaded, refused = map(int, found.groups())
    # both outcomes occur: the edits reach the scorer, and the checks refuse
    assert loaded > 0 and refused > 0, done.stdout
