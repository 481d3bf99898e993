"""The shelf plan of the model being served: ``GET /v1/layout`` (the aisles, or one of them)
and ``GET /v1/layout/items/{item}`` (where one product stands).

The plan is ``<model dir>/layout.json`` (:mod:`basketry.model.layout`, written by ``basketry
layout --save-to-model``), read off the event loop on the first request after a model swap or
after the file changed (a stat per request tells), and kept with its answers' pieces until
then. A missing plan is a 404 naming the model version; a plan that fails its checks (a
tampered file, a wrong checksum) is logged once and answered 503 with one line, and the
service goes on answering everything else.

No ``from __future__ import annotations``: the handlers' parameters carry the settings' limits,
so Litestar reads their annotations as objects (as in :mod:`basketry.serving.routes`).
"""

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from msgspec import Meta, Struct

from basketry.model.layout import LAYOUT_FILE, LayoutPlan, read_layout
from basketry.serving.error_handlers import request_id
from basketry.serving.errors import ApiError, no_model
from basketry.serving.openapi import responses
from basketry.serving.schemas import ErrorResponse
from basketry.serving.state import ModelHolder, Snapshot

log = logging.getLogger("basketry.serving")


# -- the documents ----------------------------------------------------------------------------


class ShelfSlot(Struct, kw_only=True):
    """A product's place on a shelf."""

    item: Annotated[str, Meta(description="The product's item code.")]
    label: Annotated[str | None, Meta(description="Product description, when the plan has one.")]
    position: Annotated[int, Meta(description="Place on the aisle's shelf, 1 first.")]
    fixed: Annotated[bool, Meta(description="An anchor: the plan does not move it.")]
    category: Annotated[str | None, Meta(description="The product's category, when given.")]


class ShelfAisle(Struct, kw_only=True):
    aisle: Annotated[int, Meta(description="Aisle number, 1..A in walking order: aisle i stands "
                                           "next to aisles i-1 and i+1.")]
    capacity: Annotated[int, Meta(description="How many products the aisle holds at most.")]
    items: Annotated[list[ShelfSlot], Meta(description="Its products in shelf order.")]


class ShelfLink(Struct, kw_only=True):
    a: int
    b: int
    weight: Annotated[float, Meta(description="Affinity between the two aisles (the sum of "
                                              "their products' pair weights).")]


class LayoutResponse(Struct, kw_only=True):
    request_id: str
    model_version: Annotated[str, Meta(description="The model being served.")]
    plan_model_version: Annotated[
        str | None, Meta(description="The model version the plan was made from (null for a "
                                     "plan made from baskets); normally `model_version`.")]
    source: Annotated[str, Meta(description="What the plan was made from: model or data.")]
    weighting: Annotated[str, Meta(description="The affinity between products the plan "
                                               "grouped by (lift, confidence, ...).")]
    created_at: str
    n_items: Annotated[int, Meta(description="Products placed by the whole plan.")]
    n_aisles: Annotated[int, Meta(description="Aisles of the whole plan.")]
    aisles: Annotated[list[ShelfAisle], Meta(description="Every aisle in walking order, or "
                                                         "the one asked for.")]
    links: Annotated[list[ShelfLink], Meta(description="The strongest links between aisles "
                                                       "(those touching the aisle asked for).")]
    evaluation: Annotated[dict[str, Any] | None, Meta(
        description="The plan's evaluation on baskets not used to make it, when it was "
                    "evaluated (same-aisle share of co-purchased pairs against a random "
                    "layout...).")]


class LayoutItemResponse(Struct, kw_only=True):
    request_id: str
    model_version: str
    item: str
    label: str | None
    aisle: Annotated[int, Meta(description="The aisle the product stands in.")]
    position: Annotated[int, Meta(description="Its place on the aisle's shelf, 1 first.")]
    fixed: bool
    category: str | None
    shelf_neighbours: Annotated[list[ShelfSlot], Meta(
        description="The products just before and after it on the shelf (none at an end).")]
    aisle_size: Annotated[int, Meta(description="Products in its aisle.")]
    adjacent_aisles: Annotated[list[int], Meta(
        description="The aisles next to its aisle in walking order.")]


# -- the plan of a snapshot -------------------------------------------------------------------


@dataclass(frozen=True)
class _Loaded:
    """What a model directory's plan gave: the answers' pieces, or why there are none."""

    version: str
    missing: bool = False
    error: str | None = None
    plan: LayoutPlan | None = None
    aisles: list[ShelfAisle] = field(default_factory=list)
    links: list[ShelfLink] = field(default_factory=list)
    #: item -> (aisle index, index in the aisle)
    where: dict[str, tuple[int, int]] = field(default_factory=dict)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _load(path: Path, version: str) -> _Loaded:
    if not path.is_file():
        return _Loaded(version, missing=True)
    try:
        plan = read_layout(path)
    except Exception as exc:  # a plan that cannot be read never takes the service down
        # one line without the server's paths: the file is the model's layout.json
        reason = " ".join(str(exc).replace(str(path), LAYOUT_FILE).split()) or type(exc).__name__
        log.error("shelf plan refused: %s", reason, extra={
            "event": "layout_invalid", "model_version": version, "path": str(path)})
        return _Loaded(version, error=reason)
    if plan.model_version is not None and plan.model_version != version:
        log.warning("the shelf plan was made for another model version", extra={
            "event": "layout_version_mismatch", "model_version": version,
            "plan_model_version": plan.model_version, "path": str(path)})
    aisles = [ShelfAisle(aisle=a.aisle, capacity=a.capacity, items=[
        ShelfSlot(item=s.item, label=s.label, position=s.position, fixed=s.fixed,
                  category=s.category) for s in a.items]) for a in plan.aisles]
    where = {s.item: (i, j) for i, a in enumerate(aisles) for j, s in enumerate(a.items)}
    links = [ShelfLink(a=k.a, b=k.b, weight=k.weight)
             for k in sorted(plan.links, key=lambda k: -k.weight)]
    log.info("shelf plan loaded", extra={"event": "layout_loaded", "model_version": version,
                                         "aisles": len(aisles), "items": len(where)})
    return _Loaded(version, plan=plan, aisles=aisles, links=links, where=where)


class ShelfPlans:
    """The plan of the snapshot being served, read once per model directory, version and file
    state (a stat of ``layout.json`` per request notices a plan saved or replaced later)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()

    async def of(self, snap: Snapshot) -> _Loaded:
        path = snap.path / LAYOUT_FILE
        key = (snap.path, snap.version, _stamp(path))
        if key == self._key and self._loaded is not None:
            return self._loaded
        async with self._lock:  # one read at a time: concurrent first requests share it
            if key != self._key or self._loaded is None:
                self._loaded = await asyncio.to_thread(_load, path, snap.version)
                self._key = key
            return self._loaded

    async def plan(self, snap: Snapshot | None) -> _Loaded:
        """The usable plan, or the error to answer: 503 without a model or with a plan that
        fails its checks, 404 without a plan."""
        if snap is None:
            raise no_model()
        loaded = await self.of(snap)
        if loaded.missing:
            raise ApiError(404, "no_layout", f"no shelf plan for model version {snap.version}: "
                           "make one with `basketry layout --save-to-model`")
        if loaded.error is not None:
            raise ApiError(503, "layout_invalid", f"the shelf plan of model version "
                           f"{snap.version} cannot be used: {loaded.error}")
        return loaded


# -- the routes -------------------------------------------------------------------------------

_ERRORS = {
    503: ResponseSpec(ErrorResponse, description="No model is loaded, or its shelf plan "
                      "(layout.json) fails its checks; the message says which."),
}


def layout_routes(holder: ModelHolder, max_item_length: int) -> list[HTTPRouteHandler]:
    """``GET /v1/layout`` and ``GET /v1/layout/items/{item}`` for the model ``holder`` serves."""
    plans = ShelfPlans()

    @get("/v1/layout", tags=["layout"], summary="The shelf plan: products by aisle",
         responses={**responses(422), **_ERRORS,
                    404: ResponseSpec(ErrorResponse, description="The model has no shelf plan, "
                                      "or the plan has no such aisle.")})
    async def layout(
        request: Request,
        aisle: Annotated[int | None, Parameter(ge=1, description="Only this aisle (1..A).")
                         ] = None,
    ) -> LayoutResponse:
        """The shelf plan saved with the model being served (`basketry layout
        --save-to-model`): its aisles in walking order, each with its products in shelf order,
        the strongest links between aisles and the plan's evaluation. `aisle` gives one aisle
        and the links that touch it."""
        snap = holder.current
        loaded = await plans.plan(snap)
        assert snap is not None and loaded.plan is not None
        aisles, links = loaded.aisles, loaded.links
        if aisle is not None:
            if aisle > len(aisles):
                raise ApiError(404, "unknown_aisle", f"the shelf plan of model version "
                               f"{snap.version} has no aisle {aisle} (aisles 1..{len(aisles)})",
                               "aisle")
            aisles = [aisles[aisle - 1]]
            links = [k for k in links if aisle in (k.a, k.b)]
        plan = loaded.plan
        return LayoutResponse(
            request_id=request_id(request), model_version=snap.version,
            plan_model_version=plan.model_version, source=plan.source,
            weighting=plan.weighting, created_at=plan.created_at, n_items=len(loaded.where),
            n_aisles=len(loaded.aisles), aisles=aisles, links=links,
            evaluation=plan.evaluation)

    @get("/v1/layout/items/{item:str}", tags=["layout"],
         summary="Where one product stands: its aisle, its place and its neighbours",
         responses={**responses(422), **_ERRORS,
                    404: ResponseSpec(ErrorResponse, description="The model has no shelf plan, "
                                      "or the plan does not place this product.")})
    async def layout_item(
        request: Request,
        item: Annotated[str, Parameter(description="The product's item code.", min_length=1,
                                       max_length=max_item_length)],
    ) -> LayoutItemResponse:
        """The product's aisle and shelf position in the plan of the model being served, the
        products next to it on the shelf and the aisles next to its aisle."""
        snap = holder.current
        loaded = await plans.plan(snap)
        assert snap is not None
        found = loaded.where.get(item)
        if found is None:
            raise ApiError(404, "unknown_item", f"item {item!r} is not in the shelf plan of "
                           f"model version {snap.version}", "item")
        i, j = found
        shelf = loaded.aisles[i]
        slot = shelf.items[j]
        return LayoutItemResponse(
            request_id=request_id(request), model_version=snap.version, item=slot.item,
            label=slot.label, aisle=shelf.aisle, position=slot.position, fixed=slot.fixed,
            category=slot.category, shelf_neighbours=shelf.items[max(j - 1, 0):j] +
            shelf.items[j + 1:j + 2], aisle_size=len(shelf.items),
            adjacent_aisles=[a for a in (shelf.aisle - 1, shelf.aisle + 1)
                             if 1 <= a <= len(loaded.aisles)])

    return [layout, layout_item]
