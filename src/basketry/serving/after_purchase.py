"""``POST /v1/recommendations/after-purchase``: what this customer will want next time, once
their order is complete (the confirmation page, the follow-up email).

The answer is the model's sequential part (:mod:`basketry.model.sequential`, the ranking the
offline next-order evaluation measures): the sequential rules fired by the completed order,
buy-again for the items of that order and of the earlier orders the shop sends, popular items
to fill. The service keeps no customer history: the shop sends what it knows. A model without
the sequential part answers 404 ``no_after_purchase`` (problem+json) naming the model version.

No ``from __future__ import annotations``: the handler's types carry the settings' limits, so
Litestar reads its annotations as objects (as in :mod:`basketry.serving.layout`).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from msgspec import Meta, Struct

from basketry.model import Model
from basketry.model.sequential import AfterPurchase
from basketry.serving.decoding import decode_body, strict_decoder
from basketry.serving.error_handlers import request_id
from basketry.serving.errors import ApiError
from basketry.serving.openapi import responses
from basketry.serving.schemas import NOT_BLANK, ErrorResponse
from basketry.serving.service import RecommendationService, check_items
from basketry.serving.settings import Settings
from basketry.serving.state import Snapshot

PATH = "/v1/recommendations/after-purchase"


class SequentialRule(Struct, kw_only=True):
    """The sequential rule behind an item: customers who bought `antecedent` in an order
    bought the item in a later order within the horizon."""

    antecedent: Annotated[list[str], Meta(description="Items of the completed order.")]
    confidence: Annotated[float, Meta(description="Share of the customers who bought the "
                                                  "antecedent and then the item within the "
                                                  "horizon.")]
    lift: Annotated[float, Meta(description="Confidence over the item's share of follow-up "
                                            "orders' customers.")]
    support: Annotated[float, Meta(description="Share of the customers showing the rule.")]
    count: Annotated[int, Meta(description="Customers showing the rule.")]


class BuyAgain(Struct, kw_only=True):
    """The repeat-purchase evidence behind an item the customer bought before."""

    times_bought: Annotated[int, Meta(description="Orders sent (this one and the earlier "
                                                  "ones) holding the item.")]
    repeat_rate: Annotated[float, Meta(description="Share of the customers who bought the item "
                                                   "and bought it again within the horizon.")]
    customers: Annotated[int, Meta(description="Customers who bought it again.")]
    last_bought: Annotated[dt.date | None, Meta(description="The latest date among the orders "
                                                         "sent that hold it (null: no date "
                                                         "sent).")]


class NextItem(Struct, kw_only=True):
    item: Annotated[str, Meta(description="The recommended item (product code).")]
    label: Annotated[str | None, Meta(description="Product description, when known.")]
    score: Annotated[float, Meta(description="1 - (1 - w * rule confidence) * (1 - buy-again "
                                             "chance); for a popular item its support.")]
    kind: Annotated[str, Meta(description="Why: `sequential` (a rule), `buy_again` (bought "
                                          "before) or `popular` (fill).")]
    rule: Annotated[SequentialRule | None, Meta(description="The rule, for `sequential`.")]
    buy_again: Annotated[BuyAgain | None, Meta(description="The evidence, for `buy_again`.")]


class AfterPurchaseResponse(Struct, kw_only=True):
    request_id: str
    model_version: str
    horizon_days: Annotated[float, Meta(description="The horizon the rules were mined with: "
                                                    "what the answer predicts is the orders "
                                                    "of the next so many days.")]
    items: Annotated[list[NextItem], Meta(description="Top-k items, best first; never an item "
                                                      "of `exclude` or of the catalogue of "
                                                      "unavailable items.")]
    unknown: Annotated[list[str], Meta(description="Items of the orders the model does not "
                                                   "know (ignored).")]


def _schemas(settings: Settings) -> tuple[type, type]:
    item = Annotated[str, Meta(min_length=1, max_length=settings.max_item_length,
                               description="An item (product code) as in the training data.")]
    # Litestar documents a list's own constraints but not those of its elements: say them again
    # (as the cart endpoint's schemas do)
    listed = {"extra": {"unique_items": True, "items": {
        "type": "string", "minLength": 1, "maxLength": settings.max_item_length,
        "pattern": NOT_BLANK}}}
    item_list = Annotated[list[item], Meta(min_length=1, max_length=settings.max_basket,
                                           extra_json_schema=listed)]

    class EarlierOrder(Struct, kw_only=True, forbid_unknown_fields=True):
        items: item_list
        date: Annotated[dt.date | None, Meta(description="When it was placed (ISO date).")
                        ] = None

    class AfterPurchaseRequest(Struct, kw_only=True, forbid_unknown_fields=True):
        order: Annotated[item_list, Meta(description="The items of the completed order.")]
        date: Annotated[dt.date | None, Meta(description="When it was placed (ISO date).")
                        ] = None
        earlier_orders: Annotated[list[EarlierOrder], Meta(
            max_length=settings.max_batch,
            description="The customer's earlier orders, when the shop knows them (the "
                        "service keeps no history).")] = []
        k: Annotated[int, Meta(ge=1, le=settings.max_k)] = settings.default_k
        exclude: Annotated[list[item], Meta(max_length=settings.max_exclude,
                                            extra_json_schema=listed)] = []

    for kind in (EarlierOrder, AfterPurchaseRequest):  # the documents' names, not _schemas.*
        kind.__qualname__ = kind.__name__
    return AfterPurchaseRequest, AfterPurchaseResponse


@dataclass
class _Rankings:
    """The ranking of the snapshot being served, built once per model (first request)."""

    model: Model | None = None
    ranking: AfterPurchase | None = None

    def of(self, snap: Snapshot) -> AfterPurchase:
        model = snap.model
        if model is not self.model:
            part = model.artifact.sequential
            if part is None:
                raise ApiError(404, "no_after_purchase", f"model version {snap.version} has no "
                               "sequential part (after the purchase): train it on data with "
                               "customers and timestamps")
            # each item's base rate: the model's own item counts over its baskets
            base_rate = model.item_counts.astype(np.float64) / model.n_baskets
            self.ranking, self.model = AfterPurchase(part, base_rate), model
        assert self.ranking is not None
        return self.ranking


def _answer(model: Model, ranking: AfterPurchase, body: Any, banned: np.ndarray
            ) -> tuple[list[NextItem], list[str]]:
    ids = model.item_ids
    unknown = list(dict.fromkeys(x for o in (body.order, *(e.items for e in
                                                            body.earlier_orders))
                                 for x in o if x not in ids))
    order = model.ids_of(body.order)
    earlier = [model.ids_of(e.items) for e in body.earlier_orders]
    ranked = ranking.rank(order, earlier, body.k, banned)
    out = []
    for x in ranked:
        rule = again = None
        if x.kind == "sequential":
            r = ranking.rule(x.row)
            rule = SequentialRule(antecedent=[str(model.items[i]) for i in r["antecedent"]],
                                  confidence=r["confidence"], lift=r["lift"],
                                  support=r["support"], count=r["count"])
        elif x.kind == "buy_again":
            r = ranking.repeat(x.row)
            item = str(model.items[x.item])
            dates = [d for d, o in ((body.date, body.order), *((e.date, e.items)
                                                                for e in body.earlier_orders))
                     if d is not None and item in o]
            again = BuyAgain(times_bought=x.times, repeat_rate=r["confidence"],
                             customers=r["count"], last_bought=max(dates, default=None))
        out.append(NextItem(item=str(model.items[x.item]), label=model.labels[x.item],
                            score=x.score, kind=x.kind, rule=rule, buy_again=again))
    return out, unknown


def after_purchase_routes(settings: Settings, service: RecommendationService
                          ) -> list[HTTPRouteHandler]:
    """``POST /v1/recommendations/after-purchase`` for the model ``service`` serves."""
    AfterPurchaseRequest, _ = _schemas(settings)
    decode = strict_decoder(AfterPurchaseRequest)
    rankings = _Rankings()

    @post(PATH, status_code=200, tags=["recommendations"],
          summary="Recommend items for the next order (after the purchase)",
          responses={**responses(400, 413, 422, 503), 404: ResponseSpec(
              ErrorResponse, description="The model has no sequential part.")})
    async def after_purchase(request: Request,
                             data: Annotated[AfterPurchaseRequest, Body()]  # type: ignore
                             ) -> AfterPurchaseResponse:
        """What the customer will likely want next time, once an order is complete: the items
        sequential rules lead to from this order, the items they are likely to buy again (of
        this order and the earlier ones sent), popular items to fill; each with the rule or
        the evidence behind it."""
        body = decode_body(decode, await request.body())
        check_items(body.order, "order")
        check_items(body.exclude, "exclude")
        for i, earlier in enumerate(body.earlier_orders):
            check_items(earlier.items, f"earlier_orders[{i}].items")
        snap = service.snapshot()
        ranking = rankings.of(snap)
        banned = snap.banned
        if body.exclude:
            banned = np.union1d(banned, snap.model.ids_of(body.exclude))
        items, unknown = _answer(snap.model, ranking, body, banned)
        return AfterPurchaseResponse(request_id=request_id(request),
                                     model_version=snap.version,
                                     horizon_days=ranking.horizon_days, items=items,
                                     unknown=unknown)

    return [after_purchase]


def finish_after_purchase_openapi(app: Any) -> None:
    """The request documents accept no unknown fields (Litestar leaves it out)."""
    schemas = app.openapi_schema.components.schemas or {}
    for name in ("AfterPurchaseRequest", "EarlierOrder"):
        if name in schemas:
            schemas[name].additional_properties = False
