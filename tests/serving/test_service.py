"""The serving parts on their own, without the web framework: the recommendation service (the
checks, the business rules, the counting), the answer encoder, the request decoders, and what
the HTTP protocol asks of an application (contracts.FastApp)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from basketry.serving import schemas as S
from basketry.serving.contracts import FastApp, fast_app
from basketry.serving.decoding import Decoders, decode_body
from basketry.serving.encoding import AnswerEncoder, error_document, problem, recommended_items
from basketry.serving.errors import ApiError
from basketry.serving.fast_routes import BATCH, RECOMMENDATIONS, fast_routes
from basketry.serving.metrics import Metrics
from basketry.serving.service import RecommendationService
from basketry.serving.state import ModelHolder
from tests.serving.conftest import write_version

ODD = 'q"\\ü→'  # quotes, a backslash and non-ASCII in every label


def _schemas() -> S.RequestSchemas:
    return S.build_schemas(max_basket=10, max_k=20, default_k=5, max_exclude=10, max_batch=5,
                           max_item_length=32)


@pytest.fixture
def service(tmp_path: Path) -> RecommendationService:
    write_version(tmp_path / "model", ODD)
    holder = ModelHolder(str(tmp_path / "model"), None)
    assert holder.load_initial().ok
    return RecommendationService(holder, Metrics())


def _request(**fields: object) -> object:
    return Decoders.of(_schemas()).one(json.dumps(fields).encode())


def test_without_a_model_the_service_answers_503() -> None:
    service = RecommendationService(ModelHolder(None, None), Metrics())
    with pytest.raises(ApiError) as caught:
        service.snapshot()
    assert (caught.value.status, caught.value.error) == (503, "no_model")


def test_recommend_applies_the_rules_and_counts(service: RecommendationService) -> None:
    snap = service.snapshot()
    ranked = service.recommend(snap, _request(basket=["a", "new"], k=4, exclude=["c"]))
    names = [snap.model.items[i] for i in ranked.items]
    assert len(names) == 4 and not {"a", "c"} & set(names)  # never the basket or exclude
    assert names[0] == "b"  # a -> b, confidence 0.6 (a -> c is excluded)
    assert ranked.unknown == ["new"]
    assert service.metrics._baskets[:3] == [1, 1, 1]  # one basket, one known, one unknown


@pytest.mark.parametrize(("fields", "error", "field"), [
    ({"basket": ["a", " "]}, "invalid_request", "basket[1]"),
    ({"basket": ["a", "b", "a"]}, "duplicate_item", "basket[2]"),
    ({"basket": ["a"], "exclude": ["d", "d"]}, "duplicate_item", "exclude[1]"),
])
def test_recommend_refuses_blank_and_repeated_items(service: RecommendationService,
                                                    fields: dict, error: str,
                                                    field: str) -> None:
    with pytest.raises(ApiError) as caught:
        service.recommend(service.snapshot(), _request(**fields))
    assert (caught.value.status, caught.value.error, caught.value.field) == (422, error, field)


def test_a_batch_error_names_its_request(service: RecommendationService) -> None:
    snap = service.snapshot()
    requests = [_request(basket=["a"]), _request(basket=["b", "b"])]
    with pytest.raises(ApiError) as caught:
        service.each(snap, requests, service.recommend)
    assert caught.value.field == "requests[1].basket[1]"


def test_associations_say_whether_the_item_is_known(service: RecommendationService) -> None:
    snap = service.snapshot()
    ranked, known = service.associations(snap, "a", 3)
    assert known and len(ranked.items) == 3
    ranked, known = service.associations(snap, "nope", 3)
    assert not known and ranked.from_rules == 0 and len(ranked.items) == 3


@pytest.mark.parametrize("fields", [
    {"basket": ["a"], "k": 5},
    {"basket": ["a", "b", 'new "item" é'], "k": 3, "exclude": ["d"]},
    {"basket": [], "k": 7},
])
def test_the_encoder_writes_the_documents_msgspec_writes(service: RecommendationService,
                                                         fields: dict) -> None:
    encoder = AnswerEncoder()
    snap = service.snapshot()
    ranked = service.recommend(snap, _request(**fields))
    expected = msgspec.json.encode(S.RecommendationResponse(
        request_id="r-1", model_version=snap.version,
        items=recommended_items(snap.model, ranked), unknown=ranked.unknown))
    for _ in range(2):  # the second time from the snapshot's cache of pieces
        assert encoder.recommendation(snap, ranked, b"r-1") == expected
    one = encoder.recommendation(snap, ranked, b"r-2")
    assert encoder.batch(snap, [one, one], b"r-2") == msgspec.json.encode(S.BatchResponse(
        request_id="r-2", model_version=snap.version,
        results=[msgspec.json.decode(one, type=S.RecommendationResponse)] * 2))
    exc = ApiError(422, "invalid_request", "bad", "basket[0]")
    assert encoder.error("r-3", exc) == msgspec.json.encode(
        problem("r-3", 422, "invalid_request", "bad", "basket[0]"))
    # an RFC 9457 problem document that keeps the fields clients read before it
    assert json.loads(encoder.error("r-3", exc)) == {
        "type": "urn:basketry:problem:invalid_request", "title": "Invalid request",
        "status": 422, "detail": "bad", "instance": "urn:basketry:request:r-3",
        "error": "invalid_request", "message": "bad", "field": "basket[0]", "request_id": "r-3",
        "errors": [{"field": "basket[0]", "message": "bad"}]}
    assert json.loads(error_document("r-3", 503, "no_model", "y")) == {
        "type": "urn:basketry:problem:no_model", "title": "No model", "status": 503,
        "detail": "y", "instance": "urn:basketry:request:r-3", "error": "no_model",
        "message": "y", "field": None, "request_id": "r-3", "errors": []}


@pytest.mark.parametrize(("body", "status", "error", "field"), [
    (b'{"basket": ["a"], "k": "5"}', 422, "invalid_request", "k"),
    (b'{"basket": ["a"], "k": 5.0}', None, None, None),  # an integral number is an integer
    (b'{"basket": ["a"], "x": 1}', 422, "invalid_request", "x"),
    (b'{"basket": ["a"', 400, "invalid_body", None),
    (b'{"basket": ["\xff"]}', 400, "invalid_body", None),
])
def test_bodies_are_decoded_strictly_with_the_apis_errors(body: bytes, status: int | None,
                                                          error: str | None,
                                                          field: str | None) -> None:
    decode = Decoders.of(_schemas()).one
    if status is None:
        assert decode_body(decode, body).k == 5
        return
    with pytest.raises(ApiError) as caught:
        decode_body(decode, body)
    assert (caught.value.status, caught.value.error, caught.value.field) == (status, error, field)


def test_the_fast_routes_answer_bytes_without_the_framework(
        service: RecommendationService) -> None:
    routes = fast_routes(service, AnswerEncoder(), Decoders.of(_schemas()))
    status, payload = routes[RECOMMENDATIONS](b'{"basket": ["a"], "k": 2}', "r-1")
    assert status == 200
    answer = msgspec.json.decode(payload, type=S.RecommendationResponse)
    assert answer.request_id == "r-1" and len(answer.items) == 2
    status, payload = routes[BATCH](b'{"requests": [{"basket": ["a"]}, {"basket": [1]}]}', "r")
    assert status == 422 and json.loads(payload)["field"] == "requests[1].basket[0]"
    service.holder.current = None
    assert routes[RECOMMENDATIONS](b'{"basket": ["a"]}', "r")[0] == 503
    assert routes[RECOMMENDATIONS](b'{"basket": 1}', "r")[0] == 422  # the body first


def test_the_application_declares_what_the_protocol_needs(model_dir: Path) -> None:
    from basketry.serving import Settings, create_app

    app = create_app(Settings(model=str(model_dir)))
    assert FastApp in type(app).__mro__  # declared, not guessed from attributes
    assert fast_app(app) is app
    assert set(app.fast_routes) == {RECOMMENDATIONS, BATCH}
    assert fast_app(app.app) is None  # the Litestar application inside: not basketry's

    class LooksAlike:  # the same attributes, but it does not declare FastApp
        settings = app.settings
        fast_routes = app.fast_routes
        answer_fast = request_id = new_request_id = client_left = record = None

    assert fast_app(LooksAlike()) is None
    assert create_app(Settings(model=str(model_dir), fast_path=False)).fast_routes == {}


def test_the_protocol_serves_an_application_that_is_not_basketrys() -> None:
    """No fast path, the default bounds, nothing recorded: every request goes to the
    application through uvicorn, and a stalled head is still answered 408."""
    import asyncio

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from basketry.serving.protocol import DirectHttpToolsProtocol
    from basketry.serving.settings import Settings
    from tests.serving.test_slow_clients import _Transport

    seen: list[str] = []

    async def plain(scope: dict, receive: object, send: object) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    async def main() -> tuple[DirectHttpToolsProtocol, _Transport]:
        config = Config(app=plain, http=DirectHttpToolsProtocol, log_config=None,
                        proxy_headers=False)
        config.load()
        protocol = DirectHttpToolsProtocol(config=config, server_state=ServerState(),
                                           app_state={})
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\n"
                               b"content-length: 2\r\n\r\n{}")
        await asyncio.sleep(0.05)
        return protocol, transport

    protocol, transport = asyncio.run(main())
    defaults = Settings()
    assert seen == ["/v1/recommendations"]  # answered by the application, not the protocol
    assert protocol._direct == {}
    assert (protocol._header_timeout, protocol._body_timeout, protocol._max_connections) == (
        defaults.header_timeout, defaults.body_timeout, defaults.max_connections)
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 OK")


def test_the_service_and_the_fast_path_import_neither_the_framework_nor_uvicorn() -> None:
    import subprocess
    import sys

    code = ("import sys; import basketry.serving.fast_routes, basketry.serving.middleware; "
            "from basketry.serving import Settings; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'litestar', 'uvicorn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
