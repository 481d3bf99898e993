"""The registry under concurrency and kills, with real ``basketry`` processes on a real store.

- Concurrent trains on a new store: no schema race, every promotion in the champion history,
  rollback walks back exactly (SQLite; PostgreSQL when ``BASKETRY_TEST_POSTGRES`` is set).
- A ``basketry train`` killed (SIGKILL, SIGTERM, SIGINT) at every step of its registration
  (the ``BASKETRY_FAULT_AT`` test hook): the store is consistent, or ``doctor`` reports it and
  ``doctor(repair=True)`` makes it consistent; no alias is left on an incomplete version;
  rollback still works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.data import sample_path  # noqa: E402
from basketry.training.doctor import doctor  # noqa: E402
from basketry.training.registry import (  # noqa: E402
    CHAMPION,
    HISTORY_TAG,
    STATE_TAG,
    promote,
    rollback,
)

BASKETRY = str(Path(sys.executable).with_name("basketry"))
# the after-the-purchase part is not what these tests are about: trained without it
ARGS = ["--no-after-purchase", "--test-days", "30", "--min-support", "0.02",
        "--min-confidence", "0.2",
        "--scoring", "smoothed"]
#: Steps of a registration (in order) where the hook kills the process.
STEPS = ["locked", "version_created", "challenger_set", "history_set", "champion_set",
         "promotion_tagged", "run_tagged", "completed", "unlocked", "run_ending"]
#: Steps after which the registration is complete (the kill only leaves the run RUNNING).
COMPLETE_AT = {"completed", "unlocked", "run_ending"}
GUARD = 300  # seconds: a hung process fails the test instead of hanging the suite


def _env(home: Path, uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env.update(BASKETRY_HOME=str(home), BASKETRY_TRACK="true", **extra)
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _basketry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASKETRY, *args], env=env, capture_output=True, text=True,
                          timeout=GUARD, check=False)


def _train_command(out: Path, *extra: str) -> list[str]:
    return [BASKETRY, "train", str(sample_path()), *ARGS, "--out", str(out), "--overwrite",
            *extra]


def _client(uri: str):
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _assert_consistent(uri: str, name: str) -> list[str]:
    """The registry invariants; the champion history."""
    c = _client(uri)
    versions = {str(mv.version): mv for mv in c.search_model_versions(f"name = '{name}'")}
    for version, mv in versions.items():
        assert (mv.tags or {}).get(STATE_TAG) == "complete", version
    registered = c.get_registered_model(name)
    aliases = {str(a): str(v) for a, v in (registered.aliases or {}).items()}
    assert set(aliases.values()) <= set(versions)
    history = json.loads((registered.tags or {}).get(HISTORY_TAG, "[]"))
    assert set(history) <= set(versions)
    if history:
        assert aliases.get(CHAMPION) == history[-1]
    experiments = [e.experiment_id for e in c.search_experiments()]
    assert not c.search_runs(experiments, "attributes.status = 'RUNNING'")
    report = doctor(name=name, uri=uri)
    assert report.findings == [], report.lines()
    return history


def _assert_rollback_walks(uri: str, name: str, history: list[str]) -> None:
    """Rollback goes to the previous champion, and promoting back restores the history."""
    if len(history) < 2:
        return
    assert rollback(name=name, uri=uri) == (history[-1], history[-2])
    assert _assert_consistent(uri, name) == history[:-1]
    promote(history[-1], name=name, uri=uri)
    assert _assert_consistent(uri, name) == history


def _concurrent_trains(env: dict[str, str], root: Path, n: int, *extra: str) -> None:
    processes = [subprocess.Popen(_train_command(root / f"m{i}", *extra), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for i in range(n)]
    outputs = [p.communicate(timeout=GUARD)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "Traceback" not in output
        assert "promoted to champion" in " ".join(output.split())


def _assert_walks_back(env: dict[str, str], uri: str, name: str, n: int) -> None:
    history = _assert_consistent(uri, name)
    assert sorted(history, key=int) == [str(v) for v in range(1, n + 1)]
    for expected in reversed(history[:-1]):
        result = _basketry(env, "models", "rollback", "-m", name)
        assert result.returncode == 0, result.stderr
        assert f"champion: version {expected}" in " ".join(result.stdout.split())
    result = _basketry(env, "models", "rollback", "-m", name)
    assert result.returncode == 2 and "no previous champion" in result.stderr


def test_concurrent_trains_on_a_new_sqlite_store(tmp_path):
    home = tmp_path / "home"
    env = _env(home)
    _concurrent_trains(env, tmp_path, 3)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    _assert_walks_back(env, uri, "basketry", 3)


def _postgres_uri() -> str | None:
    uri = os.environ.get("BASKETRY_TEST_POSTGRES")
    if not uri:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL must be running with BASKETRY_TEST_POSTGRES set")
        pytest.skip("BASKETRY_TEST_POSTGRES is not set (see docs/operations.md)")
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for a PostgreSQL store")
    return uri


@pytest.mark.slow
def test_concurrent_trains_on_postgres(tmp_path):
    """On the (possibly still empty) CI database: first use under the advisory lock too."""
    uri = _postgres_uri()
    name = f"concurrent-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path / "home", uri)
    _concurrent_trains(env, tmp_path, 3, "--registered-model", name)
    _assert_walks_back(env, uri, name, 3)


# ---- kills at every step of a registration ---------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with a champion (so that a registration moves one)."""
    root = tmp_path_factory.mktemp("kills")
    env = _env(root / "home")
    result = subprocess.run(_train_command(root / "first"), env=env, capture_output=True,
                            text=True, timeout=GUARD, check=False)
    assert result.returncode == 0, result.stderr
    return root, env, f"sqlite:///{root / 'home' / 'mlflow.db'}"


def _killed_train(store, step: str, sig: str) -> subprocess.CompletedProcess[str]:
    root, env, _uri = store
    env = {**env, "BASKETRY_FAULT_AT": step, "BASKETRY_FAULT_SIGNAL": sig}
    return subprocess.run(_train_command(root / "killed"), env=env, capture_output=True,
                          text=True, timeout=GUARD, check=False)


def _check_kill(store, step: str, sig: str) -> None:
    uri = store[2]
    c = _client(uri)
    before = _assert_consistent(uri, "basketry")
    n_versions = len(c.search_model_versions("name = 'basketry'"))
    result = _killed_train(store, step, sig)
    if sig == "KILL":
        assert result.returncode == -signal.SIGKILL, result.stderr
    else:
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stderr
    report = doctor(name="basketry", uri=uri)
    if sig == "KILL":
        # the run is left RUNNING at every step: doctor must say so
        assert not report.consistent, step
        assert any(f.subject.startswith("run ") for f in report.findings)
        if step not in COMPLETE_AT and step not in ("locked",):
            pending = [f for f in report.findings if "did not finish" in f.problem]
            assert pending, report.lines()
        repaired = doctor(name="basketry", uri=uri, repair=True)
        assert repaired.consistent, repaired.lines()
    history = _assert_consistent(uri, "basketry")
    versions = len(c.search_model_versions("name = 'basketry'"))
    # a completed registration is kept (SIGTERM/SIGINT undo it up to its last step)
    registered = step in (COMPLETE_AT if sig == "KILL" else {"run_ending"})
    if registered:  # the registration had completed: kept, and the new version is champion
        assert versions == n_versions + 1 and history == [*before, history[-1]]
    else:  # undone: as before the killed train
        assert versions == n_versions and history == before, step
    run = c.search_runs([c.get_experiment_by_name("basketry").experiment_id],
                        order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert run.info.status == ("FINISHED" if registered else "KILLED"), step
    _assert_rollback_walks(uri, "basketry", history)


@pytest.mark.parametrize("step", ["version_created", "champion_set", "run_ending"])
def test_sigkill_during_registration(store, step):
    _check_kill(store, step, "KILL")


@pytest.mark.slow
@pytest.mark.parametrize("step", [s for s in STEPS
                                  if s not in ("version_created", "champion_set", "run_ending")])
def test_sigkill_at_every_other_step(store, step):
    _check_kill(store, step, "KILL")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["TERM", "INT"])
@pytest.mark.parametrize("step", ["version_created", "champion_set", "completed", "run_ending"])
def test_sigterm_and_sigint_undo_and_end_the_run_killed(store, step, sig):
    _check_kill(store, step, sig)


def test_next_registration_repairs_a_killed_one(store):
    """A registration killed with champion on its pending version: the next train, under the
    lock, puts it back before registering (and doctor then finds nothing)."""
    root, env, uri = store
    before = _assert_consistent(uri, "basketry")
    assert _killed_train(store, "champion_set", "KILL").returncode == -signal.SIGKILL
    c = _client(uri)
    champion = c.get_model_version_by_alias("basketry", "champion")
    assert champion.tags[STATE_TAG] == "pending"  # the state doctor and the next train find
    result = _basketry(env, "train", str(sample_path()), *ARGS, "--out", str(root / "next"),
                       "--overwrite")
    assert result.returncode == 0, result.stderr
    history = _assert_consistent(uri, "basketry")
    assert history[:-1] == before and history[-1] != champion.version
    _assert_rollback_walks(uri, "basketry", history)


@pytest.mark.parametrize("command,step", [(["models", "rollback"], "rollback_history_set"),
                                          (["models", "promote", "1"], "history_set")])
def test_killed_rollback_and_promote_are_finished_by_doctor(store, command, step):
    root, env, uri = store
    history = _assert_consistent(uri, "basketry")
    if len(history) < 2 or history[-1] == "1":  # something to roll back, 1 not champion
        trained = _basketry(env, "train", str(sample_path()), *ARGS, "--out",
                            str(root / "more"), "--overwrite")
        assert trained.returncode == 0, trained.stderr
        history = _assert_consistent(uri, "basketry")
    killed = _basketry({**env, "BASKETRY_FAULT_AT": step}, *command)
    assert killed.returncode == -signal.SIGKILL
    report = doctor(name="basketry", uri=uri)
    assert [f.subject for f in report.findings] == ["champion"], report.lines()
    assert doctor(name="basketry", uri=uri, repair=True).consistent
    after = _assert_consistent(uri, "basketry")
    assert after == (history[:-1] if command[1] == "rollback" else [*history, "1"])
    _assert_rollback_walks(uri, "basketry", after)


def test_kill_while_creating_the_store_leaves_no_half_made_database(tmp_path):
    home = tmp_path / "home"
    env = _env(home)
    killed = _basketry({**env, "BASKETRY_FAULT_AT": "store_created"}, "models", "list")
    # a read-only command does not create a store
    assert killed.returncode == 2 and "no tracking store" in killed.stderr
    killed = subprocess.run(_train_command(tmp_path / "m"),
                            env={**env, "BASKETRY_FAULT_AT": "store_created"},
                            capture_output=True, text=True, timeout=GUARD, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not (home / "mlflow.db").exists()
    result = _basketry(env, "models", "list")
    assert result.returncode == 2 and "no tracking store" in result.stderr
    result = subprocess.run(_train_command(tmp_path / "m"), env=env, capture_output=True,
                            text=True, timeout=GUARD, check=False)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in home.iterdir() if "creating" in p.name] == []
