"""Bounded, one-line failures of the tracking store and the registry commands (real processes,
real sockets), the registered-model name check, and the store lock across processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

from basketry.data import sample_path  # noqa: E402
from basketry.training.registry import MODEL_NAME, RegistryError, check_model_name  # noqa: E402

BASKETRY = str(Path(sys.executable).with_name("basketry"))
# the after-the-purchase part is not what these tests are about: trained without it
ARGS = ["--no-after-purchase", "--test-days", "30", "--min-support", "0.02",
        "--min-confidence", "0.2",
        "--scoring", "smoothed"]
GUARD = 120  # seconds: a hung process fails the test instead of hanging the suite


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASKETRY, *args], env=env, capture_output=True, text=True,
                          timeout=GUARD, check=False)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "BASKETRY_"))}
    env.update(BASKETRY_HOME=str(home), BASKETRY_TRACK="true", **extra)
    return env


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    text = " ".join(" ".join(lines).split())
    assert text.startswith("error:") and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in text, text


def _train(env: dict[str, str], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(env, "train", str(sample_path()), *ARGS, "--out", str(out), "--overwrite",
                *extra)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tracking_server_that_never_answers(tmp_path):
    """A socket that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = _env(tmp_path / "home", MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
                   BASKETRY_TRACKING_TIMEOUT="1")
        result = _train(env, tmp_path / "m")
    _one_line_error(result, f"http://127.0.0.1:{port} cannot be used", "no answer within 1 s")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", [["models", "list"], ["models", "rollback"]])
def test_tracking_server_on_a_closed_port(tmp_path, command):
    env = _env(tmp_path / "home", MLFLOW_TRACKING_URI=f"http://127.0.0.1:{_closed_port()}")
    _one_line_error(_run(env, *command), "cannot be used", "refused")


def test_postgres_driver_missing(tmp_path):
    """``import psycopg2`` fails (a shadowing package on PYTHONPATH); the password is not
    printed."""
    shadow = tmp_path / "shadow" / "psycopg2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no psycopg2 here', "
                                        "name='psycopg2')\n")
    env = _env(tmp_path / "home", PYTHONPATH=str(shadow.parent),
               MLFLOW_TRACKING_URI="postgresql+psycopg2://u:secret@127.0.0.1:1/db")
    for command in (["models", "list"], ["train", str(sample_path()), *ARGS, "--out",
                                         str(tmp_path / "m")]):
        result = _run(env, *command)
        _one_line_error(result, "needs the Python driver 'psycopg2'", "u:***@")
        assert "secret" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_postgres_server_unreachable(tmp_path):
    env = _env(tmp_path / "home",
               MLFLOW_TRACKING_URI=f"postgresql+psycopg2://u:pw@127.0.0.1:{_closed_port()}/db")
    _one_line_error(_run(env, "models", "list"), "cannot be reached")


def test_basketry_home_is_a_file(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    for command in (["models", "list"], ["models", "rollback"],
                    ["train", str(sample_path()), *ARGS, "--out", str(tmp_path / "m")]):
        _one_line_error(_run(_env(home), *command), f"BASKETRY_HOME {home} is not a directory")
    assert home.read_text() == "not a directory"


@pytest.mark.parametrize("command", [["models", "list"], ["models", "rollback"],
                                     ["models", "promote", "1"], ["models", "show", "1"]])
def test_registry_commands_on_an_empty_store_create_nothing(tmp_path, command):
    home = tmp_path / "home"
    _one_line_error(_run(_env(home), *command), "no tracking store")
    assert not (home / "mlflow.db").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    env = _env(root / "home")
    result = _train(env, root / "m")
    assert result.returncode == 0, result.stderr
    return env


@pytest.mark.parametrize("command,needle", [
    (["models", "rollback"], "no previous champion"),
    (["models", "rollback", "-m", "nosuch"], "no registered model 'nosuch'"),
    (["models", "promote", "1", "-m", "nosuch"], "no registered model 'nosuch'"),
    (["models", "list", "-m", "nosuch"], "no registered model 'nosuch'"),
    (["models", "show", "9"], "has no version 9"),
    (["models", "rollback", "-m", "a/b"], "invalid registered model name 'a/b'"),
    (["models", "list", "-m", "x@champion"], "invalid registered model name"),
])
def test_registry_commands_on_a_missing_model_or_version(trained, command, needle):
    _one_line_error(_run(trained, *command), needle)


@pytest.mark.parametrize("name", ["basketry", "a", "Retail-2024.v2", "x_y", "9lives"])
def test_valid_model_names(name):
    check_model_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "a@b", "it's", "two words", "-x", ".x",
                                  "x" * 129, "name\n", "é"])
def test_invalid_model_names(name):
    with pytest.raises(RegistryError, match="invalid registered model name"):
        check_model_name(name)


@given(st.text(max_size=140))
def test_an_accepted_name_is_safe_in_references_and_filters(name):
    try:
        check_model_name(name)
    except RegistryError as exc:
        assert str(exc).count("\n") == 0 and not MODEL_NAME.fullmatch(name)
    else:
        assert not set(name) & set("/@'\" \\\n\t:")
        assert 1 <= len(name) <= 128


#: A read-modify-write of a counter file under the store lock, in a process of its own.
BUMP = """
import os, sys
from pathlib import Path
from basketry.training.locks import store_lock
uri, counter, times = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
for _ in range(times):
    with store_lock(uri):
        value = int(counter.read_text())
        os.sched_yield()
        counter.write_text(str(value + 1))
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_store_lock_serialises_processes(tmp_path, kind):
    if kind == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        uri = os.environ.get("BASKETRY_TEST_POSTGRES", "")
        if not uri:
            if os.environ.get("CI"):
                pytest.fail("CI: PostgreSQL must be running with BASKETRY_TEST_POSTGRES set")
            pytest.skip("BASKETRY_TEST_POSTGRES is not set")
        pytest.importorskip("psycopg2")
    counter = tmp_path / "counter"
    counter.write_text("0")
    workers = [subprocess.Popen([sys.executable, "-c", BUMP, uri, str(counter), "50"])
               for _ in range(4)]
    assert [worker.wait(GUARD) for worker in workers] == [0] * 4
    assert int(counter.read_text()) == 200
