"""The API from the shop's side: answers, business rules, limits and errors.

Every test runs twice: through the fast path and through the framework routes (``fast_path``
off), which must answer identically.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from basketry.serving import Settings
from basketry.serving.docs_ui import swagger_ui_version
from tests.serving.conftest import ADMIN, client_for, write_version


def recommend(client: TestClient, body: object, **kw: object) -> tuple[int, dict]:
    r = client.post("/v1/recommendations", json=body, **kw)  # type: ignore[arg-type]
    return r.status_code, r.json()


def names(answer: dict) -> list[str]:
    return [x["item"] for x in answer["items"]]


def test_rules_first_then_popular_fallback(client: TestClient) -> None:
    r = client.post("/v1/recommendations", json={"basket": ["a"], "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert r.headers["x-request-id"] == body["request_id"]
    assert names(body) == ["c", "b", "e", "d", "f"]
    first = body["items"][0]
    assert first["label"] == "v1:c" and first["fallback"] is False
    assert first["rule"]["antecedent"] == ["a"]
    assert first["rule"]["confidence"] == pytest.approx(0.6)
    assert first["rule"]["lift"] == pytest.approx(2.0)
    assert first["rule"]["support"] == pytest.approx(0.3)
    assert [x["fallback"] for x in body["items"]] == [False, False, True, True, True]
    assert body["items"][2]["rule"] is None
    assert body["unknown"] == []
    assert body["model_version"] == client.get("/v1/model").json()["model_version"]


def test_never_recommends_basket_or_excluded_items(client: TestClient) -> None:
    status, body = recommend(client, {"basket": ["a", "b"], "k": 5, "exclude": ["d", "zz"]})
    assert status == 200
    assert names(body) == ["c", "e", "f", "g"]  # the catalogue holds no more items
    assert not {"a", "b", "d"} & set(names(body))


def test_empty_and_unknown_baskets_get_popular_items(client: TestClient) -> None:
    status, body = recommend(client, {"basket": []})
    assert status == 200 and names(body) == ["e", "a", "b", "c", "d"]
    assert all(x["fallback"] for x in body["items"])
    status, body = recommend(client, {"basket": ["nope", "zilch"], "k": 2})
    assert names(body) == ["e", "a"] and body["unknown"] == ["nope", "zilch"]


def test_k_defaults_and_limits(client: TestClient) -> None:
    assert len(recommend(client, {"basket": ["a"]})[1]["items"]) == 5
    assert len(recommend(client, {"basket": ["a"], "k": 1})[1]["items"]) == 1


def test_request_id_is_taken_from_the_client_when_safe(client: TestClient) -> None:
    r = client.post("/v1/recommendations", json={"basket": ["a"]},
                    headers={"x-request-id": "shop-123"})
    assert r.headers["x-request-id"] == "shop-123" and r.json()["request_id"] == "shop-123"
    r = client.post("/v1/recommendations", json={"basket": ["a"]},
                    headers={"x-request-id": "bad id with spaces"})
    assert r.json()["request_id"] != "bad id with spaces"


def test_batch_answers_like_single_requests(client: TestClient) -> None:
    requests = [{"basket": ["a"]}, {"basket": ["a", "b"], "k": 2, "exclude": ["d"]},
                {"basket": []}]
    r = client.post("/v1/recommendations/batch", json={"requests": requests})
    assert r.status_code == 200
    body = r.json()
    assert len(body["results"]) == 3
    for req, result in zip(requests, body["results"], strict=True):
        single = recommend(client, req)[1]
        assert result["items"] == single["items"]
        assert result["model_version"] == body["model_version"]
        assert result["request_id"] == body["request_id"]


def test_associations_for_the_product_page(client: TestClient) -> None:
    r = client.get("/v1/items/a/associations", params={"k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["item"] == "a" and body["label"] == "v1:a" and body["known"] is True
    assert names(body) == ["c", "b", "e"]
    r = client.get("/v1/items/unknown-item/associations")
    body = r.json()
    assert r.status_code == 200 and body["known"] is False and len(body["items"]) == 5
    assert all(x["fallback"] for x in body["items"])
    assert client.get("/v1/items/a/associations", params={"k": 0}).status_code == 422
    r = client.get("/v1/items/a/associations", params={"k": "many"})
    assert r.status_code == 422 and r.json()["field"] == "k"


def test_model_endpoint(client: TestClient, model_dir: Path) -> None:
    body = client.get("/v1/model").json()
    assert body["counts"] == {"n_baskets": 100, "n_items": 7, "n_rules": 6}
    assert body["parameters"]["tag"] == "v1"
    assert body["dataset_fingerprint"] == "fp-v1"
    assert body["metrics"] == {"hit_rate@10": 0.5}
    assert body["reference"] == str(model_dir)
    assert body["created_at"] and body["loaded_at"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    assert r.json()["last_reload"]["ok"] is True
    # HEAD too, for load balancers that check with it
    for path in ("/healthz", "/readyz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path


BAD_REQUESTS = [
    # (body, status, field)
    ({"basket": [1]}, 422, "basket[0]"),
    ({"basket": "a"}, 422, "basket"),
    ({"basket": [""]}, 422, "basket[0]"),
    ({"basket": ["a", " \t"]}, 422, "basket[1]"),
    ({"basket": ["a"], "exclude": [" "]}, 422, "exclude[0]"),
    ({"basket": ["a", "b", "a"]}, 422, "basket[2]"),
    ({"basket": ["a"], "exclude": ["c", "c"]}, 422, "exclude[1]"),
    ({"basket": ["a"], "exclude": [None]}, 422, "exclude[0]"),
    ({"basket": ["a"], "k": 0}, 422, "k"),
    ({"basket": ["a"], "k": 51}, 422, "k"),
    ({"basket": ["a"], "k": 2.5}, 422, "k"),
    ({"basket": ["a"], "colour": "red"}, 422, "colour"),
    ({"basket": [f"i{n}" for n in range(101)]}, 422, "basket"),
    ({"basket": ["x" * 129]}, 422, "basket[0]"),
    ({}, 422, "basket"),
    ([], 422, None),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
def test_bad_requests_are_4xx_naming_the_field(client: TestClient, body: object, status: int,
                                                field: str | None) -> None:
    got, answer = recommend(client, body)
    assert got == status, answer
    assert answer["field"] == field, answer
    assert answer["error"] in ("invalid_request", "duplicate_item")
    assert answer["message"] and answer["request_id"]


def test_types_are_strict_but_integral_numbers_are_integers(client: TestClient) -> None:
    # JSON Schema's integers include 2.0 and 2e0; a string is never a number
    for raw in (b'{"basket": ["a"], "k": 2}', b'{"basket": ["a"], "k": 2.0}',
                b'{"basket": ["a"], "k": 2e0}', b'{"k": 2.0, "basket": ["a"], "exclude": []}'):
        r = client.post("/v1/recommendations", content=raw,
                        headers={"content-type": "application/json"})
        assert r.status_code == 200 and len(r.json()["items"]) == 2, (raw, r.text)
    for bad in ("2", "2.0", "two", "", True, 2.5, [2], {"k": 2}, None):
        status, answer = recommend(client, {"basket": ["a"], "k": bad})
        assert status == 422 and answer["field"] == "k", (bad, answer)
        assert answer["error"] == "invalid_request"
    status, answer = recommend(client, {"basket": ["a"], "k": 51.0})
    assert status == 422 and answer["field"] == "k" and "<= 50" in answer["message"]
    # the same in a batch, where an integral float elsewhere must not let a string through
    r = client.post("/v1/recommendations/batch",
                    json={"requests": [{"basket": ["a"], "k": 2.0}, {"basket": ["a"], "k": "2"}]})
    assert r.status_code == 422 and r.json()["field"] == "requests[1].k", r.text
    r = client.post("/v1/recommendations/batch",
                    json={"requests": [{"basket": ["a"], "k": 2.0}, {"basket": ["b"], "k": 3}]})
    assert r.status_code == 200 and [len(x["items"]) for x in r.json()["results"]] == [2, 3]


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b'{"basket": ["\xff"]}', b"{", b"",
                                 b"null", b'{"basket": ["a"]} trailing'])
def test_undecodable_bodies_are_400_or_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/recommendations", content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"] in ("invalid_body", "invalid_request")


def test_undecodable_bodies_are_placed_in_the_body(client: TestClient,
                                                   fast_path: bool) -> None:
    r = client.post("/v1/recommendations", content=b'{"basket": ["a"],\n "exclude": ["\xc3"]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_body"
    if fast_path:  # where basketry reads the body itself, it says where the bad byte is
        assert "byte 0xc3" in r.json()["message"] and "at byte 32, line 2" in r.json()["message"]
        r = client.post("/v1/recommendations", content=b'{"basket": ["\\ud800"]}',
                        headers={"content-type": "application/json"})
        assert r.status_code == 400 and "surrogate" in r.json()["message"], r.text


def test_blank_items_are_refused_in_words(client: TestClient) -> None:
    status, answer = recommend(client, {"basket": ["a", "  "]})
    assert status == 422 and answer["field"] == "basket[1]"
    assert "not blank" in answer["message"] and "regex" not in answer["message"]


def test_oversize_body_is_413(model_dir: Path, fast_path: bool) -> None:
    settings = Settings(model=str(model_dir), max_body_bytes=1000, fast_path=fast_path)
    with client_for(settings) as c:
        r = c.post("/v1/recommendations", json={"basket": [f"item-{n}" for n in range(100)]})
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_batch_limits_and_fields(client: TestClient) -> None:
    r = client.post("/v1/recommendations/batch",
                    json={"requests": [{"basket": ["a"]}, {"basket": ["a", "a"]}]})
    assert r.status_code == 422 and r.json()["field"] == "requests[1].basket[1]"
    r = client.post("/v1/recommendations/batch", json={"requests": [{"basket": [3]}]})
    assert r.status_code == 422 and r.json()["field"] == "requests[0].basket[0]"
    r = client.post("/v1/recommendations/batch", json={"requests": []})
    assert r.status_code == 422 and r.json()["field"] == "requests"
    r = client.post("/v1/recommendations/batch",
                    json={"requests": [{"basket": ["a"]}] * 101})
    assert r.status_code == 422 and r.json()["field"] == "requests"


def test_unknown_paths_and_methods_are_json_errors(client: TestClient) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"] == "http_error"
    r = client.get("/v1/recommendations")
    assert r.status_code == 405 and r.json()["error"] == "http_error"
    assert "POST" in r.headers["allow"]


def test_catalogue_items_are_never_recommended(model_dir: Path, tmp_path: Path,
                                               fast_path: bool) -> None:
    catalogue = tmp_path / "unavailable.txt"
    catalogue.write_text("# out of stock\ne\nc  # recalled\nnot-in-model\n")
    settings = Settings(model=str(model_dir), catalogue=str(catalogue), fast_path=fast_path)
    with client_for(settings) as c:
        status, body = recommend(c, {"basket": ["a"], "k": 5})
        assert status == 200 and names(body) == ["b", "d", "f", "g"]
        assert names(recommend(c, {"basket": []})[1]) == ["a", "b", "d", "f", "g"]
        assoc = c.get("/v1/items/a/associations").json()
        assert not {"c", "e"} & set(names(assoc))
        assert c.get("/v1/model").json()["unavailable_items"] == 3


def test_without_a_model_the_service_is_alive_but_not_ready(fast_path: bool) -> None:
    with client_for(Settings(model=None, fast_path=fast_path)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        assert c.head("/healthz").status_code == 200 and c.head("/readyz").status_code == 503
        r = c.post("/v1/recommendations", json={"basket": ["a"]})
        assert r.status_code == 503 and r.json()["error"] == "no_model"


def test_a_model_that_fails_to_load_at_start_is_reported(tmp_path: Path) -> None:
    with client_for(Settings(model=str(tmp_path / "missing"))) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "no model directory" in r.json()["last_reload"]["error"]


def test_metrics(client: TestClient) -> None:
    recommend(client, {"basket": ["a", "nope"]})
    recommend(client, {"basket": [1]})
    r = client.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = r.text
    assert 'basketry_http_requests_total{endpoint="/v1/recommendations",method="POST",' \
           'status="200"} 1.0' in text
    assert 'status="422"} 1.0' in text
    assert "basketry_http_request_duration_seconds_bucket" in text
    assert 'basketry_recommended_items_total{source="rule"} 2.0' in text
    assert 'basketry_recommended_items_total{source="fallback"} 3.0' in text
    assert 'basketry_basket_items_total{known="false"} 1.0' in text
    version = client.get("/v1/model").json()["model_version"]
    assert f'basketry_model_info{{model_version="{version}"}} 1.0' in text
    assert "basketry_model_last_reload_failed 0.0" in text


def test_admin_reload_needs_the_token(client: TestClient) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    r = client.post("/v1/admin/reload", headers={"authorization": "Bearer wrong-token"})
    assert r.status_code == 401
    r = client.post("/v1/admin/reload", headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and r.json()["status"] == "unchanged"


def test_admin_is_off_without_a_token(model_dir: Path) -> None:
    with client_for(Settings(model=str(model_dir))) as c:
        r = c.post("/v1/admin/reload", headers={"authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 403


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/recommendations", "/v1/recommendations/batch",
            "/v1/items/{item}/associations", "/v1/model", "/healthz", "/readyz", "/metrics",
            "/v1/admin/reload"} <= set(spec["paths"])
    basket = spec["components"]["schemas"]["RecommendationRequest"]["properties"]["basket"]
    assert basket["maxItems"] == 100 and basket["uniqueItems"] is True
    assert basket["items"]["minLength"] == 1
    page = client.get("/docs")
    assert page.status_code == 200
    # the interactive docs work on a closed network: every asset comes from the service
    assert "http" not in page.text.split("<body>")[0], page.text
    for name, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                       ("swagger-ui-standalone-preset.js", "text/javascript"),
                       ("favicon-32x32.png", "image/png")):
        assert f"/docs/assets/{name}" in page.text
        r = client.get(f"/docs/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
        assert len(r.content) > 500
    assert client.get("/docs/assets/index.html").status_code == 404
    assert swagger_ui_version() >= (5,)  # Swagger UI 4 cannot render OpenAPI 3.1
    assert client.get("/docs/assets/..%2Fswagger-ui.js").status_code == 404


def test_server_processes_freeze_what_is_loaded_and_let_a_replaced_model_go(
        tmp_path: Path) -> None:
    """The server's workers (``freeze_gc``) keep the loaded libraries and model out of the
    collector's walks, and a reload frees the model it replaces (nothing leaks)."""
    import gc
    import weakref

    from basketry.serving import create_app

    model = tmp_path / "model"
    write_version(model, "v1")
    try:
        app = create_app(Settings(model=str(model), admin_token=ADMIN), freeze_gc=True)
        with TestClient(app=app) as c:
            assert gc.get_freeze_count() > 0
            old = app.holder.current.model
            old.cycle = [old]  # only the cyclic collector can free it now
            first = weakref.ref(old)
            del old
            write_version(model, "v2")
            r = c.post("/v1/admin/reload", headers={"authorization": f"Bearer {ADMIN}"})
            assert r.json()["status"] == "reloaded"
            assert first() is None  # the replaced model was collected, not frozen forever
            assert gc.get_freeze_count() > 0
            assert c.post("/v1/recommendations", json={"basket": ["e"]}).json()["items"][0][
                "label"].startswith("v2:")
    finally:
        gc.unfreeze()
