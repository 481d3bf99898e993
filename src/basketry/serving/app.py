"""The HTTP application: Litestar routes over the model snapshot, with msgspec documents.

No ``from __future__ import annotations`` here: handlers are defined inside :func:`create_app`
with request types built from the settings' limits, and Litestar reads their annotations as
objects.
"""

import asyncio
import contextlib
import gc
import hmac
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, get, head, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Body, Parameter

from basketry.model import FiredRule, Model, Ranked
from basketry.serving import schemas as S
from basketry.serving.docs_ui import assets_route, check_swagger_ui, swagger_plugin
from basketry.serving.logs import AccessLog
from basketry.serving.metrics import CONTENT_TYPE, FLUSH_SECONDS, Metrics
from basketry.serving.settings import Settings
from basketry.serving.state import ModelHolder, ReloadOutcome, Snapshot

log = logging.getLogger("basketry.serving")
access_log = logging.getLogger("basketry.serving.access")

REQUEST_ID_HEADER = "x-request-id"
#: The status recorded (metrics, access log) for a request whose client closed the connection
#: before its body was in: nginx's "client closed request". No answer is sent, and it is not
#: a server error (the framework called it one: an error log line and a 500 per departure).
CLIENT_CLOSED = 499
#: Set in the scope when the client left before the application had read the request.
_CLIENT_LEFT = "basketry.client_left"
#: Set in the scope by the HTTP protocol (basketry.serving.protocol) when it stopped waiting
#: for the request's body (BASKETRY_BODY_TIMEOUT), answered 408 and closed the connection:
#: the application then sees a departure, recorded as the timeout it is.
TIMED_OUT = "basketry.timed_out"
REQUEST_TIMEOUT = 408
#: Environment variable naming a folder shared by the worker processes of one ``serve``.
RUN_DIR_ENV = "BASKETRY_RUN_DIR"


class _ClientLeft(Exception):
    """The client closed the connection before the request's body was in."""


class ApiError(Exception):
    """An error answered as an :class:`ErrorResponse` with a status code."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def _request_id(scope: Any) -> str:
    return scope.get("basketry.request_id", "")


def _error(request_id: str, status: int, error: str, message: str,
           field: str | None = None,
           headers: dict[str, str] | None = None) -> Response[S.ErrorResponse]:
    return Response(
        S.ErrorResponse(error=error, message=message, field=field, request_id=request_id),
        status_code=status, headers=headers,
    )


def split_validation_message(message: str) -> tuple[str, str | None]:
    """A msgspec validation message -> (message without location, field such as basket[2]).

    ``Expected `str`, got `int` - at `$.basket[0]``` -> ("Expected `str`, got `int`",
    "basket[0]"); a missing or unknown field is named after its parent's location.
    """
    text, field = message, None
    marker = " - at `$"
    at = message.find(marker)
    if at >= 0:
        text = message[:at]
        field = message[at + len(marker): message.rfind("`")].lstrip(".") or None
    for quote in ("missing required field `", "unknown field `"):
        start = text.find(quote)
        if start >= 0:
            name = text[start + len(quote): text.find("`", start + len(quote))]
            field = f"{field}.{name}" if field else name
            break
    return text, field


#: A \\uXXXX escape of a UTF-16 surrogate (a pair of them is one character; alone, none).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def undecodable_body(body: bytes, exc: Exception) -> str:
    """What is wrong with a body msgspec could not read, placed in the body (the error's own
    offset is within the string it was decoding, and a lone surrogate escape is reported as
    "truncated" input)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = body.count(b"\n", 0, bad.start) + 1
        return (f"the body is not valid UTF-8: {bad.reason} (byte {body[bad.start]:#04x}) at "
                f"byte {bad.start}, line {line}")
    if isinstance(exc, msgspec.DecodeError):
        escape = _SURROGATE_ESCAPE.search(body)
        if escape is not None and "truncated" in str(exc):
            return (f"the body is not valid JSON text: {escape.group().decode()} at byte "
                    f"{escape.start()} is half of a UTF-16 surrogate pair, not a character")
        return f"the body is not valid JSON: {exc}"
    return f"the body is not valid UTF-8: {exc}"


#: What a blank item is made of (schemas.NOT_BLANK is its complement).
_BLANK = " \t\n\r\f\v"


def _check_items(items: list[str], name: str) -> None:
    """No blank item, no item twice (the decoder checked types and lengths). Checked here
    rather than by a pattern in the decoder, where it cost ~6 µs a request; a blank item sorts
    first, so one ``min`` clears the usual basket."""
    if items and min(items)[0] <= " ":
        for i, item in enumerate(items):
            if not item.strip(_BLANK):
                raise ApiError(422, "invalid_request",
                               f"Expected a `str` that is not blank: {name}[{i}] is {item!r}",
                               f"{name}[{i}]")
    if len(items) > 1 and len(set(items)) != len(items):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item in seen:
                raise ApiError(422, "duplicate_item",
                               f"{name}[{i}] repeats the item {item!r}; list each item once",
                               f"{name}[{i}]")
            seen.add(item)


def strict_decoder(kind: type) -> Callable[[bytes], Any]:
    """A JSON decoder of ``kind`` with strict types: ``"k": "5"`` (a string) is refused.

    One exception, as JSON Schema defines integers: a number with a zero fractional part
    (``5.0``, ``5e0``) is an integer, so ``k`` may be written so. msgspec's strict mode refuses
    it and its lax mode also takes strings for numbers, so such a body is read again with the
    integral values of ``k`` turned into ints (the rare path), still strictly.
    """
    strict = msgspec.json.Decoder(kind).decode
    untyped = msgspec.json.Decoder().decode

    def decode(body: bytes) -> Any:
        try:
            return strict(body)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc):
                raise
        return msgspec.convert(_integral_k(untyped(body)), kind)

    return decode


def _integral_k(value: Any) -> Any:
    """``value`` with every ``"k": <integral float>`` member turned into an int."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "k" and isinstance(item, float) and item.is_integer():
                out[key] = int(item)
            else:
                out[key] = _integral_k(item)
        return out
    if isinstance(value, list):
        return [_integral_k(item) for item in value]
    return value


def _rule(rule: FiredRule) -> S.Rule:
    return S.Rule(antecedent=list(rule.antecedent), confidence=rule.confidence, lift=rule.lift,
                  support=rule.support, count=rule.count)


def _items(model: Model, ranked: Ranked) -> list[S.RecommendedItem]:
    """The answer's items as documents (the framework path; the fast path writes the same
    bytes from pre-encoded pieces)."""
    items, labels = model.items, model.labels
    return [S.RecommendedItem(item=items[i], label=labels[i], score=score, fallback=rank < 0,
                              rule=None if rank < 0 else _rule(model.explain(rank)))
            for i, rank, score in zip(ranked.items, ranked.ranks, ranked.scores, strict=True)]


#: At most this many encoded pieces are kept per model (then the cache starts again).
MAX_ENCODED = 500_000


def _endpoint_of(path: str) -> str:
    """The metrics label of a path: the route template, never the raw item (bounded labels)."""
    if path in _KNOWN_PATHS:
        return path
    if path.startswith("/v1/items/") and path.endswith("/associations"):
        return "/v1/items/{item}/associations"
    if path.startswith("/docs"):
        return "/docs"
    return "other"


_KNOWN_PATHS = frozenset({
    "/v1/recommendations", "/v1/recommendations/batch", "/v1/model", "/v1/admin/reload",
    "/healthz", "/readyz", "/metrics", "/openapi.json",
})

_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

ERRORS = {
    400: ResponseSpec(S.ErrorResponse, description="The body is not valid JSON or not UTF-8."),
    404: ResponseSpec(S.ErrorResponse, description="No such endpoint."),
    413: ResponseSpec(S.ErrorResponse, description="The body is larger than the limit."),
    422: ResponseSpec(S.ErrorResponse, description="A field has a wrong type or value, breaks a "
                      "limit, or repeats an item; `field` names it."),
    503: ResponseSpec(S.ErrorResponse, description="No model is loaded yet."),
}


def _responses(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ERRORS[code] for code in codes}


def create_app(settings: Settings | None = None, *, holder: ModelHolder | None = None,
               freeze_gc: bool = False) -> Any:
    """The ASGI application for ``settings`` (default: from the environment).

    The model is loaded at start-up (lifespan); a service whose model cannot be loaded stays up,
    answers 503 on recommendation endpoints, and says why in ``/readyz``. ``freeze_gc`` (the
    server's worker processes) moves what is loaded out of the garbage collector's sight after
    each model load (see :func:`freeze_heap`).
    """
    settings = settings or Settings.from_env()
    holder = holder or ModelHolder(settings.model, settings.catalogue, verify=settings.verify)
    metrics = Metrics()
    holder.subscribe(metrics.on_reload)
    if freeze_gc:
        holder.after_swap.append(freeze_heap)
    schemas = S.build_schemas(
        max_basket=settings.max_basket, max_k=settings.max_k, default_k=settings.default_k,
        max_exclude=settings.max_exclude, max_batch=settings.max_batch,
        max_item_length=settings.max_item_length,
    )
    RecommendationRequest = schemas.recommendation
    BatchRequest = schemas.batch
    # both paths read request bodies with these (strict types, see strict_decoder)
    decode_one = strict_decoder(RecommendationRequest)
    decode_batch = strict_decoder(BatchRequest)
    debug_baskets = access_log.isEnabledFor(logging.DEBUG)
    access = AccessLog(access_log) if settings.access_log else None

    def snapshot() -> Snapshot:
        current = holder.current
        if current is None:
            raise ApiError(503, "no_model", "no model is loaded; see /readyz")
        return current

    def recommend(snap: Snapshot, data: Any) -> Ranked:
        """The checks, the business rules and the scoring of one request, counted."""
        basket = data.basket
        _check_items(basket, "basket")
        _check_items(data.exclude, "exclude")
        ranked = snap.model.rank(basket, k=data.k, exclude=data.exclude, banned=snap.banned)
        from_rules = ranked.from_rules
        metrics.observe_basket(ranked.n_known, len(ranked.unknown), from_rules,
                               len(ranked.items) - from_rules)
        return ranked

    def score(snap: Snapshot, data: Any, request_id: str) -> S.RecommendationResponse:
        ranked = recommend(snap, data)
        return S.RecommendationResponse(request_id=request_id, model_version=snap.version,
                                        items=_items(snap.model, ranked),
                                        unknown=ranked.unknown)

    def score_batch(snap: Snapshot, requests: list[Any],
                    answer: Callable[[Snapshot, Any], Any]) -> list[Any]:
        results = []
        for i, req in enumerate(requests):
            try:
                results.append(answer(snap, req))
            except ApiError as exc:
                exc.field = f"requests[{i}].{exc.field}" if exc.field else f"requests[{i}]"
                raise
        return results

    async def strict_body(request: Request, decode: Callable[[bytes], Any]) -> Any:
        """The body read again with strict types: Litestar's own reading takes "5" for 5."""
        try:
            return decode(await request.body())
        except msgspec.ValidationError as exc:
            message, field = split_validation_message(str(exc))
            raise ApiError(422, "invalid_request", message, field) from None

    # ---- recommendations -------------------------------------------------------------------

    @post("/v1/recommendations", status_code=200, tags=["recommendations"],
          summary="Recommend items for a basket (the cart page)",
          responses=_responses(400, 413, 422, 503))
    async def recommendations(request: Request,
                              data: Annotated[RecommendationRequest, Body()]  # type: ignore
                              ) -> S.RecommendationResponse:
        """The top-k items to add to a basket: never an item of the basket, of `exclude` or of
        the unavailable-items catalogue. Rules first, then popular items (`fallback: true`) so
        the answer always has k items; an empty or all-unknown basket gets popular items."""
        data = await strict_body(request, decode_one)
        rid = _request_id(request.scope)
        log_basket(rid, data)
        return score(snapshot(), data, rid)

    @post("/v1/recommendations/batch", status_code=200, tags=["recommendations"],
          summary="Recommend items for many baskets in one call",
          responses=_responses(400, 413, 422, 503))
    async def recommendations_batch(request: Request,
                                    data: Annotated[BatchRequest, Body()]  # type: ignore
                                    ) -> S.BatchResponse:
        """Several recommendation requests answered by one model version, in order; each
        answer is the same as `POST /v1/recommendations` would give."""
        data = await strict_body(request, decode_batch)
        snap = snapshot()
        rid = _request_id(request.scope)
        return S.BatchResponse(request_id=rid, model_version=snap.version,
                               results=score_batch(snap, data.requests,
                                                   lambda s, req: score(s, req, rid)))

    @get("/v1/items/{item:str}/associations", tags=["recommendations"],
         summary="What is bought with one product (the product page)",
         responses=_responses(400, 422, 503))
    async def associations(
        request: Request,
        item: Annotated[str, Parameter(description="The product's item code.",
                                       max_length=settings.max_item_length, min_length=1)],
        k: Annotated[int, Parameter(ge=1, le=settings.max_k, description="How many items.")
                     ] = settings.default_k,
    ) -> S.AssociationsResponse:
        """Items most often bought with `item`, for a product page before any basket exists.
        Unavailable items are never returned; an item the model does not know (`known: false`)
        gets popular items (`fallback: true`) so the widget is never empty."""
        snap = snapshot()
        model = snap.model
        ranked = model.rank([item], k=k, banned=snap.banned)
        known = not ranked.unknown
        from_rules = ranked.from_rules
        metrics.observe_basket(int(known), int(not known), from_rules,
                               len(ranked.items) - from_rules)
        return S.AssociationsResponse(
            request_id=_request_id(request.scope), model_version=snap.version, item=item,
            label=model.label(item), known=known, items=_items(model, ranked))

    # ---- model and operations --------------------------------------------------------------

    @get("/v1/model", tags=["model"], summary="The model being served",
         responses=_responses(503))
    async def model_info() -> S.ModelInfo:
        """Version, creation time, parameters, data fingerprint, counts and offline metrics
        of the model answering requests now."""
        snap = snapshot()
        m = snap.model.manifest
        counts = m.get("counts", {})
        return S.ModelInfo(
            model_version=snap.version, created_at=m.get("created_at"),
            basketry_version=m.get("basketry_version"), format_version=m.get("format_version"),
            reference=snap.reference, loaded_at=snap.loaded_at,
            parameters=m.get("parameters") or {}, scoring=m.get("scoring") or {},
            counts=S.ModelCounts(n_baskets=int(counts.get("n_baskets", 0)),
                                 n_items=int(counts.get("n_items", 0)),
                                 n_rules=int(counts.get("n_rules", 0))),
            dataset_fingerprint=(m.get("dataset") or {}).get("fingerprint"),
            metrics=m.get("metrics") or {}, unavailable_items=len(snap.unavailable),
        )

    def _reload_info(outcome: ReloadOutcome | None) -> S.ReloadInfo | None:
        if outcome is None:
            return None
        return S.ReloadInfo(ok=outcome.ok, at=outcome.at, reference=outcome.reference,
                            model_version=outcome.model_version, error=outcome.error)

    @get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> S.Health:
        return S.Health(status="ok")

    @get("/readyz", tags=["operations"], summary="Readiness: a model is loaded and usable",
         responses={503: ResponseSpec(S.Readiness, description="No model is loaded.")})
    async def readyz() -> Response[S.Readiness]:
        """200 when a model answers requests. `last_reload` shows the last load attempt: a
        refused model (`ok: false`, with the error) leaves the previous model serving."""
        current = holder.current
        body = S.Readiness(ready=current is not None,
                           model_version=current.version if current else None,
                           last_reload=_reload_info(holder.last_reload))
        return Response(body, status_code=200 if current is not None else 503)

    # HEAD for the load balancers whose health checks send it (HAProxy's httpchk, for one)
    @head("/healthz", tags=["operations"], summary="Liveness, without a body")
    async def healthz_head() -> None:
        return None

    @head("/readyz", tags=["operations"], summary="Readiness, without a body (200 or 503)")
    async def readyz_head() -> Response[None]:
        return Response(None, status_code=200 if holder.current is not None else 503)

    @get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)",
         media_type=CONTENT_TYPE)
    async def metrics_endpoint() -> Response[bytes]:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    openapi_bytes: list[bytes] = []

    @get("/openapi.json", include_in_schema=False, media_type="application/json")
    async def openapi_json(request: Request) -> Response[bytes]:
        if not openapi_bytes:
            openapi_bytes.append(msgspec.json.encode(request.app.openapi_schema.to_schema()))
        return Response(openapi_bytes[0], media_type="application/json")

    def finish_openapi(app: Litestar) -> None:
        """Say what Litestar leaves out: request documents accept no unknown fields."""
        schemas = app.openapi_schema.components.schemas or {}
        for name in ("RecommendationRequest", "BatchRequest", "ReloadRequest"):
            if name in schemas:
                schemas[name].additional_properties = False

    run_dir = os.environ.get(RUN_DIR_ENV)

    @post("/v1/admin/reload", status_code=200, tags=["operations"],
          summary="Load the model again (or another one) and swap it in atomically",
          security=[{"AdminToken": []}],
          responses={
              **_responses(400, 413),
              401: ResponseSpec(S.ErrorResponse, description="Missing or wrong admin token."),
              403: ResponseSpec(S.ErrorResponse, description="Admin endpoints are disabled "
                                "(no BASKETRY_ADMIN_TOKEN)."),
              409: ResponseSpec(S.ErrorResponse, description="The model was refused (failed to "
                                "load or verify); the previous model keeps serving."),
              422: ERRORS[422],
          })
    async def admin_reload(request: Request,
                           data: Annotated[S.ReloadRequest | None, Body()] = None
                           ) -> S.ReloadResponse:
        """Requests in flight finish on the old model; new ones get the new one. A model that
        fails to load or verify is refused and the old one keeps serving."""
        token = settings.admin_token
        if not token:
            raise ApiError(403, "admin_disabled", "admin endpoints are disabled: the service "
                           "was started without an admin token")
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong admin token "
                           "(Authorization: Bearer <token>)")
        ref = data.model if data is not None else None
        outcome = await holder.reload(ref, force=True)
        if not outcome.ok:
            raise ApiError(409, "model_refused", f"model refused, the previous model keeps "
                           f"serving: {outcome.error}", "model" if ref else None)
        if run_dir:  # tell the other workers of this server
            _signal_workers(Path(run_dir), outcome.reference)
        return S.ReloadResponse(
            request_id=_request_id(request.scope),
            status="reloaded" if outcome.changed else "unchanged",
            model_version=outcome.model_version or "",
            previous_version=outcome.previous_version)

    # ---- the fast path ---------------------------------------------------------------------
    # The two recommendation endpoints are also answered below the framework: same request
    # types, same checks, same scoring and same documents, without the per-request cost of
    # Litestar's routing, signature model and response machinery (see docs/api.md). The
    # Litestar routes above describe them in the OpenAPI document and answer when
    # ``settings.fast_path`` is off; tests run the same cases through both.

    encoder = msgspec.json.Encoder()

    def error_body(rid: str, error: str, message: str, field: str | None = None) -> bytes:
        return encoder.encode(S.ErrorResponse(error=error, message=message, field=field,
                                              request_id=rid))

    def fast(decode: Callable[[bytes], Any], answer: Callable[[Snapshot, Any, str], bytes]
             ) -> Callable[[bytes, str], tuple[int, bytes]]:
        def handle(body: bytes, rid: str) -> tuple[int, bytes]:
            try:
                data = decode(body)
                return 200, answer(snapshot(), data, rid)
            except ApiError as exc:
                return exc.status, error_body(rid, exc.error, exc.message, exc.field)
            except msgspec.ValidationError as exc:
                message, field = split_validation_message(str(exc))
                return 422, error_body(rid, "invalid_request", message, field)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                return 400, error_body(rid, "invalid_body", undecodable_body(body, exc))
        return handle

    # The answer documents are written from pre-encoded pieces kept with the model's snapshot:
    # per rule (by rank), its item's `{"item":..,"label":..,"score":` head and its
    # `,"fallback":false,"rule":{..}}` tail; per popular item (by ~id), its head. Only the
    # score (which may depend on the basket) is encoded per answer. The cache holds ints and
    # bytes only, which the garbage collector does not track. The bytes are those msgspec
    # writes for the same RecommendationResponse (a test checks it).

    fallback_tail = b',"fallback":true,"rule":null}'

    def item_head(model: Model, item: int) -> bytes:
        return b"".join((b'{"item":', encoder.encode(model.items[item]), b',"label":',
                         encoder.encode(model.labels[item]), b',"score":'))

    def encoded_items(snap: Snapshot, ranked: Ranked) -> bytes:
        cache = snap.encoded
        if len(cache) > MAX_ENCODED:
            cache.clear()
        model = snap.model
        out = []
        for item, rank, score in zip(ranked.items, ranked.ranks, ranked.scores, strict=True):
            if rank >= 0:
                pieces = cache.get(rank)
                if pieces is None:
                    pieces = cache[rank] = (item_head(model, item), b"".join((
                        b',"fallback":false,"rule":', encoder.encode(_rule(model.explain(rank))),
                        b"}")))
                out.append(b"".join((pieces[0], encoder.encode(score), pieces[1])))
            else:
                head = cache.get(~item)
                if head is None:
                    head = cache[~item] = item_head(model, item)
                out.append(b"".join((head, encoder.encode(score), fallback_tail)))
        return b",".join(out)

    def encoded_answer(snap: Snapshot, data: Any, rid: bytes) -> bytes:
        ranked = recommend(snap, data)
        return b"".join((b'{"request_id":"', rid, b'","model_version":',
                         encoder.encode(snap.version),
                         b',"items":[', encoded_items(snap, ranked), b'],"unknown":',
                         encoder.encode(ranked.unknown) if ranked.unknown else b"[]", b"}"))

    def log_basket(rid: str, data: Any) -> None:
        if debug_baskets:
            access_log.debug("basket", extra={"request_id": rid, "basket": data.basket,
                                              "exclude": data.exclude})

    def answer_one(snap: Snapshot, data: Any, rid: str) -> bytes:
        log_basket(rid, data)
        return encoded_answer(snap, data, rid.encode())

    def answer_batch(snap: Snapshot, data: Any, rid: str) -> bytes:
        raw = rid.encode()
        results = score_batch(snap, data.requests, lambda s, req: encoded_answer(s, req, raw))
        return b"".join((b'{"request_id":"', raw, b'","model_version":',
                         encoder.encode(snap.version), b',"results":[', b",".join(results),
                         b"]}"))

    fast_routes = {
        "/v1/recommendations": fast(decode_one, answer_one),
        "/v1/recommendations/batch": fast(decode_batch, answer_batch),
    } if settings.fast_path else {}

    # ---- errors ----------------------------------------------------------------------------

    def on_api_error(request: Request, exc: ApiError) -> Response[S.ErrorResponse]:
        return _error(_request_id(request.scope), exc.status, exc.error, exc.message, exc.field)

    def on_validation(request: Request, exc: ValidationException) -> Response[S.ErrorResponse]:
        rid = _request_id(request.scope)
        detail = str(exc.detail)
        extra = exc.extra if isinstance(exc.extra, list) else []
        message = detail
        field = None
        for entry in extra:
            if isinstance(entry, dict):
                message, field = split_validation_message(str(entry.get("message") or detail))
                key = entry.get("key")
                if entry.get("source") in ("query", "path") or (
                        field is None and key and key != "data"):
                    field = str(key)
                break
        lowered = message.lower()
        if "utf-8" in lowered or "malformed" in lowered or "invalid json" in lowered or (
                "json" in lowered and "decode" in lowered) or "truncated" in lowered:
            return _error(rid, 400, "invalid_body", f"the body is not valid UTF-8 JSON: "
                          f"{message}")
        return _error(rid, 422, "invalid_request", message, field)

    def on_http(request: Request, exc: HTTPException) -> Response[S.ErrorResponse]:
        rid = _request_id(request.scope)
        status = exc.status_code
        if request.scope.get(_CLIENT_LEFT):  # nobody to answer, and not the server's fault
            return _error(rid, CLIENT_CLOSED, "client_closed", "the client left")
        if status == 413:
            return _error(rid, 413, "body_too_large",
                          f"the body is larger than {settings.max_body_bytes} bytes")
        if status == 400:
            return _error(rid, 400, "invalid_body", f"the body is not valid JSON: {exc.detail}")
        if status >= 500:
            log.error("server error", extra={"request_id": rid, "detail": str(exc.detail)})
            return _error(rid, status, "server_error", "internal error")
        # e.g. the Allow header of a 405
        return _error(rid, status, "http_error", str(exc.detail), headers=exc.headers)

    def on_undecodable(request: Request, exc: UnicodeDecodeError) -> Response[S.ErrorResponse]:
        return _error(_request_id(request.scope), 400, "invalid_body",
                      f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}")

    def on_internal(request: Request, exc: Exception) -> Response[S.ErrorResponse]:
        rid = _request_id(request.scope)
        log.exception("unhandled error", extra={"request_id": rid})
        return _error(rid, 500, "server_error", "internal error")

    # ---- lifespan: load the model, run the watcher -----------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if run_dir and (Path(run_dir) / "reload").is_file():
            # a worker (re)started after an admin reload serves what the others serve
            holder.reference = (Path(run_dir) / "reload").read_text(encoding="utf-8").strip()
        if holder.current is None and holder.reference:
            await asyncio.to_thread(holder.load_initial)
            if freeze_gc:
                freeze_heap()
        elif holder.current is None:
            log.error("no model reference given: set BASKETRY_MODEL or --model",
                      extra={"event": "no_model"})
        elif holder.last_reload is None:  # given a loaded holder: publish it
            metrics.on_reload(ReloadOutcome(ok=True, at="", reference=holder.reference or "",
                                            model_version=holder.current.version,
                                            changed=True), holder.current)
        check_swagger_ui()
        if access is not None:
            access.bind()  # the logging set-up is complete now
        tasks = [asyncio.create_task(_watch(holder, settings.watch, run_dir))]
        if metrics.multiprocess:
            tasks.append(asyncio.create_task(_flush_metrics(metrics)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            metrics.flush()
            if access is not None:
                access.flush()

    openapi = OpenAPIConfig(
        title="basketry recommendations",
        version="1",
        description=(
            "Frequently-bought-together recommendations from association rules. "
            "Errors are `ErrorResponse` documents whose `field` names the request field at "
            f"fault. Limits: basket <= {settings.max_basket} items, k <= {settings.max_k}, "
            f"exclude <= {settings.max_exclude} items, batch <= {settings.max_batch} requests, "
            f"item <= {settings.max_item_length} characters, body <= {settings.max_body_bytes} "
            "bytes."),
        path="/docs",
        render_plugins=[swagger_plugin()],
        components=Components(security_schemes={
            "AdminToken": SecurityScheme(type="http", scheme="bearer",
                                         description="BASKETRY_ADMIN_TOKEN")}),
    )
    app = Litestar(
        route_handlers=[recommendations, recommendations_batch, associations, model_info,
                        healthz, healthz_head, readyz, readyz_head, metrics_endpoint,
                        admin_reload, openapi_json,
                        assets_route()],
        exception_handlers={ApiError: on_api_error, ValidationException: on_validation,
                            UnicodeDecodeError: on_undecodable, HTTPException: on_http,
                            404: on_http, 405: on_http, Exception: on_internal},
        openapi_config=openapi,
        lifespan=[lifespan],
        on_startup=[finish_openapi],
        request_max_body_size=settings.max_body_bytes,
        state=State({"holder": holder, "metrics": metrics, "settings": settings}),
        logging_config=None,
        signature_namespace={"RecommendationRequest": RecommendationRequest,
                             "BatchRequest": BatchRequest},
    )
    return RequestContext(app, metrics, settings, holder, fast_routes, access)


def freeze_heap() -> None:
    """Collect once, then move every object alive now (the libraries, the app, the model) to
    the collector's permanent generation (:func:`gc.freeze`).

    Why: a full collection walks every tracked object, a loaded service has a few hundred
    thousand (about 0.1-0.2 s a walk here), and one happens every few thousand requests,
    stalling every request in flight: the server's p99 latency under steady load was that
    pause. Frozen objects are never walked again and are still freed by reference counting;
    what requests allocate is collected as before. After a reload the previous model is
    unfrozen and collected first (one full collection, once per reload), so nothing leaks.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _signal_workers(run_dir: Path, reference: str) -> None:
    target = run_dir / "reload"
    tmp = run_dir / f".reload.{os.getpid()}"
    tmp.write_text(reference, encoding="utf-8")
    os.replace(tmp, target)


async def _watch(holder: ModelHolder, interval: float, run_dir: str | None) -> None:
    """Poll for a new model version or catalogue (``interval`` > 0) and for reloads asked of
    another worker of the same server (``run_dir``)."""
    if interval <= 0 and not run_dir:
        return
    signal = Path(run_dir) / "reload" if run_dir else None
    seen = None  # a signal written while this worker was starting is applied at the first tick
    tick = min(interval, 0.5) if interval > 0 else 0.5
    next_check = time.monotonic() + interval
    while True:
        await asyncio.sleep(tick)
        try:
            if signal is not None:
                stamp = _mtime(signal)
                if stamp != seen:
                    seen = stamp
                    ref = signal.read_text(encoding="utf-8").strip() or None
                    await holder.reload(ref, force=False)
            if interval > 0 and time.monotonic() >= next_check:
                next_check = time.monotonic() + interval
                if await asyncio.to_thread(holder.needs_reload):
                    await holder.reload(force=False)
        except asyncio.CancelledError:
            raise
        except Exception:  # the watcher must outlive any single failure
            log.exception("model watcher error")


async def _flush_metrics(metrics: Metrics) -> None:
    """With several workers: hand this worker's counts to the shared metrics files often."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            metrics.flush()
        except Exception:  # metrics must never take the worker down
            log.exception("metrics flush error")


def _mtime(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class RequestContext:
    """ASGI wrapper: request ids, the access log line and request metrics for every request,
    and the fast path of the recommendation endpoints.

    A plain ASGI layer rather than framework middleware: it costs a few microseconds.
    """

    def __init__(self, app: Litestar, metrics: Metrics, settings: Settings,
                 holder: ModelHolder,
                 fast_routes: dict[str, Callable[[bytes, str], tuple[int, bytes]]],
                 access: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.settings = settings
        self.holder = holder
        self.access = access
        self.fast_routes = fast_routes
        self.max_body = settings.max_body_bytes
        # request ids made here: a random prefix per process and a counter from a random
        # start, 16 hex digits as before, unique without a system call per request
        self._id_prefix = os.urandom(4).hex()
        self._id_count = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_count) & 0xFFFFFFFF:08x}"

    def request_id(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
        """The request's id (the client's ``x-request-id`` when it is safe, else a new one) and
        its declared body length (-1 when not given)."""
        rid = None
        length = -1
        for name, value in headers:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 64 and set(candidate) <= _SAFE_ID:
                    rid = candidate
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        return rid or self.new_request_id(), length

    def answer_fast(self, fast: Callable[[bytes, str], tuple[int, bytes]], path: str,
                    rid: str, body: bytes | None, start: float) -> tuple[int, bytes]:
        """The whole answer of a fast-path request whose body was read (``None``: larger than
        the limit), counted in the metrics and the access log."""
        status = 500
        try:
            if body is None:
                status, payload = 413, msgspec.json.encode(S.ErrorResponse(
                    error="body_too_large", field=None, request_id=rid,
                    message=f"the body is larger than {self.max_body} bytes"))
            else:
                status, payload = fast(body, rid)
            return status, payload
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            raise
        finally:
            self._count(path, "POST", status, rid, start)

    def _count(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        endpoint = _endpoint_of(path)
        self.metrics.observe_request(endpoint, method, status, elapsed)
        if self.access is not None:
            self.access(rid, method, endpoint, status, elapsed)

    async def __call__(self, scope: Any, receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid, length = self.request_id(scope["headers"])
        scope["basketry.request_id"] = rid
        header = (b"x-request-id", rid.encode())
        path = scope["path"]
        fast = self.fast_routes.get(path) if scope["method"] == "POST" else None
        if fast is not None:
            try:
                body = await self._read_body(receive, length)
            except _ClientLeft:  # recorded as the protocol records it: no answer to send
                self._count(path, "POST", _departure(scope), rid, start)
                return
            status, payload = self.answer_fast(fast, path, rid, body, start)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()), header]})
            await send({"type": "http.response.body", "body": payload})
            return
        status = 500
        started = False

        async def send_with_id(message: Any) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        async def receive_noting_departure() -> Any:
            message = await receive()
            # a departure before the answer started (after it, the answer was given: a
            # disconnect the application reads then changes nothing)
            if message["type"] == "http.disconnect" and not started:
                scope[_CLIENT_LEFT] = True  # for the error handler (see CLIENT_CLOSED)
            return message

        try:
            await self.app(scope, receive_noting_departure, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            raise
        finally:
            self._count(path, scope["method"],
                        _departure(scope) if scope.get(_CLIENT_LEFT) else status, rid, start)

    def client_left(self, path: str, rid: str, start: float) -> None:
        """Record a fast-path request whose client left before its body was in."""
        self._count(path, "POST", CLIENT_CLOSED, rid, start)

    def record(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        """Record a request the HTTP protocol answered itself and closed (408: its head or body
        came too slowly; 431: its head was too large)."""
        self._count(path, method, status, rid, start)

    async def _read_body(self, receive: Callable[..., Any], length: int) -> bytes | None:
        """The request body, or None when it is larger than the limit (not read further);
        :class:`_ClientLeft` when the client leaves first."""
        if length > self.max_body:
            return None
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise _ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # conveniences for tests and the server
    @property
    def state(self) -> State:
        return self.app.state

    def openapi_schema(self) -> dict[str, Any]:
        return self.app.openapi_schema.to_schema()


def _departure(scope: Any) -> int:
    """The status of a request whose client is gone before its body was in."""
    return REQUEST_TIMEOUT if scope.get(TIMED_OUT) else CLIENT_CLOSED


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value)
