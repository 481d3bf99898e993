"""Capture: every answered recommendation lands in a real monitoring store, the same on every
path (protocol fast path, application fast path, framework), and a failing store never stops
serving."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

from basketry.monitoring import MonitorSettings
from basketry.monitoring.store import MonitorStore
from basketry.serving import Settings, create_app
from basketry.serving.capture import Capture, CaptureError
from tests.serving.conftest import write_version

ONE = {"basket": ["a", "b"], "k": 3}
BATCH = {"requests": [{"basket": ["e"]}, {"basket": ["a"], "k": 2}]}


def _traffic(post: object, get: object) -> None:
    """The same requests for every path: answered ones, and refused ones (never recorded)."""
    assert post("/v1/recommendations", json=ONE, headers={"x-request-id": "one"}).status_code \
        == 200
    assert post("/v1/recommendations/batch", json=BATCH,
                headers={"x-request-id": "many"}).status_code == 200
    assert get("/v1/items/a/associations?k=2", headers={"x-request-id": "assoc"}).status_code \
        == 200
    bad = {"requests": [{"basket": ["a"]}, {"basket": ["b", "b"]}]}
    assert post("/v1/recommendations/batch", json=bad,
                headers={"x-request-id": "refused"}).status_code == 422
    assert post("/v1/recommendations", json={"basket": [1]},
                headers={"x-request-id": "bad"}).status_code == 422


def _recorded(url: str) -> list[tuple]:
    store = MonitorStore(url)
    try:
        events = store.read_events()
    finally:
        store.close()
    return sorted((e.request_id, e.endpoint, tuple(e.basket), tuple(e.returned), e.n_rules,
                   e.n_fallback) for e in events)


def _check(events: list[tuple], version: str, url: str) -> None:
    ids = [(e[0], e[1]) for e in events]
    assert ids == [("assoc", "associations"), ("many", "batch"), ("many", "batch"),
                   ("one", "single")]
    # the basket, and what was answered: one -> rules a b -> d, c then popular e
    one = events[3]
    assert one[2] == ("a", "b") and one[3] == ("d", "c", "e") and one[4:] == (2, 1)
    assert events[0][2] == ("a",) and len(events[0][3]) == 2
    assert {e[2] for e in events[1:3]} == {("e",), ("a",)}
    store = MonitorStore(url)
    try:
        assert {e.model_version for e in store.read_events()} == {version}
        assert all(e.latency_ms >= 0 for e in store.read_events())
    finally:
        store.close()


def _capture(url: str, **settings: object) -> Capture:
    return Capture(MonitorSettings(**{"db": url, "max_delay": 0.05, "capture": True, **settings}),
                   explicit=True)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "framework"])
def test_answers_are_recorded_identically_on_the_application_paths(
        tmp_path: Path, fast_path: bool) -> None:
    model = tmp_path / "model"
    version = write_version(model, "v1")
    url = f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app(Settings(model=str(model), fast_path=fast_path), capture=_capture(url))
    with TestClient(app=app) as client:
        _traffic(client.post, client.get)
    # closed: the lifespan flushed the writer
    _check(_recorded(url), version, url)


def test_a_sampling_rate_of_zero_and_capture_off_record_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_version(model, "v1")
    for i, capture in enumerate([lambda u: _capture(u, sample_rate=0.0),
                                 lambda u: _capture(u, capture=False)]):
        url = f"sqlite:///{tmp_path / f'm{i}.db'}"
        app = create_app(Settings(model=str(model)), capture=capture(url))
        with TestClient(app=app) as client:
            _traffic(client.post, client.get)
            metrics = client.get("/metrics").text
        if i == 0:  # sampled out: counted
            assert 'basketry_monitor_events_total{outcome="sampled_out"} 4.0' in metrics
            assert _recorded(url) == []
        else:  # off: no store at all
            assert not (tmp_path / f"m{i}.db").exists()


def test_capture_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("BASKETRY_MONITOR_DB", url)
    monkeypatch.setenv("BASKETRY_MONITOR_SAMPLE_RATE", "0.5")
    monkeypatch.delenv("BASKETRY_MONITOR_CAPTURE")  # (the test suite turns it off)
    capture = Capture.from_env()
    assert capture.settings.url() == url and capture.settings.sample_rate == 0.5
    assert capture.settings.capture and not capture.explicit  # on by default
    monkeypatch.setenv("BASKETRY_MONITOR_CAPTURE", "false")
    off = Capture.from_env()
    assert off.explicit and not off.settings.capture
    off.start()
    assert not off.on and not (tmp_path / "env.db").exists()


def test_a_store_that_does_not_connect_at_start_stops_the_worker_with_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = tmp_path / "model"
    write_version(model, "v1")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'sub' / 'm.db'}"  # its parent is a file
    with pytest.raises(CaptureError, match=re.escape(str(blocker))):
        _capture(url, connect_timeout=1).start()
    app = create_app(Settings(model=str(model)), capture=_capture(url, connect_timeout=1))
    with pytest.raises(Exception), TestClient(app=app):  # noqa: B017 - the lifespan's failure
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "basketry.serving"
             and r.levelname == "ERROR"]
    assert len(lines) == 1 and str(blocker) in lines[0] and "\n" not in lines[0]


def _metric(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_a_store_that_fails_while_serving_is_counted_and_serving_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = tmp_path / "model"
    write_version(model, "v1")
    db = tmp_path / "m.db"
    url = f"sqlite:///{db}"
    # the busy timeout is the connect timeout: a locked store fails each write within 0.2 s
    capture = _capture(url, queue_size=2, write_retries=0, connect_timeout=0.2)
    app = create_app(Settings(model=str(model)), capture=capture)
    failed = r'basketry_monitor_events_total\{outcome="failed"\} (\S+)'
    written = r'basketry_monitor_events_total\{outcome="written"\} (\S+)'
    with TestClient(app=app) as client:
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the store: every write fails
        try:
            for _ in range(20):
                assert client.post("/v1/recommendations", json=ONE).status_code == 200
            metrics = ""
            for _ in range(400):  # the writer process gets to the failures on its own time
                metrics = client.get("/metrics").text
                if _metric(metrics, failed) >= 1:
                    break
                time.sleep(0.05)
            assert _metric(metrics, failed) >= 1
            assert re.search(r"basketry_monitor_write_errors_total [1-9]", metrics)
            assert "basketry_monitor_queue_depth" in metrics
            assert client.get("/readyz").status_code == 200
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        # the store is back: what comes now is written
        for _ in range(400):
            assert client.post("/v1/recommendations", json=ONE).status_code == 200
            metrics = client.get("/metrics").text
            if _metric(metrics, written) >= 1:
                break
            time.sleep(0.05)
        assert _metric(metrics, written) >= 1
    # the failure was logged, in this worker, naming the store's error
    assert any("database is locked" in r.getMessage() for r in caplog.records
               if r.name == "basketry.monitoring")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[object, str, str]]:
    from tests.serving.test_server import start

    model = tmp_path / "model"
    version = write_version(model, "v1")
    db = tmp_path / "served.db"
    os.environ["BASKETRY_MONITOR_DB"] = f"sqlite:///{db}"
    os.environ["BASKETRY_MONITOR_MAX_DELAY"] = "0.05"
    os.environ["BASKETRY_MONITOR_CAPTURE"] = "true"  # off by default
    try:
        for running in start(tmp_path, model):
            yield running, version, f"sqlite:///{db}"
    finally:
        os.environ.pop("BASKETRY_MONITOR_DB", None)
        os.environ.pop("BASKETRY_MONITOR_MAX_DELAY", None)
        os.environ.pop("BASKETRY_MONITOR_CAPTURE", None)


def test_the_protocol_fast_path_records_as_the_application_does(
        served: tuple[object, str, str]) -> None:
    running, version, url = served
    with httpx.Client(base_url=running.url, timeout=30) as client:  # type: ignore[attr-defined]
        _traffic(client.post, client.get)
        metrics = client.get("/metrics").text
    assert "basketry_monitor_queue_depth" in metrics
    running.proc.send_signal(2)  # type: ignore[attr-defined]  # SIGINT: a graceful shutdown
    running.proc.wait(timeout=30)  # type: ignore[attr-defined]
    _check(_recorded(url), version, url)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["graceful", "killed"])
def test_the_writer_process_ends_with_its_worker(served: tuple[object, str, str],
                                                 how: str) -> None:
    running, _, url = served
    proc = running.proc  # type: ignore[attr-defined]
    with httpx.Client(base_url=running.url, timeout=30) as client:  # type: ignore[attr-defined]
        for i in range(5):
            assert client.post("/v1/recommendations", json=ONE,
                               headers={"x-request-id": f"r{i}"}).status_code == 200
    (writer,) = _children(proc.pid)
    assert "basketry.monitoring.writer_main" in Path(f"/proc/{writer}/cmdline").read_text()
    if how == "killed":  # (what the worker still holds dies with it: max_delay / 2 at most)
        time.sleep(0.3)
    proc.send_signal(2 if how == "graceful" else 9)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20  # the writer writes what it holds, then exits
    while _running(writer):
        assert time.monotonic() < deadline, "the writer process outlived its worker"
        time.sleep(0.05)
    assert len(_recorded(url)) == 5


@pytest.mark.parametrize("explicit", [False, True], ids=["default", "asked-for"])
def test_without_the_monitor_extra_the_default_serves_without_capture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        explicit: bool) -> None:
    # the writer process (its own interpreter) without SQLAlchemy, as in a serving install
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['sqlalchemy'] = None\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    capture = Capture(MonitorSettings(db=f"sqlite:///{tmp_path / 'm.db'}", capture=True),
                      explicit=explicit)
    if explicit:
        with pytest.raises(CaptureError, match="BASKETRY_MONITOR_CAPTURE is on but the "
                                               "monitoring store needs the monitor extra"):
            capture.start()
    else:
        capture.start()
        assert not capture.on and capture.counts() == {}
        (line,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert line.startswith("monitoring capture is off: the monitoring store needs the "
                               "monitor extra") and "\n" not in line
    capture.close()
    assert not (tmp_path / "m.db").exists()
