"""`basketry mine` killed at many points, and two runs at once on one target: the target is
always a whole model (the old one or the new one) or absent, never half-written, and what a
killed writer leaves beside it is cleared by the next write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from basketry.model import load_model, read_manifest
from tests.shared_data import shared_file

BASKETRY = str(Path(sys.executable).with_name("basketry"))
#: Kill points, as shares of a whole run's time measured just before (so that they fall
#: through reading, mining and writing however loaded the machine is; the last ones let it
#: finish). Not before a third of it: a signal while the interpreter itself starts (before
#: basketry's first line runs) is Python's own KeyboardInterrupt traceback.
KILL_AT = [0.35, 0.5, 0.65, 0.8, 0.9, 1.0, 1.1, 1.6]


@pytest.fixture(scope="module")
def retail() -> Path:
    return shared_file("retail.dat")


def _mine(data: Path, out: Path, *extra: str) -> list[str]:
    return [BASKETRY, "mine", str(data), "--out", str(out), "--min-support", "0.0003",
            "--min-confidence", "0.05", *extra]


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["KILL", "TERM", "INT"])
def test_a_killed_mine_never_leaves_a_half_written_model(tmp_path, retail, sig):
    out = tmp_path / "model"
    started = time.monotonic()
    first = subprocess.run(_mine(retail, out), capture_output=True, text=True, timeout=120)
    whole = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    old_version = read_manifest(out)["model_version"]
    versions = {old_version}
    for i, delay in enumerate(share * whole for share in KILL_AT):
        # every other run writes a different model, so old and new can be told apart
        extra = ["--max-len", "2"] if i % 2 else []
        process = subprocess.Popen(_mine(retail, out, "--overwrite", *extra),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=120)
        assert b"Traceback" not in stderr
        model = load_model(out)  # the old model or the new one, whole and verified
        versions.add(model.version)
        if process.returncode not in (0, -sig):  # SIGINT/SIGTERM may end it cleanly too
            assert process.returncode in (2, 130, 143), stderr
    assert len(versions) >= 2  # some kills came after the swap: the new model was there whole
    done = subprocess.run(_mine(retail, out, "--overwrite"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert _leftovers(tmp_path, "model") == []  # a killed writer's staging is cleared


@pytest.mark.slow
def test_two_mines_at_once_on_one_target(tmp_path, retail):
    out = tmp_path / "model"
    runs = [subprocess.Popen(_mine(retail, out, "--overwrite", *extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for extra in ([], ["--max-len", "2"])]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    for status, stderr in results:
        assert "Traceback" not in stderr
        assert status in (0, 2), stderr
        if status == 2:  # the other one won the race for a new directory: said in one line
            assert stderr.count("error:") == 1
    assert any(status == 0 for status, _ in results)
    load_model(out)
    assert _leftovers(tmp_path, "model") == []


def test_a_live_writers_staging_is_left_alone(tmp_path):
    """Only staging directories of dead writers are removed: a running writer's is its own."""
    from basketry.model.artifact import _remove_stale_staging

    target = tmp_path / "model"
    live = tmp_path / f".model.{os.getppid()}.abc.tmp"  # the test runner's parent: alive
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    dead = tmp_path / f".model.{dead_pid}.abc.tmp"
    other = tmp_path / f".other.{dead_pid}.abc.tmp"
    for folder in (live, dead, other):
        folder.mkdir()
    _remove_stale_staging(target)
    assert live.exists() and other.exists() and not dead.exists()
