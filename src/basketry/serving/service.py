"""The recommendation service, independent of the web framework: which model answers (the
snapshot), the checks of a request, the business rules of the ranking, and what is counted.

Both paths call it: the framework's route handlers (:mod:`basketry.serving.routes`) and the
fast path (:mod:`basketry.serving.fast_routes`); what they differ in is only how the answer is
written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from basketry.model import Ranked
from basketry.serving.capture import Capture
from basketry.serving.errors import ApiError, no_model
from basketry.serving.metrics import Metrics
from basketry.serving.state import ModelHolder, Snapshot

#: Baskets are logged here at DEBUG level (with the access log's request ids).
basket_log = logging.getLogger("basketry.serving.access")

#: What a blank item is made of (schemas.NOT_BLANK is its complement).
_BLANK = " \t\n\r\f\v"

T = TypeVar("T")


class BasketRequest(Protocol):
    """A recommendation request as decoded (its types and lengths checked by the decoder)."""

    basket: list[str]
    k: int
    exclude: list[str]


def check_items(items: list[str], name: str) -> None:
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


class RecommendationService:
    """Recommendations from the model being served, counted in ``metrics`` and recorded by
    ``capture`` (the routes call :attr:`capture` once the answer is built)."""

    def __init__(self, holder: ModelHolder, metrics: Metrics,
                 capture: Capture | None = None) -> None:
        self.holder = holder
        self.metrics = metrics
        self.capture = capture if capture is not None else Capture.off()
        self._debug_baskets = basket_log.isEnabledFor(logging.DEBUG)

    def snapshot(self) -> Snapshot:
        """The model answering now (a request uses this one throughout); 503 without one."""
        current = self.holder.current
        if current is None:
            raise no_model()
        return current

    def recommend(self, snap: Snapshot, request: BasketRequest) -> Ranked:
        """The checks, the business rules and the scoring of one request, counted: never an
        item of the basket, of ``exclude`` or of the unavailable items."""
        basket = request.basket
        check_items(basket, "basket")
        check_items(request.exclude, "exclude")
        ranked = snap.model.rank(basket, k=request.k, exclude=request.exclude,
                                 banned=snap.banned)
        from_rules = ranked.from_rules
        self.metrics.observe_basket(ranked.n_known, len(ranked.unknown), from_rules,
                                    len(ranked.items) - from_rules)
        return ranked

    def associations(self, snap: Snapshot, item: str, k: int) -> tuple[Ranked, bool]:
        """What is bought with ``item`` and whether the model knows it, counted."""
        ranked = snap.model.rank([item], k=k, banned=snap.banned)
        known = not ranked.unknown
        from_rules = ranked.from_rules
        self.metrics.observe_basket(int(known), int(not known), from_rules,
                                    len(ranked.items) - from_rules)
        return ranked, known

    def each(self, snap: Snapshot, requests: Sequence[BasketRequest],
             answer: Callable[[Snapshot, BasketRequest], T]) -> list[T]:
        """``answer`` for each request of a batch, by the same snapshot; an error names the
        request it is in (``requests[2].basket[0]``)."""
        results = []
        for i, request in enumerate(requests):
            try:
                results.append(answer(snap, request))
            except ApiError as exc:
                exc.field = f"requests[{i}].{exc.field}" if exc.field else f"requests[{i}]"
                raise
        return results

    def log_basket(self, rid: str, request: BasketRequest) -> None:
        """The basket in the access log at DEBUG level (decided once, at start)."""
        if self._debug_baskets:
            basket_log.debug("basket", extra={"request_id": rid, "basket": request.basket,
                                              "exclude": request.exclude})
