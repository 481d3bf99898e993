"""The API's request and response documents (msgspec Structs, also the OpenAPI schema).

Request types carry the configured limits as constraints, so they are built per application by
:func:`build_schemas`; responses are fixed types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct


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


class ErrorResponse(Struct, kw_only=True):
    error: Annotated[str, Meta(description="Machine-readable error code.")]
    message: str
    field: Annotated[str | None, Meta(description="The request field at fault, e.g. basket[2].")]
    request_id: str


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
