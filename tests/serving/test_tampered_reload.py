"""A model whose checksums match but whose content is unsound never serves: the real server
refuses it through ``POST /v1/admin/reload``, through the watcher and at start, with one line
naming the problem, and the old model (if any) keeps answering. Before content validation, the
first of these models was taken (200) and the next recommendation killed the server.

Each model is tampered with and re-signed (tests/model/tamper.py): checksums, sizes and
model_version match, so only the content checks can refuse it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from tests.model.tamper import set_cell, tamper_manifest, tamper_table
from tests.serving.conftest import ADMIN, write_version
from tests.serving.test_server import AUTH, free_port, start

IDS = pa.list_(pa.int32())


def _rules(column: str, row: int, value: object, type_: pa.DataType | None = None
           ) -> Callable[[Path], None]:
    return lambda m: tamper_table(m, "rules.parquet",
                                  lambda t: set_cell(t, column, row, value, type_))


def _manifest(edit: Callable[[dict], None], *, version: bool = True) -> Callable[[Path], None]:
    return lambda m: tamper_manifest(m, edit, version=version)


# (case id, tamper, what the refusal must say)
CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("consequent-1e9", _rules("consequent", 0, [10**9], IDS),
     "column 'consequent', row 0: item id 1000000000 is outside 0..6"),
    ("antecedent-negative", _rules("antecedent", 2, [-1], IDS),
     "column 'antecedent', row 2: item id -1 is outside"),
    ("confidence-nan", _rules("confidence", 1, math.nan),
     "column 'confidence', row 1: nan is not a finite number"),
    ("n-baskets-zero", _manifest(lambda m: m["counts"].update(n_baskets=0)),
     "field 'counts.n_baskets' must be a whole number >= 1, got 0"),
    ("format-version-true", _manifest(lambda m: m.update(format_version=True)),
     "format_version True"),
    ("scoring-evil", _manifest(lambda m: m.update(scoring={"method": "evil"})),
     "field 'scoring': unknown scoring method 'evil'"),
    ("scoring-edited", _manifest(lambda m: m.update(scoring={"method": "lift"}), version=False),
     "field 'model_version' is"),
]


def tampered(path: Path, tamper: Callable[[Path], None]) -> Path:
    write_version(path, "v3")
    tamper(path)
    return path


def recommend_a(http: httpx.Client) -> dict:
    r = http.post("/v1/recommendations", json={"basket": ["a"], "k": 3})
    assert r.status_code == 200, r.text
    return r.json()


def test_reload_refuses_each_tampered_model_and_the_old_one_keeps_serving(
        tmp_path: Path) -> None:
    v1 = write_version(tmp_path / "v1", "v1")
    for running in start(tmp_path, tmp_path / "v1"):
        http = running.client()
        for name, tamper, message in CASES:
            bad = tampered(tmp_path / f"bad-{name}", tamper)
            r = http.post("/v1/admin/reload", json={"model": str(bad)}, headers=AUTH)
            assert r.status_code == 409, (name, r.text)
            body = r.json()
            assert body["error"] == "model_refused" and message in body["message"], name
            assert "\n" not in body["message"]
            # the next recommendation is answered by the old model
            answer = recommend_a(http)
            assert answer["model_version"] == v1, name
            assert all(i["label"].startswith("v1:") for i in answer["items"]), answer
            assert running.proc.poll() is None, name
        ready = http.get("/readyz").json()
        assert ready["ready"] is True and ready["model_version"] == v1
        assert "model_version" in ready["last_reload"]["error"]  # the last case's refusal


def test_the_watcher_refuses_a_tampered_version_and_takes_the_next_sound_one(
        tmp_path: Path) -> None:
    served = tmp_path / "served"
    v1 = write_version(served, "v1")
    for running in start(tmp_path, served, watch=0.2):
        http = running.client()
        # a tampered version replaces the served directory (as a deployment would)
        bad = tampered(tmp_path / "bad", CASES[0][1])
        os.rename(served, tmp_path / "old")
        os.rename(bad, served)
        deadline = time.monotonic() + 20
        while True:
            last = http.get("/readyz").json()["last_reload"] or {}
            if last.get("ok") is False and "outside" in (last.get("error") or ""):
                break
            assert time.monotonic() < deadline, f"the watcher did not try the new files: {last}"
            time.sleep(0.1)
        assert CASES[0][2] in last["error"]
        for _ in range(3):  # answered by the old model, again and again
            assert recommend_a(http)["model_version"] == v1
        assert running.proc.poll() is None
        # a sound version is taken as usual
        v2 = write_version(tmp_path / "v2", "v2")
        os.rename(served, tmp_path / "bad-again")
        os.rename(tmp_path / "v2", served)
        deadline = time.monotonic() + 20
        while recommend_a(http)["model_version"] != v2:
            assert time.monotonic() < deadline, "the watcher did not take the sound version"
            time.sleep(0.1)


def _start_unready(tmp_path: Path, model: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The real server started on ``model``, once it answers /healthz (it is not ready)."""
    port = free_port()
    log = tmp_path / "server.log"
    kwargs = {"model": str(model), "port": port, "admin_token": ADMIN}
    # BASKETRY_HOME kept: the monitoring store (capture on by default) stays out of ~/.basketry
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BASKETRY_") or k == "BASKETRY_HOME"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from basketry.serving import serve; serve(**{kwargs!r})"],
            stdout=out, stderr=out, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"server exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server not up:\n{log.read_text()}"
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=[CASES[0][0], CASES[3][0]])
def test_at_start_a_tampered_model_gives_one_clear_error_and_no_crash(
        tmp_path: Path, case: tuple[str, Callable[[Path], None], str]) -> None:
    _, tamper, message = case
    bad = tampered(tmp_path / "bad", tamper)
    for url, proc in _start_unready(tmp_path, bad):
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.get("/readyz")
            assert r.status_code == 503
            assert message in r.json()["last_reload"]["error"]
            r = http.post("/v1/recommendations", json={"basket": ["a"]})
            assert r.status_code == 503 and r.json()["error"] == "no_model"
            assert proc.poll() is None
            # one error line names the problem; no traceback
            lines = (tmp_path / "server.log").read_text(encoding="utf-8").splitlines()
            events = [json.loads(x) for x in lines if x.startswith("{")]
            failed = [e for e in events if e.get("event") == "model_load_failed"]
            assert len(failed) == 1 and message in failed[0]["error"], failed
            assert not any("Traceback" in x for x in lines)
            # a sound model is then taken
            good = tmp_path / "good"
            version = write_version(good, "v1")
            r = http.post("/v1/admin/reload", json={"model": str(good)}, headers=AUTH)
            assert r.status_code == 200 and r.json()["model_version"] == version
            assert recommend_a(http)["model_version"] == version
