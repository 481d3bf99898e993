"""``POST /v1/orders``: the shop's completed orders into the monitoring store.

Orders are the shop's data, not samples: they are never queued or dropped like recommendation
events. Each request is checked whole (every order, by the monitoring side's validation, which
names the field: ``orders[3].items[2]``) and then written synchronously in one call to the
store, in a thread (off the event loop) bounded by ``BASKETRY_MONITOR_CONNECT_TIMEOUT``: a
store that is down or too slow answers 503 and the shop sends the orders again; order ids make
the retry safe (an id already stored is counted ``existing``, never twice).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from basketry.monitoring import OrderError, parse_orders
from basketry.serving.capture import Capture, CaptureError
from basketry.serving.decoding import undecodable_body
from basketry.serving.errors import ApiError


class OrderIntake:
    """Checks and stores the orders of one request (see the module's docstring)."""

    def __init__(self, capture: Capture, max_orders: int) -> None:
        self.capture = capture
        self.max_orders = max_orders
        self.timeout = capture.settings.connect_timeout

    def check(self, body: bytes) -> list[Any]:
        """The orders of ``body`` (``{"orders": [...]}``), checked; 400 or 422 naming the
        field otherwise."""
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_body", undecodable_body(body, exc)) from None
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request",
                           f"Expected an object with `orders`, not {_kind(data)}")
        unknown = sorted(set(data) - {"orders"})
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown field `{unknown[0]}`", unknown[0])
        orders = data.get("orders")
        if orders is None:
            raise ApiError(422, "invalid_request", "missing required field `orders`", "orders")
        if not isinstance(orders, list):
            raise ApiError(422, "invalid_request", f"Expected an array, not {_kind(orders)}",
                           "orders")
        if not 1 <= len(orders) <= self.max_orders:
            raise ApiError(422, "invalid_request", f"Expected between 1 and {self.max_orders} "
                           f"orders, got {len(orders)}", "orders")
        try:
            return parse_orders(orders)
        except OrderError as exc:
            raise ApiError(422, "invalid_order", str(exc), exc.field) from None

    async def add(self, body: bytes) -> tuple[int, int, int]:
        """Check then store the orders of ``body``: (received, new, already known)."""
        orders = self.check(body)
        try:
            added = await asyncio.wait_for(asyncio.to_thread(self._write, orders),
                                           self.timeout)
        except TimeoutError:
            raise ApiError(503, "store_unavailable", f"the monitoring store did not answer "
                           f"within {self.timeout:g} s; send the orders again later") from None
        return len(orders), added.new, added.existing

    def _write(self, orders: list[Any]) -> Any:
        # failures are one line naming the store (password masked), never a traceback
        try:
            store = self.capture.open_store()
        except CaptureError as exc:  # the monitor extra missing, or the store unusable
            raise ApiError(503, "store_unavailable", str(exc)) from None
        from basketry.monitoring.store import MonitorStoreError  # importable: the store is

        try:
            return store.add_orders(orders)
        except MonitorStoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")
