"""The OpenAPI document: its description, the error answers of each route, and what Litestar
leaves out of it."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from basketry.serving import schemas as S
from basketry.serving.docs_ui import swagger_plugin
from basketry.serving.errors import PROBLEM_JSON
from basketry.serving.settings import Settings

ERRORS = {
    400: ResponseSpec(S.ErrorResponse, description="The body is not valid JSON or not UTF-8."),
    404: ResponseSpec(S.ErrorResponse, description="No such endpoint."),
    413: ResponseSpec(S.ErrorResponse, description="The body is larger than the limit."),
    422: ResponseSpec(S.ErrorResponse, description="A field has a wrong type or value, breaks a "
                      "limit, or repeats an item; `field` names it."),
    503: ResponseSpec(S.ErrorResponse, description="No model is loaded yet."),
}


def responses(*codes: int) -> dict[int, ResponseSpec]:
    """The documented error answers ``codes`` of a route."""
    return {code: ERRORS[code] for code in codes}


def openapi_config(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="basketry recommendations",
        version="1",
        description=(
            "Frequently-bought-together recommendations from association rules. "
            "Errors are `ErrorResponse` documents (RFC 9457 `application/problem+json`) whose "
            "`field` names the request field at fault and `errors` lists every invalid field "
            "found. Unknown body fields and unknown query parameters are refused (422). "
            f"Limits: basket <= {settings.max_basket} items, k <= {settings.max_k}, "
            f"exclude <= {settings.max_exclude} items, batch <= {settings.max_batch} requests, "
            f"item <= {settings.max_item_length} characters, body <= {settings.max_body_bytes} "
            "bytes."),
        path="/docs",
        render_plugins=[swagger_plugin()],
        components=Components(security_schemes={
            "AdminToken": SecurityScheme(type="http", scheme="bearer",
                                         description="BASKETRY_ADMIN_TOKEN")}),
    )


def finish_openapi(app: Litestar) -> None:
    """Say what Litestar leaves out: request documents accept no unknown fields, and errors
    are ``application/problem+json`` (RFC 9457)."""
    _errors_as_problems(app)
    schemas = app.openapi_schema.components.schemas or {}
    for name in ("RecommendationRequest", "BatchRequest", "ReloadRequest", "OrdersRequest"):
        if name in schemas:
            schemas[name].additional_properties = False
    orders = schemas.get("OrdersRequest")
    if orders is not None and orders.properties:
        # an order is decoded as an object and checked by the monitoring side (which names
        # the field at fault); its fields are documented here
        orders.properties["orders"].items = S.ORDER_SCHEMA  # type: ignore[assignment,union-attr]


def _errors_as_problems(app: Litestar) -> None:
    """Every answer documented as an ``ErrorResponse`` under the media type it is sent with."""
    for item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(item, method, None)
            for answer in (operation.responses or {}).values() if operation else ():
                content = getattr(answer, "content", None) or {}
                media = content.get("application/json")
                ref = getattr(getattr(media, "schema", None), "ref", "")
                if media is not None and ref.endswith("/ErrorResponse"):
                    answer.content = {PROBLEM_JSON: media}  # type: ignore[union-attr]
