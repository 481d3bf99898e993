"""Order validation: every refusal is one line naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from basketry.monitoring.orders import (
    MAX_ITEM,
    MAX_ITEMS,
    MAX_ORDER_ID,
    MAX_REQUEST_IDS,
    Order,
    OrderError,
    parse_order,
    parse_orders,
)

GOOD = {"order_id": "o-1", "time": "2024-05-01T12:00:00Z", "items": ["a", "b"]}


def with_(**changes):
    return {**GOOD, **changes}


def without(name):
    return {k: v for k, v in GOOD.items() if k != name}


@pytest.mark.parametrize(("order", "field", "message"), [
    (without("order_id"), "order.order_id", "required"),
    (with_(order_id=""), "order.order_id", "empty"),
    (with_(order_id="   "), "order.order_id", "empty"),
    (with_(order_id=12), "order.order_id", "expected a string, not int"),
    (with_(order_id="x" * (MAX_ORDER_ID + 1)), "order.order_id", "longer than 128"),
    (with_(order_id="a\nb"), "order.order_id", "control character"),
    (without("time"), "order.time", "required"),
    (with_(time="2024-05-01T12:00:00"), "order.time", "needs its time zone"),
    (with_(time=datetime(2024, 5, 1)), "order.time", "needs its time zone"),
    (with_(time="yesterday"), "order.time", "not an ISO 8601 time"),
    (with_(time=True), "order.time", "not a boolean"),
    (with_(time=float("nan")), "order.time", "finite"),
    (with_(time=1.7e12), "order.time", "outside"),  # milliseconds given as seconds
    (with_(time=[2024]), "order.time", "expected a time, not list"),
    (without("items"), "order.items", "required"),
    (with_(items=[]), "order.items", "empty"),
    (with_(items="abc"), "order.items", "expected a list of strings, not str"),
    (with_(items=["a", 3]), "order.items[1]", "expected a string, not int"),
    (with_(items=["a", ""]), "order.items[1]", "empty"),
    (with_(items=["x" * (MAX_ITEM + 1)]), "order.items[0]", "longer than 256"),
    (with_(items=[f"i{n}" for n in range(MAX_ITEMS + 1)]), "order.items", "more than 10000"),
    (with_(customer=""), "order.customer", "empty"),
    (with_(customer=7), "order.customer", "expected a string"),
    (with_(request_ids="r1"), "order.request_ids", "expected a list"),
    (with_(request_ids=["r"] * (MAX_REQUEST_IDS + 1)), "order.request_ids", "more than 100"),
    (with_(request_ids=[None]), "order.request_ids[0]", "expected a string, not NoneType"),
    (with_(coupon="x"), "order.coupon", "unknown field"),
    ("o-1", "order", "expected an object, not str"),
])
def test_invalid_orders_name_their_field(order, field, message):
    with pytest.raises(OrderError) as info:
        parse_order(order)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_list_names_the_order_by_position():
    with pytest.raises(OrderError, match=r"^orders\[2\]\.time: "):
        parse_orders([GOOD, GOOD, with_(time="2024-05-01")])


@pytest.mark.parametrize("when", [
    "2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00",
    datetime(2024, 5, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp(),
    int(datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()),
])
def test_times_with_a_zone_or_in_epoch_seconds_are_the_same_instant(when):
    assert parse_order(with_(time=when)).time == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()


def test_a_valid_order_is_normalised():
    got = parse_order(with_(items=["b", "a", "b"], customer="c-9", request_ids=["r1", "r1"]))
    assert got == Order("o-1", datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp(), ("b", "a"),
                        "c-9", ("r1",))
    assert parse_order(got) == got
