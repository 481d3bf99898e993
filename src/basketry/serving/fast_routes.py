"""The fast path of the two recommendation endpoints: same request types, same checks, same
scoring and same documents as the framework's routes, without the per-request cost of
Litestar's routing, signature model and response machinery (see docs/api.md).

The middleware (:class:`~basketry.serving.middleware.RequestContext`) and the HTTP protocol
(:mod:`basketry.serving.protocol`) call these handlers for ``POST`` requests on their paths; the
Litestar routes describe the endpoints in the OpenAPI document and answer when
``settings.fast_path`` is off. Tests run the same cases through both.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from basketry.serving.contracts import FastHandler
from basketry.serving.decoding import Decoders, decode_body
from basketry.serving.encoding import AnswerEncoder
from basketry.serving.errors import ApiError
from basketry.serving.service import RecommendationService
from basketry.serving.state import Snapshot

RECOMMENDATIONS = "/v1/recommendations"
BATCH = "/v1/recommendations/batch"


def fast_routes(service: RecommendationService, encoder: AnswerEncoder, decoders: Decoders
                ) -> dict[str, FastHandler]:
    """The fast-path handlers by path: ``(body, request id) -> (status, answer bytes)``."""

    record, record_batch = service.capture.record, service.capture.record_batch

    def answer_one(snap: Snapshot, data: Any, rid: str, started: float) -> bytes:
        service.log_basket(rid, data)
        ranked = service.recommend(snap, data)
        answer = encoder.recommendation(snap, ranked, rid.encode())
        record("single", rid, snap, data.basket, ranked, started)
        return answer

    def answer_batch(snap: Snapshot, data: Any, rid: str, started: float) -> bytes:
        raw = rid.encode()
        requests = data.requests
        # every basket answered before any is recorded: a refused batch records nothing
        ranked = service.each(snap, requests, service.recommend)
        answer = encoder.batch(snap, [encoder.recommendation(snap, r, raw) for r in ranked], raw)
        record_batch(rid, snap, [r.basket for r in requests], ranked, started)
        return answer

    def handler(decode: Callable[[bytes], Any],
                answer: Callable[[Snapshot, Any, str, float], bytes]) -> FastHandler:
        def handle(body: bytes, rid: str) -> tuple[int, bytes]:
            started = perf_counter()
            try:
                # a bad body is its own error, whether a model is loaded or not
                data = decode_body(decode, body)
                return 200, answer(service.snapshot(), data, rid, started)
            except ApiError as exc:
                return exc.status, encoder.error(rid, exc)
        return handle

    return {RECOMMENDATIONS: handler(decoders.one, answer_one),
            BATCH: handler(decoders.batch, answer_batch)}
