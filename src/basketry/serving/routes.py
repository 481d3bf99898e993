"""The HTTP routes: thin Litestar adapters over the service (read the request, call, write the
document).

No ``from __future__ import annotations`` here: the request types are built from the settings'
limits (:func:`basketry.serving.schemas.build_schemas`), so the handlers are made by
:func:`route_handlers`, and Litestar reads their annotations as objects.
"""

import hmac
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, head, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, Parameter

from basketry.model import Ranked
from basketry.serving import schemas as S
from basketry.serving.dashboard import dashboard_routes
from basketry.serving.decoding import Decoders, decode_body
from basketry.serving.docs_ui import assets_route
from basketry.serving.encoding import recommended_items
from basketry.serving.error_handlers import request_id
from basketry.serving.errors import ApiError
from basketry.serving.layout import layout_routes
from basketry.serving.metrics import CONTENT_TYPE, Metrics
from basketry.serving.openapi import ERRORS, responses
from basketry.serving.orders import OrderIntake
from basketry.serving.performance import PerformanceReports, SinceQuery, UntilQuery, WindowQuery
from basketry.serving.service import RecommendationService
from basketry.serving.settings import Settings
from basketry.serving.state import ModelHolder, ReloadOutcome, Snapshot
from basketry.serving.watcher import signal_workers


def route_handlers(settings: Settings, decoders: Decoders, service: RecommendationService,
                   metrics: Metrics, run_dir: str | None) -> list[Any]:
    """Every route of the service (the fast path answers two of them first when it is on)."""
    holder: ModelHolder = service.holder
    RecommendationRequest = decoders.schemas.recommendation
    BatchRequest = decoders.schemas.batch
    # bodies are read again with strict types: Litestar's own reading takes "5" for 5
    decode_one, decode_batch = decoders.one, decoders.batch

    capture = service.capture
    intake = OrderIntake(capture, settings.max_orders)
    reports = PerformanceReports(capture)

    def answer(snap: Snapshot, ranked: Ranked, rid: str) -> S.RecommendationResponse:
        return S.RecommendationResponse(request_id=rid, model_version=snap.version,
                                        items=recommended_items(snap.model, ranked),
                                        unknown=ranked.unknown)

    # ---- recommendations -------------------------------------------------------------------

    @post("/v1/recommendations", status_code=200, tags=["recommendations"],
          summary="Recommend items for a basket (the cart page)",
          responses=responses(400, 413, 422, 503))
    async def recommendations(request: Request,
                              data: Annotated[RecommendationRequest, Body()]  # type: ignore
                              ) -> S.RecommendationResponse:
        """The top-k items to add to a basket: never an item of the basket, of `exclude` or of
        the unavailable-items catalogue. Rule items and popular items (`fallback: true`) in the
        order the model's scoring gives, so the answer always has k items; an empty or
        all-unknown basket gets popular items."""
        started = perf_counter()
        data = decode_body(decode_one, await request.body())
        rid = request_id(request)
        service.log_basket(rid, data)
        snap = service.snapshot()
        ranked = service.recommend(snap, data)
        response = answer(snap, ranked, rid)
        capture.record("single", rid, snap, data.basket, ranked, started)
        return response

    @post("/v1/recommendations/batch", status_code=200, tags=["recommendations"],
          summary="Recommend items for many baskets in one call",
          responses=responses(400, 413, 422, 503))
    async def recommendations_batch(request: Request,
                                    data: Annotated[BatchRequest, Body()]  # type: ignore
                                    ) -> S.BatchResponse:
        """Several recommendation requests answered by one model version, in order; each
        answer is the same as `POST /v1/recommendations` would give."""
        started = perf_counter()
        data = decode_body(decode_batch, await request.body())
        snap = service.snapshot()
        rid = request_id(request)
        ranked = service.each(snap, data.requests, service.recommend)
        response = S.BatchResponse(request_id=rid, model_version=snap.version,
                                   results=[answer(snap, r, rid) for r in ranked])
        capture.record_batch(rid, snap, [r.basket for r in data.requests], ranked, started)
        return response

    @get("/v1/items/{item:str}/associations", tags=["recommendations"],
         summary="What is bought with one product (the product page)",
         responses=responses(400, 422, 503))
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
        started = perf_counter()
        snap = service.snapshot()
        model = snap.model
        ranked, known = service.associations(snap, item, k)
        rid = request_id(request)
        response = S.AssociationsResponse(
            request_id=rid, model_version=snap.version, item=item,
            label=model.label(item), known=known, items=recommended_items(model, ranked))
        capture.record("associations", rid, snap, (item,), ranked, started)
        return response

    # ---- monitoring ------------------------------------------------------------------------

    @post("/v1/orders", status_code=200, tags=["monitoring"],
          summary="Record the shop's completed orders (for online performance)",
          responses={**responses(400, 413, 422),
                     503: ResponseSpec(S.ErrorResponse, description="The monitoring store is "
                                       "down or too slow: send the orders again later.")})
    async def orders(request: Request, data: Annotated[S.OrdersRequest, Body()]
                     ) -> S.OrdersResponse:
        """Completed orders into the monitoring store, idempotent by `order_id`: an order whose
        id is already stored is left as it was and counted `existing`, so a batch may be sent
        again after an error. Every order is checked before any is stored (422 naming the
        field); a store that is down or slow answers 503 and nothing is lost by retrying."""
        received, new, existing = await intake.add(await request.body())
        return S.OrdersResponse(request_id=request_id(request), received=received, new=new,
                                existing=existing)

    @get("/v1/monitoring/performance", tags=["monitoring"],
         summary="The model's online performance per version and window",
         responses={**responses(422),
                    503: ResponseSpec(S.ErrorResponse, description="The monitoring store is "
                                      "down, or this worker is computing another report.")})
    async def monitoring_performance(
        request: Request,
        window: WindowQuery = "day",
        since: SinceQuery = None,
        until: UntilQuery = None,
        model_version: Annotated[str | None, Parameter(description="Only this model version."
                                                       )] = None,
    ) -> dict[str, Any]:
        """The same report as `basketry monitor performance --output json`: per model version
        and window, the offline hide-one protocol replayed on the completed orders with the
        version that served them (HR@k, NDCG@k with 95% intervals, coverage, fallback share),
        the attributed precision@k of the recommendations the orders name, and each version's
        offline figures beside. Closed windows are computed once and reused."""
        snap = holder.current
        return await reports.report(dict(request.query_params), snap)

    # ---- model and operations --------------------------------------------------------------

    @get("/v1/model", tags=["model"], summary="The model being served",
         responses=responses(503))
    async def model_info() -> S.ModelInfo:
        """Version, creation time, parameters, data fingerprint, counts and offline metrics
        of the model answering requests now."""
        snap = service.snapshot()
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

    @post("/v1/admin/reload", status_code=200, tags=["operations"],
          summary="Load the model again (or another one) and swap it in atomically",
          security=[{"AdminToken": []}],
          responses={
              **responses(400, 413),
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
        check_admin(settings.admin_token, request.headers.get("authorization", ""))
        ref = data.model if data is not None else None
        outcome = await holder.reload(ref, force=True)
        if not outcome.ok:
            raise ApiError(409, "model_refused", f"model refused, the previous model keeps "
                           f"serving: {outcome.error}", "model" if ref else None)
        if run_dir:  # tell the other workers of this server
            signal_workers(Path(run_dir), outcome.reference)
        return S.ReloadResponse(
            request_id=request_id(request),
            status="reloaded" if outcome.changed else "unchanged",
            model_version=outcome.model_version or "",
            previous_version=outcome.previous_version)

    return [recommendations, recommendations_batch, associations, model_info, healthz,
            healthz_head, readyz, readyz_head, metrics_endpoint, admin_reload, openapi_json, orders,
            monitoring_performance, *dashboard_routes(capture, holder),
            *layout_routes(holder, settings.max_item_length),
            assets_route()]


def check_admin(token: str | None, authorization: str) -> None:
    """403 when admin endpoints are off (no token), 401 unless ``Authorization: Bearer
    <token>`` (compared in constant time)."""
    if not token:
        raise ApiError(403, "admin_disabled", "admin endpoints are disabled: the service "
                       "was started without an admin token")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong admin token "
                       "(Authorization: Bearer <token>)")


def _reload_info(outcome: ReloadOutcome | None) -> S.ReloadInfo | None:
    if outcome is None:
        return None
    return S.ReloadInfo(ok=outcome.ok, at=outcome.at, reference=outcome.reference,
                        model_version=outcome.model_version, error=outcome.error)


def signature_namespace(schemas: S.RequestSchemas) -> dict[str, Any]:
    """The request types the handlers' annotations name, for Litestar."""
    return {"RecommendationRequest": schemas.recommendation, "BatchRequest": schemas.batch}
