"""Slow, idle and oversized clients: a request's head and body must come in within their
timeouts (408), a head is bounded in size (431), and a worker keeps a bounded number of
connections open; normal clients keep being served and the server's memory stays bounded.

The real-server tests start ``basketry serve`` as tests/serving/test_server.py does, on
127.0.0.1, and fail at a socket's timeout (never a timed assertion) when the server keeps a
connection it should have closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from basketry.serving import Settings, SettingsError, create_app
from tests.serving.conftest import ADMIN, write_version
from tests.serving.test_server import _post, _responses, rss_mb, start

ONE = json.dumps({"basket": ["a", "b"], "k": 3}).encode()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model-v1"
    write_version(path, "v1")
    return path


# ---- settings ---------------------------------------------------------------------------------

def test_the_bounds_have_defaults_and_come_from_the_environment() -> None:
    s = Settings()
    assert (s.header_timeout, s.body_timeout, s.max_connections) == (10, 10, 1000)
    s = Settings.from_env({"BASKETRY_HEADER_TIMEOUT": "2.5", "BASKETRY_BODY_TIMEOUT": "30",
                           "BASKETRY_MAX_CONNECTIONS": "64"}, body_timeout=None)
    assert (s.header_timeout, s.body_timeout, s.max_connections) == (2.5, 30, 64)
    assert Settings.from_env({"BASKETRY_MAX_CONNECTIONS": "64"},
                             max_connections=5).max_connections == 5


@pytest.mark.parametrize(("env", "needle"), [
    ({"BASKETRY_HEADER_TIMEOUT": "0"}, "BASKETRY_HEADER_TIMEOUT"),
    ({"BASKETRY_HEADER_TIMEOUT": "-1"}, "BASKETRY_HEADER_TIMEOUT"),
    ({"BASKETRY_HEADER_TIMEOUT": "inf"}, "BASKETRY_HEADER_TIMEOUT"),
    ({"BASKETRY_HEADER_TIMEOUT": "nan"}, "BASKETRY_HEADER_TIMEOUT"),
    ({"BASKETRY_HEADER_TIMEOUT": "soon"}, "BASKETRY_HEADER_TIMEOUT"),
    ({"BASKETRY_BODY_TIMEOUT": "0"}, "BASKETRY_BODY_TIMEOUT"),
    ({"BASKETRY_BODY_TIMEOUT": "inf"}, "BASKETRY_BODY_TIMEOUT"),
    ({"BASKETRY_MAX_CONNECTIONS": "0"}, "BASKETRY_MAX_CONNECTIONS"),
    ({"BASKETRY_MAX_CONNECTIONS": "1.5"}, "BASKETRY_MAX_CONNECTIONS"),
    ({"BASKETRY_MAX_CONNECTIONS": "many"}, "BASKETRY_MAX_CONNECTIONS"),
])
def test_bad_bounds_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


@pytest.mark.parametrize(("soft", "hard", "expected"), [
    (256, 4096, "1128"),  # raised to what 1000 connections need
    (4096, 4096, "4096"),  # already enough: left alone
    (256, 512, "BASKETRY_MAX_CONNECTIONS=1000 needs 1128 open files"),  # cannot be
])
def test_the_open_file_limit_is_raised_to_what_the_connections_need(
        soft: int, hard: int, expected: str) -> None:
    # in a child process: the limit is the process's
    code = ("import resource\n"
            "from basketry.serving.server import ensure_open_files\n"
            "from basketry.serving import SettingsError\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
            "try:\n"
            "    ensure_open_files(1000)\n"
            "    print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
            "except SettingsError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out.startswith(expected), out


# ---- the uvicorn internals the protocol relies on ----------------------------------------------

#: What GuardedHttpToolsProtocol and DirectHttpToolsProtocol override or call of uvicorn's
#: HttpToolsProtocol (0.55.0). A name gone or renamed makes an override dead code and the
#: bounds silently absent: this test says which.
UVICORN_METHODS = ("connection_made", "connection_lost", "data_received", "on_message_begin",
                   "on_url", "on_header", "on_headers_complete", "on_body",
                   "on_message_complete", "on_response_complete", "handle_websocket_upgrade",
                   "resume_writing", "_unset_keepalive_if_required", "timeout_keep_alive_handler")
UVICORN_ATTRIBUTES = ("app", "loop", "parser", "connections", "tasks", "server_state", "flow",
                      "transport", "cycle", "pipeline", "expect_100_continue",
                      "timeout_keep_alive_task")
CYCLE_ATTRIBUTES = ("scope", "keep_alive", "response_started", "response_complete",
                    "disconnected", "message_event")


def test_the_uvicorn_internals_the_protocol_relies_on_are_there(model_dir: Path) -> None:
    from uvicorn.config import Config
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.server import ServerState

    from basketry.serving.protocol import DirectHttpToolsProtocol

    base = httptools_impl.HttpToolsProtocol
    missing = [name for name in UVICORN_METHODS if not callable(getattr(base, name, None))]
    assert missing == [], f"uvicorn {httptools_impl.__name__} lost {missing}: review protocol.py"
    assert list(inspect.signature(base.__init__).parameters) == [
        "self", "config", "server_state", "app_state", "_loop"]
    assert 408 in httptools_impl.STATUS_LINE and 431 in httptools_impl.STATUS_LINE
    assert {"read_paused", "write_paused"} <= set(vars(FlowControl(_Transport())))  # type: ignore[arg-type]

    async def main() -> tuple[DirectHttpToolsProtocol, dict[str, object]]:
        app = create_app(Settings(model=str(model_dir), header_timeout=3, body_timeout=4,
                                  max_connections=7))
        config = Config(app=app, http=DirectHttpToolsProtocol, log_config=None,
                        proxy_headers=False)
        config.load()
        protocol = DirectHttpToolsProtocol(config=config, server_state=ServerState(),
                                           app_state={})
        protocol.connection_made(_Transport())  # type: ignore[arg-type]
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        cycle = vars(protocol.cycle)
        protocol.connection_lost(None)
        return protocol, cycle

    protocol, cycle = asyncio.run(main())
    assert [a for a in UVICORN_ATTRIBUTES if not hasattr(protocol, a)] == []
    assert [a for a in CYCLE_ATTRIBUTES if a not in cycle] == []
    assert protocol.url == b"/healthz"  # uvicorn's accumulated request target
    # the settings reach the protocol through the application
    assert (protocol._header_timeout, protocol._body_timeout, protocol._max_connections) == (
        3, 4, 7)


class _Transport:
    """The transport side of a protocol driven in-process."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.closed_by_server = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _drive(model_dir: Path, steps: list[bytes | float], **settings: object
           ) -> tuple[_Transport, int]:
    """Feed a DirectHttpToolsProtocol ``steps`` (bytes: received; a number: seconds of the event
    loop running); what it wrote and the number of timer handles it scheduled."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from basketry.serving.protocol import DirectHttpToolsProtocol

    app = create_app(Settings(model=str(model_dir), **settings))  # type: ignore[arg-type]
    app.holder.load_initial()

    async def main() -> tuple[_Transport, int]:
        loop = asyncio.get_running_loop()
        config = Config(app=app, http=DirectHttpToolsProtocol, log_config=None,
                        proxy_headers=False)
        config.load()
        protocol = DirectHttpToolsProtocol(config=config, server_state=ServerState(),
                                           app_state={})
        timers = 0
        call_at = loop.call_at

        def counting_call_at(when: float, callback: object, *args: object,
                             **kwargs: object) -> asyncio.TimerHandle:
            nonlocal timers  # the protocol's deadline timers (not uvicorn's keep-alive)
            timers += getattr(callback, "__name__", "") == "_check_deadline"
            return call_at(when, callback, *args, **kwargs)  # type: ignore[arg-type]

        loop.call_at = counting_call_at  # type: ignore[method-assign]
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for step in steps:
            if isinstance(step, bytes):
                protocol.data_received(step)
            else:
                await asyncio.sleep(step)
            if transport.closed:
                break
        await asyncio.sleep(0)
        transport.closed_by_server = transport.closed
        protocol.connection_lost(None)  # uvicorn closes the transport
        return transport, timers

    return asyncio.run(main())


def test_one_timer_per_connection_not_per_request(model_dir: Path) -> None:
    """Many requests on one connection, each in one read: the connection's timer is set when it
    opens and not again while it is not due (the hot path only stores deadlines)."""
    request = _post("/v1/recommendations", ONE)
    for header, body, expected in ((10, 10, 1), (30, 30, 1), (30, 10, 2)):
        transport, timers = _drive(model_dir, [request] * 200, header_timeout=header,
                                   body_timeout=body)
        answers = _responses(b"".join(transport.writes))
        assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 200
        # a body timeout shorter than the head's sets it once more, when the first body comes
        assert timers == expected and not transport.closed_by_server


@pytest.mark.parametrize(("steps", "status"), [
    ([b"POST /v1/recomm", 0.5], "408 Request Timeout"),
    ([_post("/v1/recommendations", ONE)[:-3], 0.5], "408 Request Timeout"),
    ([_post("/v1/recommendations?", ONE)[:-3], 0.5], "408 Request Timeout"),
    ([b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"x-a: b\r\n" * 10000],
     "431 Request Header Fields Too Large"),
])
def test_the_protocol_answers_a_slow_or_large_request_and_closes(
        model_dir: Path, steps: list[bytes | float], status: str) -> None:
    transport, _ = _drive(model_dir, steps, header_timeout=0.2, body_timeout=0.2)
    answers = _responses(b"".join(transport.writes))
    assert [a[0] for a in answers] == [f"HTTP/1.1 {status}"] and transport.closed_by_server
    assert answers[0][1]["connection"] == "close"


def test_a_head_as_large_as_the_limit_in_one_read_or_many_is_not_refused(model_dir: Path) -> None:
    from basketry.serving.protocol import MAX_HEAD_BYTES

    filler = b"x-a: " + b"b" * 90 + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + filler * ((MAX_HEAD_BYTES - 100) // 97)
    assert MAX_HEAD_BYTES - 200 < len(head) + 2 <= MAX_HEAD_BYTES
    whole = head + b"\r\n"
    for steps in ([whole], [whole[i:i + 1000] for i in range(0, len(whole), 1000)]):
        transport, _ = _drive(model_dir, [*steps, 0.2])
        answers = _responses(b"".join(transport.writes))
        assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"]
        assert not transport.closed_by_server


# ---- the real server ---------------------------------------------------------------------------

def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _read_until_closed(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):  # TimeoutError: the server kept the connection open
        out += chunk
    return out


def _statuses(metrics: str, status: str) -> dict[str, float]:
    found = re.findall(r'basketry_http_requests_total\{endpoint="([^"]+)",method="[^"]*",'
                       rf'status="{status}"\}} ([\d.]+)', metrics)
    out: dict[str, float] = {}
    for endpoint, n in found:
        out[endpoint] = out.get(endpoint, 0) + float(n)
    return out


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "framework"])
def test_a_client_that_stalls_its_head_or_body_is_answered_408_and_cut_off(
        tmp_path: Path, model: Path, fast: bool) -> None:
    """Half a request line, a head without its end, a head and half a body (answered in the
    protocol, by the application's own fast path, by the framework), and a connection that
    sends nothing: each is cut off after its timeout, the requests answered 408 and counted;
    a head past the size limit is answered 431 at once."""
    admin = _post("/v1/admin/reload", b'{"model": null}', f"authorization: Bearer {ADMIN}")
    stalled = {
        "nothing": b"",
        "half a request line": b"POST /v1/recomm",
        "a head without its end": b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "half a body (protocol)": _post("/v1/recommendations", ONE)[:-5],
        "half a body (application)": _post("/v1/recommendations?", ONE)[:-5],
        "half a body (framework)": admin[:-5],
        "a head too large": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"x-a: b\r\n" * 20000,
    }
    for running in start(tmp_path, model, fast_path=fast, header_timeout=1,
                         body_timeout=1):
        sockets = {}
        for name, raw in stalled.items():  # all at once: the timeouts run together
            s = socket.create_connection(_address(running.url), timeout=30)
            with contextlib.suppress(ConnectionResetError):  # the head too large: refused
                s.sendall(raw)                                # before it was all sent
            sockets[name] = s
        answers = {}
        for name, s in sockets.items():
            with s:
                try:
                    answers[name] = _responses(_read_until_closed(s))
                except ConnectionResetError:  # the rest of the large head was unread
                    answers[name] = []
        assert answers.pop("nothing") == []
        large = answers.pop("a head too large")
        assert [a[0] for a in large] in ([], ["HTTP/1.1 431 Request Header Fields Too Large"])
        for name, got in answers.items():
            assert [a[0] for a in got] == ["HTTP/1.1 408 Request Timeout"], name
            _, headers, body = got[0]
            assert headers["connection"] == "close"
            document = json.loads(body)
            assert document["error"] == "request_timeout", document
            assert headers["x-request-id"] == document["request_id"]
        # the server still answers, and counted each request: 408s, a 431, nothing else
        http = running.client()
        assert http.post("/v1/recommendations", content=ONE).status_code == 200
        metrics = http.get("/metrics").text
        assert _statuses(metrics, "408") == {"other": 1, "/healthz": 1,
                                             "/v1/recommendations": 2, "/v1/admin/reload": 1}
        assert _statuses(metrics, "431") == {"/healthz": 1}
        assert _statuses(metrics, "499") == {} and 'status="5' not in metrics
        errors = [line for line in running.log_lines()
                  if '"level": "error"' in line or "Traceback" in line]
        assert errors == []


def test_a_slow_but_steady_client_is_not_cut_off(
        tmp_path: Path, model: Path) -> None:
    """Requests that each come in within the timeouts are answered, however long the
    connection lives (the timer is re-armed for each phase, not left from an earlier one)."""
    for running in start(tmp_path, model, header_timeout=1, body_timeout=1):
        with socket.create_connection(_address(running.url), timeout=30) as s:
            requests = [_post("/v1/recommendations", ONE), _post("/v1/recommendations?", ONE),
                        _post("/v1/recommendations/batch", b'{"requests": [{"basket": []}]}'),
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"] * 2
            for raw in requests:  # 0.4 s a request: 3 s in all, in pieces
                for piece in (raw[:10], raw[10:-3], raw[-3:]):
                    s.sendall(piece)
                    time.sleep(0.13)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(65536)
                assert head.startswith(b"HTTP/1.1 200 OK"), head


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _closed(sockets: list[socket.socket], wanted: int, deadline: float) -> set[int]:
    """Wait until ``wanted`` of ``sockets`` are closed by the server (EOF or reset); their
    indexes. Past ``deadline`` the test fails (the server kept them open)."""
    closed: set[int] = set()
    index = {s.fileno(): i for i, s in enumerate(sockets)}
    poll = select.poll()  # not select(): more than 1024 descriptors
    for fd in index:
        poll.register(fd, select.POLLIN)
    while len(closed) < wanted:
        assert time.monotonic() < deadline, f"{len(closed)} of {wanted} connections closed"
        for fd, _ in poll.poll(500):
            try:
                data = sockets[index[fd]].recv(65536)
            except ConnectionResetError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1 408 "):  # closed after its 408
                closed.add(index[fd])
                poll.unregister(fd)
    return closed


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "framework"])
def test_idle_sockets_neither_stop_other_clients_nor_take_the_servers_memory(
        tmp_path: Path, model: Path, fast: bool) -> None:
    """500 idle or half-sent connections at once: a new client is still answered and the
    server's memory grows by little; past ``max_connections`` more connections are closed as
    soon as they are accepted, while a client already connected keeps being answered; after
    the header timeout every idle connection is gone and new clients are served again."""
    expected = None
    for running in start(tmp_path, model, fast_path=fast, max_connections=600,
                         header_timeout=8, body_timeout=8, keep_alive=60, access_log=False):
        pid = running.proc.pid
        address = _address(running.url)
        kept = socket.create_connection(address, timeout=30)  # a client already connected

        def ask(s: socket.socket) -> dict:
            s.sendall(_post("/v1/recommendations", ONE))
            out = b""
            while not (answers := _responses_if_complete(out)):
                chunk = s.recv(65536)
                assert chunk, "the server closed a client's connection"
                out += chunk
            assert answers[0][0] == "HTTP/1.1 200 OK"
            return json.loads(answers[0][2])

        expected = ask(kept)["items"]
        fds, rss = _fds(pid), rss_mb(pid)
        idle: list[socket.socket] = []
        halves = (b"", b"POST /v1/recomm", _post("/v1/recommendations", ONE)[:-5])
        for i in range(500):
            s = socket.create_connection(address, timeout=30)
            s.sendall(halves[i % 3])
            idle.append(s)
        # a new client, and the one already connected, are answered
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.post("/v1/recommendations", content=ONE).json()["items"] == expected
        assert ask(kept)["items"] == expected
        grown, opened = rss_mb(pid) - rss, _fds(pid) - fds
        assert opened >= 500  # all accepted (under the limit)
        assert grown < 64, f"500 idle connections took {grown:.0f} MB"
        # 300 more: only what the limit leaves is accepted, the rest closed at once
        more = [socket.create_connection(address, timeout=30) for _ in range(300)]
        refused = _closed(more, 300 - (600 - 501), time.monotonic() + 30)
        # refused as they came, not timed out: the idle connections are all still open
        waiting = select.poll()
        for s in idle:
            waiting.register(s, select.POLLIN)
        assert waiting.poll(0) == [], "the refused connections were only timed out"
        assert _fds(pid) - fds <= 600  # never more connections than the limit
        assert ask(kept)["items"] == expected
        # after the header timeout, every idle and half-sent connection is closed
        everyone = idle + [s for i, s in enumerate(more) if i not in refused]
        _closed(everyone, len(everyone), time.monotonic() + 60)
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.post("/v1/recommendations", content=ONE).json()["items"] == expected
        for s in [*idle, *more, kept]:
            s.close()
        assert any("connections_refused" in line for line in running.log_lines())


def _responses_if_complete(raw: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return []
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    return _responses(raw) if len(rest) >= length else []
