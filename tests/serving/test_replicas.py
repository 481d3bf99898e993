"""Two serving replicas behind a round-robin balancer, for real: two ``basketry serve``
processes (started with the serving image's command, ``SERVE_COMMAND``), each with a home of its
own as two containers would have, sharing the MLflow registry and the monitoring store on
PostgreSQL (``BASKETRY_TEST_POSTGRES``; skipped without it, failed under ``CI``).

Under a steady client load alternating between the replicas, as the balancer of
``deploy/nginx.conf`` does (round robin; a request refused, reset or answered 502/503 by one
replica retried once on the other):

- ``basketry models promote`` moves the champion alias: every replica answers with the new
  version within ``BOUND`` seconds (the watcher polls every ``POLL`` seconds), never goes back
  to the old one, and no request fails;
- one replica is killed (SIGKILL of its process group, as a container dies) and started again
  with the same command while the other answers everything; the restarted one serves the
  champion at once;
- both capture what they answered into the one monitoring store: every answer of a replica
  that stopped cleanly is there exactly once, with the version that answered it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the test extra is not installed")

from tests.monitoring.conftest import pg_url, postgres_url  # noqa: E402, F401  (pg_url: the fixture)

#: The command the serving image runs (deploy/Containerfile's CMD; tests/test_deploy_files.py
#: holds the image to it): everything else comes from the environment.
SERVE_COMMAND = ["basketry", "serve"]
#: The replicas' watcher interval (``BASKETRY_WATCH``), seconds.
POLL = 1.0
#: Seconds within which every replica must answer with a newly promoted version, counted from
#: the alias move: a poll, a check, a load (about POLL + 1 s measured), and room for a loaded
#: machine.
BOUND = POLL + 10.0
RATE = 60.0  # requests per second per client thread (two threads: 120 req/s in all)
GUARD = 300.0  # seconds: no loop or process of this test runs longer
BIN = Path(sys.executable).parent
TRAIN_ARGS = ["--test-days", "30", "--min-confidence", "0.2", "--scoring", "smoothed"]


def _postgres() -> str:
    url = postgres_url()  # skips without PostgreSQL, fails under CI
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    return url


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASKETRY_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `basketry` is this venv's
    env["COLUMNS"] = "200"  # one line per message in the commands' output
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(["basketry", *args], env=env, capture_output=True, text=True,
                            timeout=GUARD, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return " ".join(result.stdout.split())


@dataclass
class Registry:
    uri: str
    name: str
    env: dict[str, str]  # the trainer's
    #: registry version -> the model_version its answers carry
    versions: dict[str, str]
    champion: str


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """Two versions of one registered model on PostgreSQL, trained concurrently from the
    bundled sample at two supports (so they answer differently); the gate made one champion."""
    from basketry.data import sample_path

    uri = _postgres()
    name = f"replicas-{uuid.uuid4().hex[:8]}"
    env = _clean_env(BASKETRY_HOME=str(tmp_path / "trainer"), MLFLOW_TRACKING_URI=uri,
                     MLFLOW_EXPERIMENT_NAME=name, BASKETRY_TRACK="true")
    outs = {s: tmp_path / f"model-{s}" for s in ("0.02", "0.03")}
    trains = [subprocess.Popen(["basketry", "train", str(sample_path()), *TRAIN_ARGS,
                                "--min-support", s, "--out", str(out), "--registered-model",
                                name], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
              for s, out in outs.items()]
    started = time.monotonic()
    versions = {}
    for train, out in zip(trains, outs.values(), strict=True):
        output = " ".join(train.communicate(timeout=GUARD)[0].split())
        assert train.returncode == 0, output
        found = re.search(rf"registered {name} version (\d+)", output)
        assert found, output
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        versions[found.group(1)] = str(manifest["model_version"])
    assert len(set(versions.values())) == 2, versions
    print(f"\ntwo concurrent trains: {time.monotonic() - started:.1f} s")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = str(client.get_model_version_by_alias(name, "champion").version)
    return Registry(uri, name, env, versions, champion)


@pytest.fixture
def monitor_db(request: pytest.FixtureRequest) -> str:
    """The monitoring store both replicas write to: a fresh schema of the test database."""
    return request.getfixturevalue("pg_url")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """One ``basketry serve`` process (its own home, as its own container)."""

    name: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['BASKETRY_PORT']}"

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(SERVE_COMMAND, env=self.env, stdout=out, stderr=out,
                                         start_new_session=True)

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{self.log.read_text()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to every process of the replica (server and capture writer), as when its
        container dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM, as a container is stopped): the capture is flushed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop on SIGTERM") from None


@pytest.fixture
def replicas(tmp_path: Path, registry: Registry, monitor_db: str) -> Iterator[list[Replica]]:
    out = []
    for n in (1, 2):
        env = _clean_env(
            BASKETRY_MODEL=f"models:/{registry.name}@champion", BASKETRY_WATCH=str(POLL),
            BASKETRY_HOST="127.0.0.1", BASKETRY_PORT=str(_free_port()),
            BASKETRY_HOME=str(tmp_path / f"replica-{n}"), BASKETRY_LOG_FORMAT="json",
            MLFLOW_TRACKING_URI=registry.uri, BASKETRY_MONITOR_DB=monitor_db,
            BASKETRY_MONITOR_CAPTURE="true")
        out.append(Replica(f"replica-{n}", env, tmp_path / f"replica-{n}.log"))
    try:
        for replica in out:  # started together, as a deployment's pods are
            replica.spawn()
        for replica in out:
            replica.wait_ready()
        yield out
    finally:
        for replica in out:
            if replica.proc is not None and replica.proc.poll() is None:
                os.killpg(replica.proc.pid, signal.SIGKILL)
                replica.proc.wait()


@dataclass
class Answer:
    rid: str
    sent: float
    done: float
    status: int  # 0: no replica answered
    replica: int  # the index of the replica that answered (-1: none)
    life: int  # how many times that replica had been started when it answered
    version: str | None
    failed_attempts: list[tuple[int, str]] = field(default_factory=list)


class Balancer:
    """The client load, balanced as deploy/nginx.conf balances it: round robin; a request
    refused, reset or answered 502/503 by one replica is sent once more to the next one
    (``proxy_next_upstream error timeout http_502 http_503 non_idempotent``: the
    recommendation POSTs change nothing, so they may be repeated)."""

    def __init__(self, replicas: list[Replica], baskets: list[list[str]]) -> None:
        self.replicas, self.baskets = replicas, baskets
        self.lives = [1] * len(replicas)
        self.answers: list[Answer] = []
        self._turn = itertools.count()
        self._ids = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, threads: int = 2) -> None:
        self._threads = [threading.Thread(target=self._loop, daemon=True)
                         for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self) -> None:
        clients = [httpx.Client(base_url=r.url, timeout=10) for r in self.replicas]
        deadline = time.monotonic() + GUARD
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                self.answers.append(self._request(clients))
                self._stop.wait(max(0.0, 1 / RATE - (time.monotonic() - started)))
        finally:
            for client in clients:
                client.close()

    def _request(self, clients: list[httpx.Client]) -> Answer:
        n = next(self._ids)
        rid = f"rp-{n:07d}"
        body = {"basket": self.baskets[n % len(self.baskets)], "k": 5}
        first = next(self._turn) % len(clients)
        sent = time.monotonic()
        failed: list[tuple[int, str]] = []
        for i in (first, (first + 1) % len(clients)):
            life = self.lives[i]
            try:
                response = clients[i].post("/v1/recommendations", json=body,
                                           headers={"x-request-id": rid})
            except httpx.TransportError as exc:
                failed.append((i, type(exc).__name__))
                continue
            if response.status_code in (502, 503):
                failed.append((i, str(response.status_code)))
                continue
            version = response.json().get("model_version")
            return Answer(rid, sent, time.monotonic(), response.status_code, i, life, version,
                          failed)
        return Answer(rid, sent, time.monotonic(), 0, -1, 0, None, failed)

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(list(self.answers)):
                return True
            time.sleep(0.02)
        return False


class AliasWatch:
    """When the champion alias moves to ``version``: ``at``, the start of the last look at the
    registry (every 20 ms) that did not see it yet (the command that moves it takes seconds to
    start and to end, so its own times bound nothing closely)."""

    def __init__(self, registry: Registry, version: str) -> None:
        import mlflow

        self._client = mlflow.MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
        self._name, self._version = registry.name, version
        self._moved = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.at = float("nan")

    def __enter__(self) -> AliasWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait(self, timeout: float) -> bool:
        return self._moved.wait(timeout)

    def _poll(self) -> None:
        deadline = time.monotonic() + GUARD
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            mv = self._client.get_model_version_by_alias(self._name, "champion")
            if str(mv.version) == self._version:
                self._moved.set()
                return
            # it moved after this look (which did not see it) began: times counted from here
            # are upper bounds
            self.at = began
            self._stop.wait(0.02)


def _baskets(model_dir: Path) -> list[list[str]]:
    """Pairs and triples of the model's most frequent items."""
    import pyarrow.parquet as pq

    items = pq.read_table(model_dir / "items.parquet").to_pylist()
    top = [row["item"] for row in sorted(items, key=lambda r: -r["count"])[:30]]
    return [top[i:i + 2 + i % 2] for i in range(0, 28)]


def _first_new(answers: list[Answer], replica: int, new: str) -> Answer | None:
    return next((a for a in sorted(answers, key=lambda a: a.done)
                 if a.replica == replica and a.version == new), None)


@pytest.mark.slow
def test_two_replicas_follow_a_promotion_and_a_restart_with_no_failed_request(
        tmp_path: Path, registry: Registry, replicas: list[Replica], monitor_db: str) -> None:
    old = registry.versions[registry.champion]
    new_number = next(v for v in registry.versions if v != registry.champion)
    new = registry.versions[new_number]
    balancer = Balancer(replicas, _baskets(tmp_path / "model-0.02"))
    balancer.start()
    try:
        # both replicas answer the champion
        assert balancer.wait_for(
            lambda a: {x.replica for x in a if x.version == old} == {0, 1}, 30)

        # -- a promotion reaches every replica, no request fails
        with AliasWatch(registry, new_number) as moved:
            _run(registry.env, "models", "promote", new_number, "-m", registry.name)
            promoted = time.monotonic()
            assert moved.wait(GUARD), "the champion alias did not move"
        assert balancer.wait_for(
            lambda a: all(_first_new(a, r, new) for r in (0, 1)), BOUND), \
            f"a replica still answers the old version {BOUND} s after the promotion"
        answers = list(balancer.answers)
        reached = {}
        for r in (0, 1):
            first_new = _first_new(answers, r, new)
            assert first_new is not None
            reached[r] = first_new.done
            # never back to the old version once the new one answered
            assert not [a for a in answers if a.replica == r and a.version == old
                        and a.sent > first_new.done]
        last = max(reached.values())
        assert last - moved.at < BOUND
        print(f"\npropagation (BASKETRY_WATCH={POLL}): both replicas answer the new version "
              f"at most {last - moved.at:.2f} s after the alias moved ("
              + ", ".join(f"{replicas[r].name} {t - moved.at:.2f} s" for r, t in reached.items())
              + f"; `models promote` returned {promoted - moved.at:.2f} s after)")

        # -- one replica killed and started again; the other answers meanwhile
        victim = replicas[0]
        victim.kill()
        killed_at = time.monotonic()
        # while it is down the balancer's retries go to the other replica
        assert balancer.wait_for(lambda a: sum(
            1 for x in a if x.sent > killed_at and x.failed_attempts) >= 20, 30)
        balancer.lives[0] += 1
        victim.start()
        restarted = time.monotonic()
        assert balancer.wait_for(lambda a: sum(
            1 for x in a if x.replica == 0 and x.sent > restarted) >= 20, 30)
    finally:
        balancer.stop()
    for replica in replicas:  # clean stops: each flushes its capture
        replica.stop()

    answers = balancer.answers
    assert len(answers) > 200
    assert [a for a in answers if a.status != 200] == []  # zero failed requests
    assert {a.version for a in answers} == {old, new}
    # the replica that stayed up failed no attempt; the killed one's were retried, in its
    # downtime only
    attempts = [f for a in answers for f in a.failed_attempts]
    assert attempts and {i for i, _ in attempts} == {0}
    assert all(a.replica == 1 for a in answers if a.failed_attempts)
    # the restarted replica answered the champion from the start
    assert {a.version for a in answers if a.replica == 0 and a.life == 2} == {new}

    # -- the one store holds what both answered, once each, with the version that answered
    events = _captured(monitor_db)
    sent = {a.rid for a in answers}
    assert set(events) <= sent
    clean = [a for a in answers if a.replica == 1 or a.life == 2]
    assert {a.rid for a in answers if a.replica == 1} and {a.rid for a in clean if a.replica == 0}
    for a in clean:
        assert events.get(a.rid) == [a.version], a
    # the killed replica's first life: at most once each (what its writer held at the kill
    # is lost: a second at most, BASKETRY_MONITOR_MAX_DELAY)
    for a in answers:
        if a.replica == 0 and a.life == 1 and a.rid in events:
            assert events[a.rid] == [a.version], a
    for replica in replicas:
        assert _errors(replica.log) == [], replica.name


def _captured(url: str) -> dict[str, list[str]]:
    """request id -> the model versions recorded for it."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT request_id, model_version FROM recommendation_events")).all()
    finally:
        engine.dispose()
    out: dict[str, list[str]] = {}
    for rid, version in rows:
        out.setdefault(rid, []).append(version)
    return out


def _errors(log: Path) -> list[str]:
    """The replica's log lines at level error or above (JSON lines; others are uvicorn's)."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            out.append(line)
    return out
