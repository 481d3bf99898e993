"""An event's item lists as their columns hold them: JSON arrays, whatever the items."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from basketry.monitoring.schema import decode_items, encode_items

ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# any text an item may be (serving refuses only blank items), lone surrogates aside: they
# cannot be sent as UTF-8 at all
TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)


@given(st.lists(TEXT, max_size=8))
def test_item_lists_are_exactly_what_json_writes_and_read_back(items):
    for value in (items, tuple(items)):
        text = encode_items(value)
        assert text == ENCODER.encode(list(items))
        assert decode_items(text) == list(items)


def test_items_that_need_escaping_take_the_encoder():
    items = ['a"b', "c\\d", "e\x1ff", "tab\there", "line\u2028sep", "żółw", "22423"]
    assert encode_items(items) == ENCODER.encode(items)
    assert [decode_items(encode_items([i])) for i in items] == [[i] for i in items]
    assert encode_items([]) == encode_items(()) == "[]"
