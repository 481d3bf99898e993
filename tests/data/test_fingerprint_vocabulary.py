"""The fingerprint's vocabulary sorted in Python (small vocabularies: no pandas or
pyarrow.compute import) and by Arrow (large ones) gives the same order, bytes and fingerprint."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from basketry.data import fingerprint
from basketry.data.baskets import Baskets

from .test_data_profile import reference_fingerprint

# the module (basketry.data.profile, the attribute, is the function of that name)
profile_module = importlib.import_module("basketry.data.profile")

# byte order differs from code-point order only past the BMP; "Z" < "a" < "é" < "日" < "😀"
TRICKY = ["b", "a", "", "ab", "a\x00", "Z", "é", "e\u0301", "日本", "😀", "\uffff", "a b", "~"]


def both_ways(strings: list[str], monkeypatch) -> tuple[tuple, tuple]:
    python = profile_module._sorted_vocabulary(strings)
    monkeypatch.setattr(profile_module, "_ARROW_SORT_FROM", 0)
    arrow = profile_module._sorted_vocabulary(strings)
    monkeypatch.undo()
    return python, arrow


@pytest.mark.parametrize("strings", [TRICKY, ["only"], [f"i{x}" for x in range(2000, 0, -7)]])
def test_python_and_arrow_sort_the_same(strings, monkeypatch):
    (order, lengths, data), (a_order, a_lengths, a_data) = both_ways(strings, monkeypatch)
    assert order.tolist() == a_order.tolist()
    assert lengths.dtype == a_lengths.dtype == np.dtype("<u8")
    assert lengths.tolist() == a_lengths.tolist()
    assert data == a_data
    expected = sorted(strings, key=lambda s: s.encode("utf-8"))
    assert [strings[i] for i in order] == expected
    assert data == b"".join(s.encode("utf-8") for s in expected)


def test_fingerprint_is_the_same_either_way(monkeypatch):
    b = Baskets.from_lists([["b", "é"], ["日本", "a"], ["😀"], ["Z", "a", "b"], ["a\x00"]])
    python = fingerprint(b)
    monkeypatch.setattr(profile_module, "_ARROW_SORT_FROM", 0)
    assert fingerprint(b) == python == reference_fingerprint(b)
