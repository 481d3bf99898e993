"""The API's request and response documents (msgspec Structs, also the OpenAPI schema).

Request types carry the configured limits as constraints, so they are built per application by
:func:`build_schemas`; responses are fixed types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from basketry.monitoring import orders as O


class Rule(Struct, kw_only=True):
    """The association rule that produced a recommendation: antecedent => item."""

    antecedent: Annotated[
        list[str], Meta(description="Items of the basket that made the rule fire.")
    ]
    confidence: Annotated[float, Meta(description="P(item | antecedent) in the training data.")]
    lift: Annotated[float, Meta(description="Confidence divided by the item's base rate.")]
    support: Annotated[
        float, Meta(description="Share of training baskets holding antecedent and item.")
    ]
    count: Annotated[int, Meta(description="Training baskets holding antecedent and item.")]


class RecommendedItem(Struct, kw_only=True):
    item: Annotated[str, Meta(description="The recommended item (product code).")]
    label: Annotated[str | None, Meta(description="Product description, when the model has one.")]
    score: Annotated[
        float,
        Meta(description="Ranking score, higher first, by the model's scoring method (see "
             "`scoring` in GET /v1/model): for `smoothed` (the default) the rule's confidence "
             "shrunk toward the item's base rate, plus a small bonus per other rule pointing to "
             "the item; for `confidence` or `lift`, that measure of the rule; for a popularity "
             "fallback, the item's support."),
    ]
    fallback: Annotated[
        bool, Meta(description="True when the item comes from popularity, not from a rule.")
    ]
    rule: Annotated[Rule | None, Meta(description="The rule that fired; null for a fallback.")]


class RecommendationResponse(Struct, kw_only=True):
    request_id: str
    model_version: Annotated[str, Meta(description="Version of the model that answered.")]
    items: Annotated[
        list[RecommendedItem],
        Meta(description="Top-k items, best first; never in the basket, the exclude list or the "
             "catalogue of unavailable items."),
    ]
    unknown: Annotated[
        list[str], Meta(description="Basket items the model does not know (ignored).")
    ]


class BatchResponse(Struct, kw_only=True):
    request_id: str
    model_version: str
    results: Annotated[
        list[RecommendationResponse], Meta(description="One answer per request, in order.")
    ]


class AssociationsResponse(Struct, kw_only=True):
    request_id: str
    model_version: str
    item: str
    label: Annotated[str | None, Meta(description="Product description, when known.")]
    known: Annotated[bool, Meta(description="False when the model does not know the item; the "
                                            "answer is then popular items only.")]
    items: list[RecommendedItem]


class ModelCounts(Struct, kw_only=True):
    n_baskets: int
    n_items: int
    n_rules: int


class ModelInfo(Struct, kw_only=True):
    model_version: str
    created_at: str | None
    basketry_version: str | None
    format_version: int | None
    reference: Annotated[str, Meta(description="The model reference the service was given.")]
    loaded_at: Annotated[str, Meta(description="When this process loaded the model (UTC).")]
    parameters: dict[str, Any]
    scoring: dict[str, Any]
    counts: ModelCounts
    dataset_fingerprint: str | None
    metrics: Annotated[dict[str, Any], Meta(description="Offline metrics, when present.")]
    unavailable_items: Annotated[
        int, Meta(description="Items of the catalogue file never recommended.")
    ]


class ReloadInfo(Struct, kw_only=True):
    ok: bool
    at: str
    reference: str
    model_version: str | None = None
    error: str | None = None


class Readiness(Struct, kw_only=True):
    ready: bool
    model_version: str | None
    last_reload: ReloadInfo | None


class Health(Struct, kw_only=True):
    status: str


class ReloadRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    model: (
        Annotated[
            str,
            Meta(description="Model reference to switch to; default: the current reference.",
                 min_length=1, max_length=4096),
        ]
        | None
    ) = None


class ReloadResponse(Struct, kw_only=True):
    request_id: str
    status: Annotated[str, Meta(description="'reloaded' or 'unchanged'.")]
    model_version: str
    previous_version: str | None


#: One order as the API documents it; the monitoring side checks it (basketry.monitoring.orders),
#: so that every refusal names its field (orders[3].items[2]) the same way here and in an ingest.
#: printable text, not blank (what the monitoring side accepts; documented in ASCII, which it
#: accepts too, with any printable Unicode besides)
_TEXT = r"^[ -~]*[!-~][ -~]*$"
#: an ISO 8601 time with its zone, well inside the years an order's time may fall in
_TIME = (r"^(199[1-9]|2[01]\d\d)-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T([01]\d|2[0-3]):[0-5]\d"
         r":[0-5]\d(\.\d{1,6})?(Z|[+-](0\d|1[0-3]):[0-5]\d)$")

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["order_id", "time", "items"],
    "properties": {
        "order_id": {"type": "string", "minLength": 1, "maxLength": O.MAX_ORDER_ID,
                     "pattern": _TEXT,
                     "description": "The shop's order id: an order sent again is not counted "
                     "twice."},
        "time": {"oneOf": [{"type": "string", "pattern": _TIME},
                           {"type": "number", "minimum": 631152000, "maximum": 7289654399}],
                 "description": "When it was placed: ISO 8601 with its time zone "
                 "(2024-05-01T12:30:00Z) or seconds since the epoch.",
                 "examples": ["2024-05-01T12:30:00Z"]},
        "items": {"type": "array", "minItems": 1, "maxItems": O.MAX_ITEMS,
                  "items": {"type": "string", "minLength": 1, "maxLength": O.MAX_ITEM,
                            "pattern": _TEXT},
                  "description": "The items bought (item codes, not blank)."},
        "customer": {"type": "string", "minLength": 1, "maxLength": O.MAX_CUSTOMER,
                     "pattern": _TEXT,
                     "description": "The customer: stored "
                     "only when the server has a customer key, and then keyed (HMAC)."},
        "request_ids": {"type": "array", "maxItems": O.MAX_REQUEST_IDS,
                        "items": {"type": "string", "minLength": 1,
                                  "maxLength": O.MAX_REQUEST_ID,
                                  "pattern": _TEXT},
                        "description": "Request ids of the recommendations shown for this "
                        "order (X-Request-ID of their answers)."},
    },
}


class OrdersRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    orders: Annotated[list[dict[str, Any]], Meta(
        min_length=1, extra_json_schema={"items": ORDER_SCHEMA},
        description="The completed orders, at least one, at most BASKETRY_MAX_ORDERS (100 by "
        "default).")]


class OrdersResponse(Struct, kw_only=True):
    request_id: str
    #: orders in the request
    received: int
    #: orders new to the store
    new: int
    #: orders whose id was already stored (left as they were)
    existing: int


class FieldError(Struct, kw_only=True):
    """One invalid field of a request."""

    field: Annotated[str | None, Meta(description="The field, e.g. basket[2] (null: the body "
                                                  "as a whole).")]
    message: str


class ErrorResponse(Struct, kw_only=True):
    """An error: an RFC 9457 problem document (``application/problem+json``: ``type``,
    ``title``, ``status``, ``detail``, ``instance``) that keeps basketry's own fields
    (``error``, ``message``, ``field``, ``request_id``) and lists every invalid field."""

    type: Annotated[str, Meta(description="The problem type: `urn:basketry:problem:` and the "
                                          "`error` code (an identifier, not a page).")]
    title: Annotated[str, Meta(description="A short summary of the problem type.")]
    status: Annotated[int, Meta(description="The HTTP status code.")]
    detail: Annotated[str, Meta(description="What went wrong in this request (= `message`).")]
    instance: Annotated[str, Meta(description="This occurrence: `urn:basketry:request:` and "
                                              "the request id.")]
    error: Annotated[str, Meta(description="Machine-readable error code.")]
    message: str
    field: Annotated[str | None, Meta(description="The request field at fault, e.g. basket[2] "
                                                  "(the first of `errors`).")]
    request_id: str
    errors: Annotated[list[FieldError], Meta(description="Every invalid field found, the "
                                             "first being `field` (empty when no field is at "
                                             "fault).")]


#: An item has a character other than ASCII white space (documented as this pattern, checked
#: by ``service.check_items``). Spelled out, not ``\S``: Python's and ECMAScript's (JSON Schema)
#: regular expressions disagree on what ``\s`` holds (Python's includes U+001C..U+001F).
NOT_BLANK = r"[^ \t\n\r\f\v]"


@dataclass(frozen=True)
class RequestSchemas:
    """The request types of one application, with its limits as constraints."""

    recommendation: type[Struct]
    batch: type[Struct]


def build_schemas(
    *, max_basket: int, max_k: int, default_k: int, max_exclude: int, max_batch: int,
    max_item_length: int,
) -> RequestSchemas:
    item = Annotated[
        str,
        # not blank either (NOT_BLANK), checked after decoding: see service.check_items
        Meta(min_length=1, max_length=max_item_length,
             description="An item (product code) as in the training data: not blank.",
             examples=["85123A"]),
    ]
    k = Annotated[
        int, Meta(ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")
    ]
    # Litestar documents a list's own constraints but not those of its elements: say them again
    item_schema = {"extra": {"unique_items": True, "items": {
        "type": "string", "minLength": 1, "maxLength": max_item_length, "pattern": NOT_BLANK,
        "description": "An item (product code) as in the training data: not blank.",
        "examples": ["85123A"]}}}
    basket = Annotated[
        list[item],
        Meta(max_length=max_basket, extra_json_schema=item_schema,
             description=f"Items already in the cart, at most {max_basket}, no duplicates; "
             "empty for popular items."),
    ]
    exclude = Annotated[
        list[item],
        Meta(max_length=max_exclude, extra_json_schema=item_schema,
             description=f"Items never to recommend, at most {max_exclude}, no duplicates."),
    ]
    recommendation = msgspec.defstruct(
        "RecommendationRequest",
        [("basket", basket), ("k", k, default_k), ("exclude", exclude, msgspec.field(
            default_factory=list))],
        kw_only=True,
        forbid_unknown_fields=True,
    )
    requests = Annotated[
        list[recommendation],  # type: ignore[valid-type]
        Meta(min_length=1, max_length=max_batch,
             description=f"Between 1 and {max_batch} recommendation requests."),
    ]
    batch = msgspec.defstruct(
        "BatchRequest", [("requests", requests)], kw_only=True, forbid_unknown_fields=True
    )
    return RequestSchemas(recommendation=recommendation, batch=batch)
