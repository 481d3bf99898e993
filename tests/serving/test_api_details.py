"""What a shop's developers trip on: CORS, malformed bodies, unknown query parameters, errors
as RFC 9457 problem documents listing every invalid field, and the log format.

The application's cases run twice (``client``: its fast path and the framework); the real
server's (uvicorn with basketry's protocol, which answers the recommendation endpoints itself)
are checked against the application's answers byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from basketry.serving import Settings, SettingsError
from basketry.serving.cors import MAX_AGE, MAX_KEPT, cors_of
from basketry.serving.decoding import MAX_ERRORS
from basketry.serving.logs import resolve_format
from tests.serving.conftest import client_for, write_version
from tests.serving.test_server import _exchange, _post, _responses, start

SHOP = "https://shop.example"
PROBLEM = "application/problem+json"


@pytest.fixture
def cors_client(model_dir: Path, fast_path: bool) -> Iterator[TestClient]:
    settings = Settings(model=str(model_dir), fast_path=fast_path,
                        cors_origins=f"{SHOP}, https://www.shop.example:8443/")
    with client_for(settings) as c:
        yield c


# ---- CORS ----------------------------------------------------------------------------------

CORS_CASES = [
    # (method, path, origin, allowed)
    ("POST", "/v1/recommendations", SHOP, True),
    ("POST", "/v1/recommendations/batch", SHOP, True),
    ("POST", "/v1/recommendations", "https://WWW.shop.example:8443", True),
    ("GET", "/v1/items/a/associations", SHOP, True),
    ("GET", "/v1/model", SHOP, True),
    ("POST", "/v1/recommendations", "https://evil.example", False),
    ("POST", "/v1/recommendations", "http://shop.example", False),  # another scheme
    ("GET", "/v1/model", "https://shop.example.evil.example", False),
    ("POST", "/v1/recommendations", None, False),
]
BODIES = {"/v1/recommendations": {"basket": ["a"]},
          "/v1/recommendations/batch": {"requests": [{"basket": ["a"]}]}}


@pytest.mark.parametrize(("method", "path", "origin", "allowed"), CORS_CASES)
def test_cors_headers_go_to_allowed_origins_only(cors_client: TestClient, method: str,
                                                 path: str, origin: str | None,
                                                 allowed: bool) -> None:
    headers = {"origin": origin} if origin else {}
    r = cors_client.request(method, path, json=BODIES.get(path), headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["vary"].lower() == "origin"  # the answer depends on the origin
    if allowed:
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-expose-headers"] == "x-request-id"
    else:
        assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers


def test_cors_errors_carry_the_headers_too(cors_client: TestClient) -> None:
    # a browser shows the page its error only when the error carries the headers
    for body in ({"basket": [1]}, {"basket": "a", "k": 0}):
        r = cors_client.post("/v1/recommendations", json=body, headers={"origin": SHOP})
        assert r.status_code == 422 and r.headers["access-control-allow-origin"] == SHOP


PREFLIGHTS = [
    # (origin, requested method, answered by the CORS layer)
    (SHOP, "POST", True),
    (SHOP, "GET", True),
    ("https://evil.example", "POST", False),
]


@pytest.mark.parametrize(("origin", "method", "answered"), PREFLIGHTS)
def test_cors_preflight(cors_client: TestClient, origin: str, method: str,
                        answered: bool) -> None:
    r = cors_client.options("/v1/recommendations", headers={
        "origin": origin, "access-control-request-method": method,
        "access-control-request-headers": "content-type"})
    if answered:
        assert r.status_code == 204 and r.content == b""
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST"
        assert r.headers["access-control-allow-headers"] == "content-type, x-request-id"
        assert r.headers["access-control-max-age"] == str(MAX_AGE)
        assert r.headers["x-request-id"]
    else:
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-methods" not in r.headers


def test_cors_any_origin_when_asked_for_explicitly(model_dir: Path, fast_path: bool) -> None:
    with client_for(Settings(model=str(model_dir), fast_path=fast_path,
                             cors_origins="*")) as c:
        r = c.post("/v1/recommendations", json={"basket": ["a"]},
                   headers={"origin": "https://anyone.example"})
        assert r.headers["access-control-allow-origin"] == "*" and "vary" not in r.headers
        r = c.options("/v1/model", headers={"origin": "https://anyone.example",
                                            "access-control-request-method": "GET"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"


def test_no_cors_by_default(client: TestClient) -> None:
    r = client.post("/v1/recommendations", json={"basket": ["a"]}, headers={"origin": SHOP})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.startswith("access-control-") or h == "vary"]
    r = client.options("/v1/recommendations", headers={
        "origin": SHOP, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in r.headers


HEAD_LINES = [
    # (setting, the request's origin, the lines the protocol adds to its head)
    (SHOP, SHOP.encode(), b"vary: origin\r\naccess-control-allow-origin: https://shop.example"
     b"\r\naccess-control-expose-headers: x-request-id\r\n"),
    (SHOP, b"https://evil.example", b"vary: origin\r\n"),
    (SHOP, None, b"vary: origin\r\n"),
    ("*", b"https://anyone.example", b"access-control-allow-origin: *\r\n"
     b"access-control-expose-headers: x-request-id\r\n"),
    ("*", None, b""),
]


@pytest.mark.parametrize(("setting", "origin", "lines"), HEAD_LINES)
def test_the_protocols_cors_lines(setting: str, origin: bytes | None, lines: bytes) -> None:
    cors = cors_of(setting)
    assert cors is not None and cors_of("") is None
    headers = [(b"host", b"x")] + ([(b"origin", origin)] if origin else [])
    for _ in range(2):  # the second time from the per-origin cache
        assert cors.head_lines(headers) == lines
    for n in range(MAX_KEPT + 5):  # many origins: the cache starts again, answers are right
        assert cors.head_lines([(b"origin", b"https://o%d.example" % n)]).startswith(
            b"vary" if setting != "*" else b"access-control-allow-origin: *")
    assert cors.head_lines(headers) == lines


@pytest.mark.parametrize("value", ["shop.example", "https://shop.example/cart",
                                   "ftp://shop.example", "https://shop example"])
def test_cors_origins_that_are_not_origins_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"BASKETRY_CORS_ORIGINS: .* is not an origin"):
        Settings.from_env({"BASKETRY_CORS_ORIGINS": value})


# ---- malformed bodies, every invalid field, problem documents -------------------------------

MALFORMED = [
    ("/v1/recommendations", b'{"basket": [85123A}'),
    ("/v1/recommendations", b'{"basket": [1,}'),
    ("/v1/recommendations", b'{"basket": ["a"], "k": 5'),
    ("/v1/recommendations", b'{"k": tru}'),
    ("/v1/recommendations/batch", b'{"requests": [{"basket": [x]}]}'),
    ("/v1/orders", b'{"orders": [{"order_id": 12'),
]


@pytest.mark.parametrize(("path", "raw"), MALFORMED)
def test_malformed_json_is_400_invalid_body_whatever_its_first_value(
        client: TestClient, path: str, raw: bytes) -> None:
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_body" and "not valid JSON" in body["message"], body
    assert r.headers["content-type"] == PROBLEM


INVALID = [
    # (path, body, [(field, message fragment)], first in order)
    ("/v1/recommendations", {"basket": [1]}, [("basket[0]", "got `int`")]),
    ("/v1/recommendations", {"basket": ["a", 2, None], "k": "3", "colour": "red"},
     [("basket[1]", "got `int`"), ("colour", "unknown field"), ("basket[2]", "got `null`"),
      ("k", "got `str`")]),
    ("/v1/recommendations", {"k": 0, "exclude": [""]},
     [("k", ">= 1"), ("basket", "missing required field"), ("exclude[0]", "length >= 1")]),
    ("/v1/recommendations", {"basket": [f"i{n}" for n in range(100)] + [7]},
     [("basket[100]", "got `int`"), ("basket", "length <= 100")]),
    ("/v1/recommendations/batch",
     {"requests": [{"basket": ["a"], "k": 2.0}, {"basket": ["a"], "k": "2"}, {"basket": [3]}]},
     [("requests[1].k", "got `str`"), ("requests[2].basket[0]", "got `int`")]),
    ("/v1/recommendations", [], [(None, "Expected `object`, got `array`")]),
]


@pytest.mark.parametrize(("path", "body", "expected"), INVALID)
def test_every_invalid_field_is_reported_at_once(client: TestClient, path: str, body: object,
                                                 expected: list[tuple[str | None, str]]
                                                 ) -> None:
    r = client.post(path, json=body, headers={"x-request-id": "shop-1"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    answer = r.json()
    found = [(e["field"], e["message"]) for e in answer["errors"]]
    assert [f for f, _ in found] == [f for f, _ in expected], found
    for (_, message), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in message, (message, fragment)
    # the fields clients read before the list: the first invalid field, as before
    assert (answer["field"], answer["message"]) == found[0]
    assert answer["error"] == "invalid_request" and answer["request_id"] == "shop-1"
    assert answer["type"] == "urn:basketry:problem:invalid_request"
    assert answer["title"] == "Invalid request" and answer["status"] == 422
    assert answer["detail"] == answer["message"]
    assert answer["instance"] == "urn:basketry:request:shop-1"


def test_the_list_of_invalid_fields_is_bounded(client: TestClient) -> None:
    bad = {"requests": [{"basket": list(range(50))} for _ in range(10)]}  # 500 bad items
    r = client.post("/v1/recommendations/batch", json=bad)
    errors = r.json()["errors"]
    assert r.status_code == 422 and len(errors) == MAX_ERRORS
    assert errors[0]["field"] == "requests[0].basket[0]"
    assert errors[-1]["field"] == "requests[1].basket[49]"


ONE_ERROR = [
    # (method, path, body, status, error)
    ("POST", "/v1/recommendations", {"basket": ["a", "a"]}, 422, "duplicate_item"),
    ("GET", "/v2/nothing", None, 404, "http_error"),
    ("GET", "/v1/recommendations", None, 405, "http_error"),
    ("POST", "/v1/admin/reload", None, 401, "unauthorized"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), ONE_ERROR)
def test_every_error_is_a_problem_document(client: TestClient, method: str, path: str,
                                           body: object, status: int, error: str) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    answer = r.json()
    assert answer["status"] == status and answer["error"] == error
    assert answer["type"] == f"urn:basketry:problem:{error}" and answer["title"]
    assert answer["detail"] == answer["message"] and answer["request_id"]
    field = answer["field"]
    assert answer["errors"] == ([] if field is None else
                                [{"field": field, "message": answer["message"]}])


ERROR_BODIES = [
    b'{"basket": [85123A}',
    b'{"basket": ["a", 2], "k": "3", "colour": 1}',
    b'{"basket": ["a", "a"]}',
    b'{"basket": ["a"]} trailing',
    b"\xff",
]


@pytest.mark.parametrize("raw", ERROR_BODIES)
def test_both_paths_refuse_a_body_with_the_same_bytes(model_dir: Path, raw: bytes) -> None:
    answers = []
    for fast in (True, False):
        with client_for(Settings(model=str(model_dir), fast_path=fast)) as c:
            r = c.post("/v1/recommendations", content=raw,
                       headers={"content-type": "application/json", "x-request-id": "r-1"})
            answers.append((r.status_code, r.headers["content-type"], r.content))
    assert answers[0] == answers[1]
    assert answers[0][0] in (400, 422) and answers[0][1] == PROBLEM


def test_the_openapi_document_describes_problem_documents(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert {"type", "title", "status", "detail", "instance", "error", "message", "field",
            "request_id", "errors"} <= set(error["required"])
    refused = spec["paths"]["/v1/recommendations"]["post"]["responses"]["422"]["content"]
    assert list(refused) == [PROBLEM]
    assert list(spec["paths"]["/v1/model"]["get"]["responses"]["200"]["content"]) == [
        "application/json"]
    for item in spec["paths"].values():
        for operation in item.values():
            for answer in operation.get("responses", {}).values():
                for media, content in answer.get("content", {}).items():
                    if content.get("schema", {}).get("$ref", "").endswith("/ErrorResponse"):
                        assert media == PROBLEM


# ---- unknown query parameters --------------------------------------------------------------

QUERIES = [
    # (method, path, params, status, field)
    ("POST", "/v1/recommendations", {"k": "3"}, 422, "k"),
    ("POST", "/v1/recommendations/batch", {"debug": "1"}, 422, "debug"),
    ("GET", "/v1/items/a/associations", {"limit": "3"}, 422, "limit"),
    ("GET", "/v1/items/a/associations", {"K": "3"}, 422, "K"),
    ("GET", "/v1/items/a/associations", {"k": "3"}, 200, None),
    ("GET", "/v1/model", {"verbose": "1"}, 422, "verbose"),
    ("POST", "/v1/orders", {"dry_run": "1"}, 422, "dry_run"),
    ("GET", "/v1/layout", {"isle": "1"}, 422, "isle"),  # what a handler takes: its signature
    ("GET", "/v1/layout/items/a", {"aisle": "1"}, 422, "aisle"),
    ("GET", "/v1/monitoring/performance", {"windw": "day"}, 422, "windw"),
    # operations endpoints are for probes and scrapers, which may add their own parameters
    ("GET", "/healthz", {"probe": "1"}, 200, None),
    ("GET", "/metrics", {"name[]": "x"}, 200, None),
]


@pytest.mark.parametrize(("method", "path", "params", "status", "field"), QUERIES)
def test_unknown_query_parameters_are_refused_like_unknown_body_fields(
        client: TestClient, method: str, path: str, params: dict[str, str], status: int,
        field: str | None) -> None:
    body = {"orders": [{"order_id": "o-1", "time": "2026-05-01T12:00:00Z", "items": ["a"]}]} \
        if path == "/v1/orders" else BODIES.get(path)
    r = client.request(method, path, params=params, json=body)
    assert r.status_code == status, r.text
    if field is not None:
        answer = r.json()
        assert answer["field"] == field and field in answer["message"], answer
        assert answer["error"] in ("invalid_request", "invalid_parameter")


def test_every_unknown_query_parameter_is_named(client: TestClient) -> None:
    r = client.get("/v1/items/a/associations", params={"k": "2", "limit": "3", "sort": "x"})
    answer = r.json()
    assert r.status_code == 422
    assert [e["field"] for e in answer["errors"]] == ["limit", "sort"]
    assert "known: k" in answer["message"]


# ---- the real server: the protocol's own answers -------------------------------------------

def test_the_real_server_answers_as_the_application_does(tmp_path: Path) -> None:
    """CORS headers, problem documents, malformed bodies and query parameters on the answers the
    HTTP protocol writes itself, byte for byte those of the application."""
    model = tmp_path / "model"
    write_version(model, "v1")
    settings = {"cors_origins": SHOP}
    cases = [  # (path, body, extra head lines)
        ("/v1/recommendations", b'{"basket": ["a"], "k": 2}', [f"Origin: {SHOP}"]),
        ("/v1/recommendations", b'{"basket": ["a"], "k": 2}', ["Origin: https://evil.example"]),
        ("/v1/recommendations", b'{"basket": [85123A}', [f"Origin: {SHOP}"]),
        ("/v1/recommendations/batch", b'{"requests": [{"basket": [1, "a", 2]}]}', []),
        ("/v1/recommendations?k=2", b'{"basket": ["a"]}', [f"Origin: {SHOP}"]),
    ]
    expected = []
    with client_for(Settings(model=str(model), **settings)) as app_client:  # type: ignore[arg-type]
        for path, body, extra in cases:
            headers = dict(line.split(": ", 1) for line in extra)
            r = app_client.post(path, content=body, headers={
                "content-type": "application/json", "x-request-id": "r-7", **headers})
            expected.append((r.status_code, r.headers, r.content))
    for running in start(tmp_path, model, **settings):
        for (path, body, extra), (status, headers, content) in zip(cases, expected,
                                                                    strict=True):
            raw = _exchange(running.url, _post(path, body, "x-request-id: r-7", *extra))
            line, got_headers, got = _responses(raw)[0]
            assert line.split(" ")[1] == str(status) and got == content, (path, raw)
            for name in ("content-type", "vary", "access-control-allow-origin",
                         "access-control-expose-headers"):
                assert got_headers.get(name) == headers.get(name), (path, name, got_headers)
        # a browser's preflight, and a cross-origin call, as httpx sends them
        with running.client() as c:
            r = c.options("/v1/recommendations/batch", headers={
                "origin": SHOP, "access-control-request-method": "POST",
                "access-control-request-headers": "content-type"})
            assert r.status_code == 204 and r.headers["access-control-allow-origin"] == SHOP
            r = c.post("/v1/recommendations", json={"basket": ["a"]}, headers={"origin": SHOP})
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
            r = c.get("/v1/items/a/associations?limit=3", headers={"origin": SHOP})
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
            assert r.headers["access-control-allow-origin"] == SHOP


# ---- the log format ------------------------------------------------------------------------

_LOG_ONE_LINE = ("from basketry.serving.logs import configure_logging; import logging; "
                 "configure_logging({fmt!r}); logging.getLogger('basketry.serving').info("
                 "'ready', extra={{'model_version': 'v1'}})")


def _log_line(fmt: str, *, terminal: bool) -> str:
    """The line a process logs with ``fmt``, its stderr a terminal (a pty) or a pipe."""
    code = _LOG_ONE_LINE.format(fmt=fmt)
    if not terminal:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                              check=True)
        return done.stderr.decode().strip()
    leader, follower = os.openpty()
    try:
        subprocess.run([sys.executable, "-c", code], stderr=follower, timeout=60, check=True)
        os.close(follower)
        follower = -1
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty is closed once the child is gone
                break
            if not chunk:
                break
            out += chunk
        return out.decode().strip()
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


LOG_FORMATS = [
    # (format, stderr a terminal, JSON expected)
    ("auto", True, False),
    ("auto", False, True),
    ("json", True, True),
    ("text", False, False),
]


@pytest.mark.parametrize(("fmt", "terminal", "as_json"), LOG_FORMATS)
def test_logs_are_json_unless_a_person_reads_them(fmt: str, terminal: bool,
                                                  as_json: bool) -> None:
    line = _log_line(fmt, terminal=terminal)
    if as_json:
        record = json.loads(line)
        assert record["message"] == "ready" and record["model_version"] == "v1"
    else:
        assert "INFO" in line and "basketry.serving: ready model_version=v1" in line, line
        assert not line.startswith("{")


def test_the_log_format_is_auto_by_default_and_checked() -> None:
    assert Settings().log_format == "auto"
    assert Settings.from_env({"BASKETRY_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(SettingsError, match="'json', 'text' or 'auto'"):
        Settings.from_env({"BASKETRY_LOG_FORMAT": "pretty"})
    assert resolve_format("json") == "json" and resolve_format("text") == "text"


def test_a_server_started_from_a_pipe_logs_json(tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_version(model, "v1")
    for running in start(tmp_path, model):  # its stderr is a file
        with running.client() as c:
            assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200
        assert httpx.get(f"{running.url}/healthz").status_code == 200
    lines = [json.loads(x) for x in running.log_lines() if x.startswith("{")]
    assert any(x["message"] == "request" for x in lines)
    assert all(x.startswith("{") for x in running.log_lines() if x.strip())
