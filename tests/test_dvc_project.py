"""`basketry init --dvc` run by DVC itself: `dvc repro` calls this checkout's basketry, dvc.lock
pins the data and the model, a second repro does nothing, a changed parameter retrains, `dvc exp
run --set-param` works, and a parameter edited into a bad value fails the stage with basketry's
one line, leaving the registry and dvc.lock as they were.

DVC's dependency tree is not ours: it lives in its own virtualenv, made once under
~/.cache/basketry-test-dvc (BASKETRY_TEST_DVC_CACHE), keyed by the pinned version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from basketry.training.project import stage_commands

pytestmark = pytest.mark.slow  # DVC runs the pipeline: about a minute per training

DVC_VERSION = "3.67.1"
CACHE = Path(os.environ.get("BASKETRY_TEST_DVC_CACHE",
                            Path.home() / ".cache" / "basketry-test-dvc"))
#: The directory holding this checkout's `basketry` command, first on the stages' PATH.
BASKETRY_BIN = Path(sys.executable).parent


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/dvc/", timeout=15).close()
    except OSError:
        return False
    return True


def dvc_python() -> Path:
    """The interpreter of DVC's virtualenv, made once: built beside its final place and renamed
    into it, so that a concurrent or killed run never leaves a half-made one in use."""
    venv = CACHE / f"dvc-{DVC_VERSION}"
    python, stamp = venv / "bin" / "python", venv / "pins.txt"
    if python.exists() and stamp.exists() and stamp.read_text() == f"dvc=={DVC_VERSION}":
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f".dvc-{DVC_VERSION}.{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    pip = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q",
                          f"dvc=={DVC_VERSION}"], capture_output=True, text=True)
    if pip.returncode:
        shutil.rmtree(building, ignore_errors=True)
        if not _pypi_reachable():  # the one reason to skip: anything else is a failure
            pytest.skip(f"PyPI is unreachable: cannot install dvc=={DVC_VERSION}")
        raise AssertionError(f"pip install dvc=={DVC_VERSION} failed:\n{pip.stderr[-2000:]}")
    (building / "pins.txt").write_text(f"dvc=={DVC_VERSION}")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        building.rename(venv)
    except OSError:  # another run finished first: use its
        shutil.rmtree(building, ignore_errors=True)
    return python


class Project:
    """A git repository holding a `basketry init --dvc` project, and DVC to run in it."""

    def __init__(self, root: Path, home: Path, python: Path) -> None:
        self.root, self.home, self.python = root, home, python
        self.env = {**os.environ, "PATH": f"{BASKETRY_BIN}{os.pathsep}{os.environ['PATH']}",
                    "BASKETRY_HOME": str(home), "DVC_NO_ANALYTICS": "1",
                    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        for name in ("MLFLOW_TRACKING_URI", "BASKETRY_TRACK", "BASKETRY_MIN_SUPPORT",
                     "BASKETRY_MIN_CONFIDENCE", "BASKETRY_REGISTERED_MODEL", "BASKETRY_FORMAT"):
            self.env.pop(name, None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=600)
        if check and done.returncode:
            raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}\n"
                                 f"{done.stderr}")
        return done

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.python), "-m", "dvc", *args, check=check)

    def lock(self) -> dict:
        return yaml.safe_load((self.root / "dvc.lock").read_text())

    def versions(self) -> list[str]:
        """The registered versions, from the registry itself (`basketry models list`)."""
        from basketry.training.registry import list_versions

        db = self.home / "mlflow.db"
        if not db.exists():
            return []
        return [row["version"] for row in list_versions(uri=f"sqlite:///{db}")]

    def set_param(self, key: str, value: str) -> None:
        path = self.root / "params.yaml"
        lines = path.read_text().splitlines()
        hits = [i for i, line in enumerate(lines) if line.startswith(f"  {key}: ")]
        assert len(hits) == 1, key
        lines[hits[0]] = f"  {key}: {value}"
        path.write_text("\n".join(lines) + "\n")


def _stage_hash(lock: dict, stage: str, kind: str, path: str) -> str:
    return next(e["md5"] for e in lock["stages"][stage][kind] if e["path"] == path)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    python = dvc_python()
    root = tmp_path_factory.mktemp("dvc-project")
    p = Project(root, tmp_path_factory.mktemp("basketry-home"), python)
    p.run("git", "init", "-q")
    p.run(str(BASKETRY_BIN / "basketry"), "init", ".", "--dvc")
    p.dvc("init", "-q")
    p.run("git", "add", "-A")
    p.run("git", "commit", "-q", "-m", "a basketry project")
    first = p.dvc("repro")
    for stage in ("prepare", "train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in first.stdout
    p.run("git", "add", "-A")
    p.run("git", "commit", "-q", "-m", "first model")
    yield p


def test_repro_pins_data_and_model_and_registers(project: Project) -> None:
    lock = project.lock()
    data = yaml.safe_load((project.root / "params.yaml").read_text())["data"]
    for stage in ("train", "evaluate", "register"):
        assert _stage_hash(lock, stage, "deps", data) == \
            _stage_hash(lock, "prepare", "deps", data)
    model = _stage_hash(lock, "train", "outs", "model")
    assert model.endswith(".dir")
    # evaluate and register read the model train wrote, pinned by the same hash
    assert _stage_hash(lock, "evaluate", "deps", "model") == model
    assert _stage_hash(lock, "register", "deps", "model") == model
    assert lock["stages"]["train"]["params"]["params.yaml"]["train"]["min-support"] == 0.01
    # what DVC ran is what the project's commands say, stage by stage
    commands = stage_commands((project.root / "params.yaml").read_text())
    for stage in ("train", "evaluate", "register"):
        assert lock["stages"][stage]["cmd"] == commands[stage]
    assert (project.root / "model" / "manifest.json").is_file()
    profile = json.loads((project.root / "prepared" / "profile.json").read_text())
    report = json.loads((project.root / "reports" / "train.json").read_text())
    assert profile["n_baskets"] == report["data"]["n_baskets"]
    # the evaluate stage measured train's model on train's split: the same figures
    metrics = json.loads((project.root / "reports" / "metrics.json").read_text())
    assert metrics["metrics"] == report["metrics"]
    shown = project.dvc("metrics", "show", "--json")
    assert "hit_rate@10" in shown.stdout
    registration = json.loads((project.root / "reports" / "registration.json").read_text())
    assert registration["version"] == "1" and registration["promoted"] is True
    assert project.versions() == ["1"]  # the register stage registered through the gate

    again = project.dvc("repro")
    for stage in ("prepare", "train", "evaluate", "register"):
        assert f"Stage '{stage}' didn't change" in again.stdout
    assert "Running stage" not in again.stdout
    assert project.lock() == lock
    assert project.versions() == ["1"]


def test_a_changed_train_param_trains_evaluates_and_registers_again(project: Project) -> None:
    before = project.lock()
    project.set_param("min-confidence", "0.3")
    done = project.dvc("repro")
    assert "Stage 'prepare' didn't change" in done.stdout
    for stage in ("train", "evaluate", "register"):
        assert f"Running stage '{stage}'" in done.stdout
    after = project.lock()
    assert after["stages"]["train"]["params"]["params.yaml"]["train"]["min-confidence"] == 0.3
    assert _stage_hash(after, "train", "outs", "model") != \
        _stage_hash(before, "train", "outs", "model")
    report = json.loads((project.root / "reports" / "train.json").read_text())
    assert report["mining"]["min_confidence"] == 0.3
    assert project.versions() == ["2", "1"]
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "min-confidence 0.3")


def test_a_changed_register_param_registers_again_without_training(project: Project) -> None:
    before = project.lock()
    project.set_param("tolerance", "0.01")
    done = project.dvc("repro")
    for stage in ("prepare", "train", "evaluate"):
        assert f"Stage '{stage}' didn't change" in done.stdout
    assert "Running stage 'register'" in done.stdout
    after = project.lock()
    assert _stage_hash(after, "train", "outs", "model") == \
        _stage_hash(before, "train", "outs", "model")
    assert project.versions() == ["3", "2", "1"]
    registration = json.loads((project.root / "reports" / "registration.json").read_text())
    assert registration["version"] == "3"
    assert any("tolerance 0.01" in reason for reason in registration["gate"])
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "tolerance 0.01")


def test_exp_run_set_param(project: Project) -> None:
    done = project.dvc("exp", "run", "--set-param", "train.min-support=0.02")
    assert "Ran experiment" in done.stdout + done.stderr
    report = json.loads((project.root / "reports" / "train.json").read_text())
    assert report["mining"]["min_support"] == 0.02
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    assert "0.02" in json.dumps(shown)
    project.run("git", "checkout", "--", "params.yaml", "dvc.lock", "reports")
    project.dvc("checkout", "-q")


def test_a_bad_param_fails_the_stage_with_one_line(project: Project) -> None:
    lock, versions = project.lock(), project.versions()
    model = _stage_hash(lock, "train", "outs", "model")
    project.set_param("min-confidence", "7")
    failed = project.dvc("repro", check=False)
    assert failed.returncode != 0
    errors = [line for line in (failed.stdout + failed.stderr).splitlines()
              if line.startswith("error:")]
    assert len(errors) == 1 and "confidence" in errors[0], failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    assert project.versions() == versions
    assert project.lock() == lock
    assert _stage_hash(project.lock(), "train", "outs", "model") == model
    project.run("git", "checkout", "--", "params.yaml")
