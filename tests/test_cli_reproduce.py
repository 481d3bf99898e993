"""`basketry train --data-store` then `basketry models reproduce` as a user runs them: the same
checksums printed per file, and a missing or changed snapshot, an unknown version or a taken
--out as one line with nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.data import sample_path

BASKETRY = str(Path(sys.executable).with_name("basketry"))
TRAIN = ["train", str(sample_path()), "--test-days", "30", "--min-support", "0.02",
         "--min-confidence", "0.2"]


def run(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env.update(BASKETRY_HOME=str(home), BASKETRY_TRACK="true", COLUMNS="200", **extra)
    return subprocess.run([BASKETRY, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_train_then_reproduce_from_the_command_line(tmp_path):
    home, store = tmp_path / "home", tmp_path / "snapshots"
    trained = run(home, *TRAIN, "--out", str(tmp_path / "m1"), BASKETRY_DATA_STORE=str(store))
    assert trained.returncode == 0, trained.stderr
    (snapshot,) = store.rglob("*.parquet")

    same = run(home, "models", "reproduce", "1", "--out", str(tmp_path / "again"))
    assert same.returncode == 0, same.stdout + same.stderr
    for name in ("items.parquet", "rules.parquet", "manifest.json (without created_at)"):
        assert f"{name}: same" in same.stdout
    assert "reproduced: the same checksums" in same.stdout and str(snapshot) in same.stdout
    assert (tmp_path / "again" / "manifest.json").is_file()

    taken = run(home, "models", "reproduce", "1", "--out", str(tmp_path / "again"))
    assert taken.returncode == 2 and "already exists" in one_line(taken)

    unknown = run(home, "models", "reproduce", "7", "--out", str(tmp_path / "none"))
    assert unknown.returncode == 2 and "has no version 7" in one_line(unknown)

    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "changed.parquet").write_bytes(bytes(data))
    snapshot.rename(tmp_path / "moved.parquet")
    (tmp_path / "changed.parquet").rename(snapshot)
    changed = run(home, "models", "reproduce", "1", "--out", str(tmp_path / "none"))
    assert changed.returncode == 2 and "has changed since it was recorded" in one_line(changed)

    snapshot.unlink()
    missing = run(home, "models", "reproduce", "1", "--out", str(tmp_path / "none"))
    assert missing.returncode == 2 and "is missing: no snapshot at" in one_line(missing)
    assert not (tmp_path / "none").exists()
