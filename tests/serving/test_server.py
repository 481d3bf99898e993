"""The real server on a loopback port: hot reload under load, refusal of a corrupt model, logs.

Each test starts ``basketry.serving.serve`` in a subprocess (uvicorn, as in production) and
talks HTTP to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import ADMIN, write_version

AUTH = {"authorization": f"Bearer {ADMIN}"}
SECRET = "SECRET-BASKET-ITEM-42"  # must never reach the logs at INFO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log
        self.clients: list[httpx.Client] = []

    def client(self) -> httpx.Client:
        """A client closed before the server stops (open connections delay a shutdown)."""
        self.clients.append(httpx.Client(base_url=self.url, timeout=30))
        return self.clients[-1]

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()


def start(tmp_path: Path, model: Path, **settings: object) -> Iterator[Running]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    kwargs = {"model": str(model), "port": port, "admin_token": ADMIN, **settings}
    code = f"from basketry.serving import serve; serve(**{kwargs!r})"
    # BASKETRY_HOME kept: the monitoring store (capture on by default) stays out of ~/.basketry;
    # BASKETRY_MONITOR_* kept: a test of capture points it at its own store
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BASKETRY_") or k == "BASKETRY_HOME"
           or k.startswith("BASKETRY_MONITOR_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready:\n{log.read_text()}")
            time.sleep(0.1)
        running = Running(url, proc, log)
        try:
            yield running
        finally:
            for c in running.clients:
                c.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def versions(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    out = {}
    for tag in ("v1", "v2"):
        path = tmp_path / f"model-{tag}"
        out[tag] = (path, write_version(path, tag))
    return out


@pytest.fixture
def server(tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> Iterator[Running]:
    yield from start(tmp_path, versions["v1"][0])


def check_consistent(answer: dict, tag_of: dict[str, str]) -> str:
    """The answer's version, after checking every item came from that version's model."""
    version = answer["model_version"]
    tag = tag_of[version]
    for result in answer.get("results", [answer]):
        assert result["model_version"] == version
        for item in result["items"]:
            assert item["label"].startswith(f"{tag}:"), (version, answer)
    return version


def test_reload_under_load_fails_no_request_and_never_mixes_versions(
        server: Running, versions: dict[str, tuple[Path, str]]) -> None:
    tag_of = {version: tag for tag, (_, version) in versions.items()}
    seen: dict[str, int] = {}
    failures: list[str] = []
    reloads = 0

    async def client(n: int, stop: float) -> None:
        bodies = [{"basket": ["a", "b", SECRET], "k": 4}, {"basket": ["e"], "k": 3},
                  {"basket": []}]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            i = n
            while time.monotonic() < stop:
                i += 1
                if i % 4 == 0:
                    r = await http.post("/v1/recommendations/batch",
                                        json={"requests": bodies})
                elif i % 4 == 1:
                    r = await http.get("/v1/items/e/associations")
                else:
                    r = await http.post("/v1/recommendations", json=bodies[i % 3])
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                version = check_consistent(r.json(), tag_of)
                seen[version] = seen.get(version, 0) + 1

    async def reloader(stop: float) -> None:
        nonlocal reloads
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            tags = ["v2", "v1"]
            while time.monotonic() < stop:
                target = versions[tags[reloads % 2]]
                r = await http.post("/v1/admin/reload", json={"model": str(target[0])},
                                    headers=AUTH)
                assert r.status_code == 200, r.text
                assert r.json()["model_version"] == target[1]
                reloads += 1
                await asyncio.sleep(0.05)

    async def main() -> None:
        stop = time.monotonic() + 3.0
        await asyncio.gather(reloader(stop), *(client(n, stop) for n in range(6)))

    asyncio.run(main())
    assert failures == []
    assert reloads >= 6
    assert set(seen) == {versions["v1"][1], versions["v2"][1]}, seen
    assert sum(seen.values()) > 100
    # structured logs: JSON lines with request ids, and no basket contents at INFO
    lines = server.log_lines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    access = [r for r in records if r.get("message") == "request"]
    assert access and all(r["request_id"] for r in access)
    assert any(r.get("event") == "model_loaded" for r in records)
    assert not any(SECRET in line for line in lines)


def test_a_corrupt_model_is_refused_and_the_old_one_keeps_serving(
        server: Running, tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    bad = tmp_path / "model-bad"
    write_version(bad, "v3")
    with open(bad / "rules.parquet", "r+b") as fh:  # flip bytes: same size, wrong checksum
        fh.seek(20)
        fh.write(b"\x00\x01\x02\x03")
    http = server.client()
    r = http.post("/v1/admin/reload", json={"model": str(bad)}, headers=AUTH)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "model_refused" and "SHA-256" in r.json()["message"]
    old = versions["v1"][1]
    r = http.post("/v1/recommendations", json={"basket": ["a"]})
    assert r.status_code == 200 and r.json()["model_version"] == old
    ready = http.get("/readyz").json()
    assert ready["ready"] is True and ready["model_version"] == old
    assert ready["last_reload"]["ok"] is False and "SHA-256" in ready["last_reload"]["error"]
    metrics = http.get("/metrics").text
    assert "basketry_model_last_reload_failed 1.0" in metrics
    assert 'basketry_model_reloads_total{result="failure"} 1.0' in metrics
    assert f'basketry_model_info{{model_version="{old}"}} 1.0' in metrics
    errors = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    assert any(e.get("event") == "model_load_failed" and e["level"] == "error" for e in errors)
    # a missing directory is refused the same way; then a good model is taken again
    r = http.post("/v1/admin/reload", json={"model": str(tmp_path / "nowhere")}, headers=AUTH)
    assert r.status_code == 409
    r = http.post("/v1/admin/reload", json={"model": str(versions["v2"][0])}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "reloaded"
    assert http.get("/readyz").json()["last_reload"]["ok"] is True
    assert "basketry_model_last_reload_failed 0.0" in http.get("/metrics").text


def test_the_watcher_follows_a_new_version_in_place(tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_version(model, "v1")
    catalogue = tmp_path / "unavailable.txt"
    catalogue.write_text("")
    for running in start(tmp_path, model, watch=0.2, catalogue=str(catalogue)):
        http = running.client()
        new = write_version(model, "v2")  # atomic replacement of the directory
        deadline = time.monotonic() + 10
        while http.get("/v1/model").json()["model_version"] != new:
            assert time.monotonic() < deadline, "the watcher did not pick up the new version"
            time.sleep(0.1)
        catalogue.write_text("e\n")
        deadline = time.monotonic() + 10
        while "e" in [x["item"] for x in http.post("/v1/recommendations",
                                                   json={"basket": []}).json()["items"]]:
            assert time.monotonic() < deadline, "the watcher did not pick up the catalogue"
            time.sleep(0.1)


def test_two_workers_share_reloads_and_metrics(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    for running in start(tmp_path, versions["v1"][0], workers=2):
        http = running.client()
        r = http.post("/v1/admin/reload", json={"model": str(versions["v2"][0])}, headers=AUTH)
        assert r.status_code == 200
        new = versions["v2"][1]
        deadline = time.monotonic() + 10
        while True:  # the other worker follows within its poll interval
            got = {http.post("/v1/recommendations", json={"basket": ["a"]},
                             headers={"connection": "close"}).json()["model_version"]
                   for _ in range(20)}
            if got == {new}:
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
        # one series per live worker (pid label), all on the new version: the answers above
        # may all have come from one worker, so give the other its poll interval too
        while True:
            text = http.get("/metrics").text
            infos = re.findall(r'basketry_model_info\{model_version="(\w+)",pid="\d+"\} 1.0',
                               text)
            if infos == [new, new]:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert 'basketry_http_requests_total{endpoint="/v1/recommendations"' in text


def _exchange(url: str, raw: bytes, *, expect_close: bool = False) -> bytes:
    """Send raw bytes on a new connection; what comes back until the peer closes or stays quiet
    for half a second."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(raw)
        s.settimeout(0.5 if not expect_close else 10)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _until_closed(url: str, raw: bytes) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it (a server that
    keeps it open fails the test at the socket's timeout)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(raw)
        out = b""
        while chunk := s.recv(65536):  # TimeoutError: the server did not close
            out += chunk
    return out


def _responses(raw: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        size = int(headers["content-length"])
        out.append((lines[0], headers, rest[:size]))
        raw = rest[size:]
    return out


def _post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: x", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_whichever_path_answered(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    """A kept-alive connection that goes quiet after an answer is closed by the server after
    ``keep_alive`` seconds, also when the protocol answered it (it used to stay open until the
    client left)."""
    one = json.dumps({"basket": ["a", "b"], "k": 3}).encode()
    for running in start(tmp_path, versions["v1"][0], keep_alive=1):
        host, port = running.url.removeprefix("http://").split(":")
        for raw in (_post("/v1/recommendations", one) + _post("/v1/recommendations", one),
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=30) as s:
                s.sendall(raw)
                out = b""
                while chunk := s.recv(65536):  # TimeoutError: the server kept it open
                    out += chunk
            answers = _responses(out)
            assert answers and all(a[0] == "HTTP/1.1 200 OK" for a in answers)
            assert all("connection" not in a[1] for a in answers)  # kept alive, then closed


def rss_mb(pid: int) -> float:
    """The resident memory of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "framework"])
def test_a_client_that_pipelines_without_reading_is_held_back_and_then_answered_in_full(
        tmp_path: Path, versions: dict[str, tuple[Path, str]], fast: bool) -> None:
    """The server stops reading a connection whose client does not read its answers (it used
    to read, queue and answer without bound: memory for the taking), keeps serving others,
    and answers every request, in order, once the client reads."""
    body = json.dumps({"basket": ["a", "b"], "k": 3}).encode()
    # 500 requests with ids 000..499, sent over and over: each answer's id shows its order
    requests = [_post("/v1/recommendations", body, f"x-request-id: r{i:03d}") for i in range(500)]
    size = len(requests[0])
    burst = b"".join(requests)
    for running in start(tmp_path, versions["v1"][0], fast_path=fast, access_log=False):
        host, port = running.url.removeprefix("http://").split(":")
        expected = running.client().post("/v1/recommendations", content=body).json()["items"]
        before = rss_mb(running.proc.pid)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.setblocking(False)
            sent, offset, deadline = 0, 0, time.monotonic() + 60
            blocked_since = None
            # send until the server has stopped taking requests for a second
            while blocked_since is None or time.monotonic() - blocked_since < 1:
                assert time.monotonic() < deadline, f"the server kept reading: {sent:,} bytes"
                try:
                    n = s.send(burst[offset:])
                except BlockingIOError:
                    blocked_since = blocked_since or time.monotonic()
                    time.sleep(0.05)
                    continue
                blocked_since = None
                sent += n
                offset = (offset + n) % len(burst)
            assert running.client().get("/healthz").status_code == 200  # others are served
            # what the kernel's socket buffers hold, and a few MB of requests read: no more
            buffers = sum(int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[2])
                          for kind in ("rmem", "wmem"))
            assert sent < buffers + (4 << 20), f"{sent:,} bytes taken"
            assert rss_mb(running.proc.pid) - before < 64
            n_requests = sent // size
            s.setblocking(True)
            buffer, answered = b"", 0
            while answered < n_requests:
                chunk = s.recv(1 << 20)
                assert chunk, f"closed after {answered} of {n_requests} answers"
                buffer += chunk
                while (end := buffer.find(b"\r\n\r\n")) >= 0:
                    head = buffer[:end].decode()
                    length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
                    if len(buffer) < end + 4 + length:
                        break
                    assert head.startswith("HTTP/1.1 200 OK"), head
                    assert f"x-request-id: r{answered % 500:03d}" in head
                    if answered % 997 == 0:  # a sample: parsing all of them is the slow part
                        assert json.loads(buffer[end + 4:end + 4 + length])["items"] == expected
                    buffer = buffer[end + 4 + length:]
                    answered += 1
        assert n_requests > 1000  # the kernel's buffers alone take more than that


def test_the_server_answers_fast_requests_in_the_protocol_as_the_application_does(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    """``basketry serve`` answers the recommendation endpoints in its HTTP protocol (no ASGI
    task): same documents and headers as the application's own path, pipelined requests in
    order, connection handling, limits, and the cases it leaves to uvicorn."""
    from litestar.testing import TestClient

    from basketry.serving import Settings, create_app

    model = versions["v1"][0]
    one = json.dumps({"basket": ["a", "b"], "k": 3}).encode()
    batch = json.dumps({"requests": [{"basket": ["e"]}, {"basket": ["a"], "k": 2}]}).encode()
    with TestClient(app=create_app(Settings(model=str(model)))) as app_client:
        expected_one = app_client.post("/v1/recommendations", content=one,
                                       headers={"x-request-id": "req-1"}).content
        expected_batch = app_client.post("/v1/recommendations/batch", content=batch,
                                         headers={"x-request-id": "req-2"}).content
    for running in start(tmp_path, model, max_body_bytes=2000):
        # three pipelined requests in one write: two answered in the protocol, one by the app
        raw = (_post("/v1/recommendations", one, "x-request-id: req-1")
               + _post("/v1/recommendations/batch", batch, "x-request-id: req-2")
               + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = _responses(_exchange(running.url, raw))
        assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 3
        assert answers[0][2] == expected_one and answers[1][2] == expected_batch
        assert answers[0][1]["x-request-id"] == "req-1"
        assert answers[0][1]["content-type"] == "application/json"
        assert "date" in answers[0][1] and "connection" not in answers[0][1]
        assert json.loads(answers[2][2]) == {"status": "ok"}
        # the client closes: so does the server, after answering
        closing = _responses(_exchange(running.url, _post("/v1/recommendations", one,
                                                          "Connection: close"),
                                       expect_close=True))
        assert closing[0][1]["connection"] == "close" and closing[0][0].endswith("200 OK")
        old = _responses(_exchange(running.url, _post("/v1/recommendations", one, version="1.0"),
                                   expect_close=True))
        assert old[0][1]["connection"] == "close" and json.loads(old[0][2])["items"]
        # limits and errors, as the application answers them
        big = _post("/v1/recommendations", b'{"basket": ["' + b"a" * 3000 + b'"]}')
        status, _, body = _responses(_exchange(running.url, big))[0]
        assert status == "HTTP/1.1 413 Request Entity Too Large"
        assert json.loads(body)["error"] == "body_too_large"
        # a body declared too large, or a chunked one past the limit, is answered (and the
        # connection closed) without waiting for the rest of it: it never comes here
        for unfinished in (
                b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                b"json\r\nContent-Length: 1000000000000\r\n\r\n{\"basket\": []}",
                b"POST /v1/recommendations/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                b"chunked\r\n\r\n" + b"bb8\r\n" + b" " * 3000 + b"\r\n"):
            answers = _responses(_until_closed(running.url, unfinished))
            assert [a[0] for a in answers] == ["HTTP/1.1 413 Request Entity Too Large"]
            assert answers[0][1]["connection"] == "close"
            assert json.loads(answers[0][2])["error"] == "body_too_large"
        status, _, body = _responses(_exchange(running.url, _post("/v1/recommendations",
                                                                  b'{"basket": [1]}')))[0]
        assert status.endswith("422 Unprocessable Entity") and json.loads(body)["field"]
        # a chunked body is read by the protocol too; Expect: 100-continue goes to uvicorn
        chunked = (b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                   b"\r\nx-request-id: req-1\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(one), one))
        assert _responses(_exchange(running.url, chunked))[0][2] == expected_one
        continued = _exchange(running.url, _post("/v1/recommendations", one,
                                                 "Expect: 100-continue", "x-request-id: req-1"))
        assert continued.endswith(expected_one)
        # many requests on one kept-alive connection
        with running.client() as c:
            for _ in range(50):
                r = c.post("/v1/recommendations", content=one,
                           headers={"x-request-id": "req-1"})
                assert r.status_code == 200 and r.content == expected_one
        # every one counted once, whichever path answered it (5 above, 50 here)
        metrics = httpx.get(f"{running.url}/metrics").text
        assert 'basketry_http_requests_total{endpoint="/v1/recommendations",method="POST",' \
               'status="200"} 55.0' in metrics


def test_an_upgrade_request_to_a_fast_path_is_answered_as_uvicorn_answers_it(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    """A POST to a recommendation endpoint that asks for a WebSocket is uvicorn's to answer,
    as it answers it on every other path (the protocol used to answer it itself and then hand
    the connection to uvicorn's upgrade, which failed with a traceback in the log and closed
    the connection without an answer)."""
    upgrade = (b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    for running in start(tmp_path, versions["v1"][0]):
        head, _, body = _until_closed(running.url, upgrade).partition(b"\r\n\r\n")
        # what uvicorn answers with the fast path off (websockets refuses the method)
        assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n"), head
        assert b"unsupported HTTP method: POST" in body
        assert not [line for line in running.log_lines() if "Traceback" in line]


def test_a_client_that_leaves_mid_body_is_counted_as_gone_on_every_path_and_logs_no_error(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    """A client that closes its connection before its body is in is recorded with status 499
    (client closed request), whichever path reads the body, and logs no error (the framework
    logged "server error" and counted a 500; the application's own fast path counted a 400;
    the protocol counted nothing)."""
    one = json.dumps({"basket": ["a", "b"], "k": 3}).encode()
    for fast in (True, False):
        for running in start(tmp_path, versions["v1"][0], fast_path=fast):
            host, port = running.url.removeprefix("http://").split(":")
            # answered in the protocol (fast path on), by the application's own fast path
            # (an empty query string: the protocol matches the exact path), and by the
            # framework (the admin endpoint)
            cut = [_post("/v1/recommendations", one), _post("/v1/recommendations?", one),
                   _post("/v1/admin/reload", b'{"model": null}', f"authorization: Bearer {ADMIN}")]
            for raw in cut:
                with socket.create_connection((host, int(port)), timeout=30) as s:
                    s.sendall(raw[:-5])
                    # the server has the head (it answers a second request on another
                    # connection) before this client leaves
                    assert httpx.get(f"{running.url}/healthz").status_code == 200
            deadline = time.monotonic() + 20
            while True:  # the server sees each departure in its own time
                metrics = httpx.get(f"{running.url}/metrics").text
                gone = re.findall(r'basketry_http_requests_total\{endpoint="([^"]+)",method="POST",'
                                  r'status="499"\} ([\d.]+)', metrics)
                if sum(float(n) for _, n in gone) >= 3:
                    break
                assert time.monotonic() < deadline, metrics
                time.sleep(0.1)
            assert dict(gone) == {"/v1/recommendations": "2.0", "/v1/admin/reload": "1.0"}
            assert 'method="POST",status="5' not in metrics
            assert 'method="POST",status="4' not in metrics.replace('status="499"', "")
            errors = [line for line in running.log_lines()
                      if '"level": "error"' in line or "Traceback" in line]
            assert errors == []


def test_a_request_that_follows_a_fast_answer_in_the_same_packet_is_not_cut_by_keep_alive(
        tmp_path: Path, versions: dict[str, tuple[Path, str]]) -> None:
    """The keep-alive timeout is for idle connections: a request that arrived with a fast-path
    request, in the same packet, and is still coming in (or still being answered) when the
    timeout passes is answered (the fast answer armed the timer, and it closed the connection
    under the next request, whose answer was lost)."""
    one = json.dumps({"basket": ["a", "b"], "k": 3}).encode()
    for running in start(tmp_path, versions["v1"][0], keep_alive=0.2):
        host, port = running.url.removeprefix("http://").split(":")
        # the next request answered in the protocol, and one answered by the application
        for second in (_post("/v1/recommendations", one, "x-request-id: second"),
                       _post("/v1/recommendations?", one, "x-request-id: second")):
            with socket.create_connection((host, int(port)), timeout=30) as s:
                s.sendall(_post("/v1/recommendations", one) + second[:-5])
                time.sleep(1)  # a client slow to send its body: five keep-alive timeouts
                s.sendall(second[-5:] + _post("/v1/recommendations", one, "Connection: close"))
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            answers = _responses(out)
            assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 3, out
            assert answers[1][1]["x-request-id"] == "second"
