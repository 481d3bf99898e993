"""The application's wiring: settings -> model holder, service, routes, fast path, lifespan,
middleware. Each part is a module of its own (see docs/architecture.md, "Serving")."""

from __future__ import annotations

import logging

from litestar import Litestar
from litestar.datastructures import State

from basketry.serving.after_purchase import after_purchase_routes, finish_after_purchase_openapi
from basketry.serving.capture import Capture
from basketry.serving.decoding import Decoders
from basketry.serving.encoding import AnswerEncoder
from basketry.serving.error_handlers import exception_handlers
from basketry.serving.fast_routes import BATCH, RECOMMENDATIONS, fast_routes
from basketry.serving.heap import freeze_heap
from basketry.serving.lifespan import lifespan
from basketry.serving.logs import AccessLog
from basketry.serving.metrics import Metrics
from basketry.serving.middleware import RequestContext
from basketry.serving.openapi import finish_openapi, openapi_config
from basketry.serving.query import known_query_only
from basketry.serving.routes import route_handlers, signature_namespace
from basketry.serving.schemas import build_schemas
from basketry.serving.service import RecommendationService
from basketry.serving.settings import Settings
from basketry.serving.state import ModelHolder
from basketry.serving.watcher import run_dir as shared_run_dir

access_log = logging.getLogger("basketry.serving.access")


def create_app(settings: Settings | None = None, *, holder: ModelHolder | None = None,
               freeze_gc: bool = False, capture: Capture | None = None) -> RequestContext:
    """The ASGI application for ``settings`` (default: from the environment).

    The model is loaded at start-up (lifespan); a service whose model cannot be loaded stays up,
    answers 503 on recommendation endpoints, and says why in ``/readyz``. ``freeze_gc`` (the
    server's worker processes) moves what is loaded out of the garbage collector's sight after
    each model load (see :func:`~basketry.serving.heap.freeze_heap`). ``capture`` records the
    answers (default: the ``BASKETRY_MONITOR_*`` settings; it starts with the lifespan).
    """
    settings = settings or Settings.from_env()
    holder = holder or ModelHolder(settings.model, settings.catalogue, verify=settings.verify)
    metrics = Metrics()
    holder.subscribe(metrics.on_reload)
    if freeze_gc:
        holder.after_swap.append(freeze_heap)
    schemas = build_schemas(
        max_basket=settings.max_basket, max_k=settings.max_k, default_k=settings.default_k,
        max_exclude=settings.max_exclude, max_batch=settings.max_batch,
        max_item_length=settings.max_item_length,
    )
    decoders = Decoders.of(schemas)  # both paths read bodies with these
    capture = capture if capture is not None else Capture.from_env()
    metrics.watch_capture(capture.counts)
    service = RecommendationService(holder, metrics, capture)
    access = AccessLog(access_log) if settings.access_log else None
    run_dir = shared_run_dir()
    app = Litestar(
        route_handlers=[*route_handlers(settings, decoders, service, metrics, run_dir),
                        *after_purchase_routes(settings, service)],
        # the framework's refusals of a recommendation body are read again strictly
        exception_handlers=exception_handlers(settings.max_body_bytes, {
            RECOMMENDATIONS: decoders.one, BATCH: decoders.batch}),
        openapi_config=openapi_config(settings),
        lifespan=[lifespan(holder, metrics, watch_interval=settings.watch, run_dir=run_dir,
                           access=access, freeze_gc=freeze_gc, capture=capture)],
        on_startup=[finish_openapi, finish_after_purchase_openapi],
        guards=[known_query_only],  # the /v1 endpoints refuse unknown query parameters
        request_max_body_size=settings.max_body_bytes,
        state=State({"holder": holder, "metrics": metrics, "settings": settings}),
        logging_config=None,
        signature_namespace=signature_namespace(schemas),
    )
    fast = fast_routes(service, AnswerEncoder(), decoders) if settings.fast_path else {}
    return RequestContext(app, metrics, settings, holder, fast, access)
