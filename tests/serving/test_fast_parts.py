"""The cheap parts of the request path keep the behaviour of what they replaced: answers written
from pre-encoded pieces, the direct access log, metrics counted in plain ints, request ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from pathlib import Path

import msgspec
import pytest

from basketry.serving import Settings, create_app
from basketry.serving import schemas as S
from basketry.serving.logs import AccessLog, JsonFormatter, TextFormatter
from basketry.serving.metrics import Metrics
from tests.serving.conftest import client_for, write_version

ODD = 'q"\\ü→'  # a tag that puts quotes, a backslash and non-ASCII into every label


@pytest.mark.parametrize("scoring", ["confidence", "smoothed"])
@pytest.mark.parametrize("body", [
    {"basket": ["a"], "k": 5},
    {"basket": ["a", "b", "new \"item\" é"], "k": 3, "exclude": ["d"]},
    {"basket": ["a", "b", "e"], "k": 4},
    {"basket": [], "k": 7},
    {"basket": ["e"], "k": 1},
])
def test_fast_answers_are_byte_for_byte_msgspec_documents(tmp_path: Path, body: dict,
                                                          scoring: str) -> None:
    model = tmp_path / "model"
    write_version(model, ODD, scoring=scoring)
    headers = {"x-request-id": "req-1"}
    with client_for(Settings(model=str(model), fast_path=True)) as fast, \
            client_for(Settings(model=str(model), fast_path=False)) as framework:
        for _ in range(2):  # the second answer comes from the cache of encoded items
            got = fast.post("/v1/recommendations", json=body, headers=headers)
            assert got.status_code == 200
            canonical = msgspec.json.encode(
                msgspec.json.decode(got.content, type=S.RecommendationResponse))
            assert got.content == canonical
            expected = framework.post("/v1/recommendations", json=body, headers=headers)
            assert got.json() == expected.json()
        batch = {"requests": [body, {"basket": ["a"]}]}
        got = fast.post("/v1/recommendations/batch", json=batch, headers=headers)
        assert got.content == msgspec.json.encode(
            msgspec.json.decode(got.content, type=S.BatchResponse))
        expected = framework.post("/v1/recommendations/batch", json=batch, headers=headers)
        assert got.json() == expected.json()
        assert ODD in got.json()["results"][1]["items"][0]["label"]


def _access_lines(formatter: logging.Formatter, direct: bool) -> list[str]:
    logger = logging.getLogger(f"basketry.test.access.{type(formatter).__name__}.{direct}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger.handlers[:] = [handler]
    if not direct:
        handler.addFilter(lambda record: True)  # any filter: the logging path is kept
    access = AccessLog(logger)
    assert bool(access._handlers) is direct
    access("abc-123", "POST", "/v1/recommendations", 200, 0.0012345)
    access("d\"e", "GET", "/v1/items/{item}/associations", 404, 2.5)
    access.flush()
    return out.getvalue().splitlines()


def test_the_direct_access_log_writes_what_logging_writes() -> None:
    direct = [json.loads(line) for line in _access_lines(JsonFormatter(), True)]
    logged = [json.loads(line) for line in _access_lines(JsonFormatter(), False)]
    assert len(direct) == len(logged) == 2
    for a, b in zip(direct, logged, strict=True):
        assert a.keys() == b.keys()
        assert {k: v for k, v in a.items() if k not in ("ts", "logger")} == \
               {k: v for k, v in b.items() if k not in ("ts", "logger")}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", a["ts"])
        assert len(a["ts"]) == len(b["ts"])
    assert direct[0]["ms"] == 1.234 and direct[1]["request_id"] == 'd"e'
    text_direct = _access_lines(TextFormatter(), True)
    text_logged = _access_lines(TextFormatter(), False)
    strip = re.compile(r"^\S+ \S+ (.*?) basketry\.test\.access\.\S+: ")
    assert [strip.sub(r"\1 ", x) for x in text_direct] == \
           [strip.sub(r"\1 ", x) for x in text_logged]


def test_access_lines_are_written_in_batches() -> None:
    """Under a running event loop the lines wait up to FLUSH_DELAY (or FLUSH_LINES lines) and
    go out in one write: a steady stream of single requests is not a write per request."""
    from basketry.serving import logs

    class Counting(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            Counting.writes += 1
            return super().write(text)

    logger = logging.getLogger("basketry.test.access.batches")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    out = Counting()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    access = AccessLog(logger)

    async def traffic() -> tuple[int, int, int]:
        for i in range(3):
            access(f"r{i}", "POST", "/v1/recommendations", 200, 0.001)
            await asyncio.sleep(0)  # separate event-loop turns
        waiting = len(out.getvalue().splitlines())
        await asyncio.sleep(logs.FLUSH_DELAY + 0.05)
        after_delay = len(out.getvalue().splitlines())
        for i in range(logs.FLUSH_LINES):
            access(f"s{i}", "POST", "/v1/recommendations", 200, 0.001)
        return waiting, after_delay, len(out.getvalue().splitlines())

    waiting, after_delay, after_burst = asyncio.run(traffic())
    assert waiting == 0 and after_delay == 3
    assert after_burst == 3 + logs.FLUSH_LINES  # a full batch goes out at once
    assert Counting.writes == 2


def test_access_log_off_below_info() -> None:
    logger = logging.getLogger("basketry.test.access.quiet")
    logger.setLevel(logging.WARNING)
    access = AccessLog(logger)
    assert not access.enabled
    access("x", "GET", "/healthz", 200, 0.001)  # nothing to write, nothing raised


def test_latency_histogram_counted_in_ints_matches_prometheus() -> None:
    metrics = Metrics()
    for seconds in (0.0004, 0.0005, 0.003, 0.003, 0.02, 3.0):
        metrics.observe_request("/v1/recommendations", "POST", 200, seconds)
    metrics.observe_request("/healthz", "GET", 200, 0.0001)
    text = metrics.render().decode()

    def sample(name: str, labels: str) -> float:
        match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
        assert match, (name, labels, text)
        return float(match.group(1))

    hist = "basketry_http_request_duration_seconds"
    ep = 'endpoint="/v1/recommendations"'
    assert sample(f"{hist}_bucket", f'{ep},le="0.0005"') == 2
    assert sample(f"{hist}_bucket", f'{ep},le="0.005"') == 4
    assert sample(f"{hist}_bucket", f'{ep},le="0.025"') == 5
    assert sample(f"{hist}_bucket", f'{ep},le="2.5"') == 5
    assert sample(f"{hist}_bucket", f'{ep},le="+Inf"') == 6
    assert sample(f"{hist}_count", ep) == 6
    assert sample(f"{hist}_sum", ep) == pytest.approx(3.0269)
    assert sample("basketry_http_requests_total",
                  'endpoint="/healthz",method="GET",status="200"') == 1
    # counts are handed over once: a second scrape shows the same totals
    metrics.observe_basket(3, 1, 2, 3)
    again = metrics.render().decode()
    assert f'{hist}_count{{{ep}}} 6.0' in again
    assert 'basketry_recommended_items_total{source="fallback"} 3.0' in again
    assert "basketry_fallback_baskets_total 1.0" in again
    assert metrics.render().decode().count("basketry_fallback_baskets_total 1.0") == 1


def test_request_ids_are_16_hex_digits_and_unique(model_dir: Path) -> None:
    app = create_app(Settings(model=str(model_dir)))
    ids = {app.new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{16}", x) for x in ids)
    other = create_app(Settings(model=str(model_dir)))
    assert other.new_request_id()[:8] != app.new_request_id()[:8]  # random per process


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_coalesced_writes_send_one_turns_writes_together() -> None:
    from basketry.serving.protocol import CoalescedWrites

    async def main() -> tuple[_Transport, _Transport, _Transport]:
        loop = asyncio.get_running_loop()
        plain = _Transport()
        t = CoalescedWrites(plain, loop)  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert plain.writes == [] and t.get_write_buffer_size() == 23
        assert t.get_extra_info("peername") == "info:peername"
        await asyncio.sleep(0)  # the end of this turn of the loop
        assert plain.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"more")
        await asyncio.sleep(0)
        assert plain.writes[-1] == b"more"
        big = b"x" * 70_000  # large writes are not kept back
        t.write(b"head")
        t.write(big)
        assert plain.writes[-1] == b"head" + big
        await asyncio.sleep(0)  # the scheduled send finds nothing left
        assert plain.writes[-1] == b"head" + big
        closing = _Transport()
        c = CoalescedWrites(closing, loop)  # type: ignore[arg-type]
        c.write(b"last words")
        c.close()  # what is pending goes first
        aborting = _Transport()
        a = CoalescedWrites(aborting, loop)  # type: ignore[arg-type]
        a.write(b"dropped")
        a.abort()
        await asyncio.sleep(0)
        return plain, closing, aborting

    _, closing, aborting = asyncio.run(main())
    assert closing.writes == [b"last words"] and closing.closed
    assert aborting.writes == [] and aborting.aborted


def test_serve_uses_the_direct_coalescing_protocol() -> None:
    from uvicorn.config import Config

    from basketry.serving.protocol import CoalescingHttpToolsProtocol, DirectHttpToolsProtocol
    from basketry.serving.server import http_protocol

    config = Config(app=lambda *a: None, http=http_protocol())
    config.load()
    assert config.http_protocol_class is DirectHttpToolsProtocol
    assert issubclass(DirectHttpToolsProtocol, CoalescingHttpToolsProtocol)


def test_the_direct_protocol_answers_while_parsing_and_leaves_the_rest_to_uvicorn(
        model_dir: Path) -> None:
    """Fed a recommendation request, the protocol has the answer written before the event
    loop turns (no ASGI task); a request for another path starts uvicorn's task instead."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from basketry.serving.protocol import DirectHttpToolsProtocol, _Answered

    app = create_app(Settings(model=str(model_dir)))
    app.holder.load_initial()
    body = b'{"basket": ["a"], "k": 2}'
    request = (b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"x-request-id: direct-1\r\n\r\n%s" % (len(body), body))

    async def main() -> tuple[list[bytes], bool, int, int]:
        config = Config(app=app, http=DirectHttpToolsProtocol, log_config=None,
                        proxy_headers=False)  # as basketry serve runs it
        config.load()
        state = ServerState()
        transport = _Transport()
        transport.get_extra_info = lambda name: None  # type: ignore[method-assign]
        protocol = DirectHttpToolsProtocol(config=config, server_state=state, app_state={})
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(request)
        answered_here = type(protocol.cycle) is _Answered and protocol.cycle.response_complete
        tasks_before = len(state.tasks)
        await asyncio.sleep(0)  # the coalesced write goes out at the end of the turn
        written = list(transport.writes)
        protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        tasks_after = len(state.tasks)
        protocol.connection_lost(None)
        return written, answered_here, tasks_before, tasks_after

    written, answered_here, tasks_before, tasks_after = asyncio.run(main())
    assert answered_here and tasks_before == 0
    assert tasks_after == 1  # uvicorn's ASGI task for the other path
    assert len(written) == 1 and written[0].startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, payload = written[0].partition(b"\r\n\r\n")
    assert b"x-request-id: direct-1" in head and b"content-length: %d" % len(payload) in head
    with client_for(Settings(model=str(model_dir), fast_path=False)) as c:
        expected = c.post("/v1/recommendations", content=body,
                          headers={"x-request-id": "direct-1"}).content
    assert payload == expected


@pytest.mark.parametrize(("path", "label"), [
    ("/v1/recommendations", "/v1/recommendations"),
    ("/v1/items/85123A/associations", "/v1/items/{item}/associations"),
    ("/v1/layout", "/v1/layout"),
    ("/v1/layout/items/85123A", "/v1/layout/items/{item}"),
    ("/v1/orders", "/v1/orders"),
    ("/v1/monitoring/performance", "/v1/monitoring/performance"),
    ("/monitor", "/monitor"),
    ("/monitor/assets/plotly.abc123.min.js", "/monitor/assets"),
    ("/v1/nothing/here", "other"),
])
def test_metrics_label_every_route_by_its_template_never_by_the_item(path, label):
    from basketry.serving.middleware import endpoint_of

    assert endpoint_of(path) == label
