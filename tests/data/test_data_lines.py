"""The compiled reader of ASCII basket lines gives exactly what the general (Arrow) path gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from basketry.data import DataError, read_baskets
from basketry.data import readers as R


def _both(path, monkeypatch, **kw):
    fast = read_baskets(path, **kw)
    with monkeypatch.context() as m:
        m.setattr(R, "_ASCII_FAST_PATH", False)
        slow = read_baskets(path, **kw)
    return fast, slow


def _same(a, b) -> None:
    assert a.report == b.report
    assert a.indptr.dtype == b.indptr.dtype and a.indices.dtype == b.indices.dtype
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert list(a.items) == list(b.items)
    assert a.items.dtype == b.items.dtype


WORDS = ["a", "b", "ab", "milk", "x1", "tea bag", "long-item-name-over-8", "long-item-name-over-9",
         "Z", "0", "10", "9",
         # integers take the direct table unless they have a leading zero, a sign or 7+ digits
         "1", "01", "001", "00", "-1", "+1", "1e3", "999999", "1000000", "0999999", "123456",
         "1234567", "1048576"]
GAPS = [" ", "  ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", " \t "]


@pytest.mark.parametrize("seed", range(40))
def test_random_files_match_the_general_path(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    comma = seed % 2 == 0
    lines = []
    for _ in range(rng.randint(1, 30)):
        k = rng.randint(0, 6)
        words = [rng.choice(WORDS) for _ in range(k)]
        if comma:
            words = [rng.choice(["", " ", ""]) + w + rng.choice(["", " ", "\t"]) for w in words]
            if rng.random() < 0.2:
                words.append(rng.choice(["", "  "]))
            line = ",".join(words)
        else:
            words = [w.replace(" ", "_") for w in words]
            line = "".join(w + rng.choice(GAPS) for w in words)
        lines.append(rng.choice(["", " ", "\t"]) + line + rng.choice(["", "\r", " "]))
    text = "\n".join(lines) + rng.choice(["", "\n", "\n\n"])
    if not any(c.isalnum() for c in text):
        text += "\nq"
    path = tmp_path / ("b.csv" if comma else "b.dat")
    path.write_bytes(text.encode())
    try:
        fast, slow = _both(path, monkeypatch)
    except DataError as e:
        with monkeypatch.context() as m:
            m.setattr(R, "_ASCII_FAST_PATH", False)
            with pytest.raises(DataError) as e2:
                read_baskets(path)
        assert str(e) == str(e2.value)
        return
    _same(fast, slow)


@pytest.mark.parametrize("sep", [";", "|", "\t", " "])
def test_given_separators(tmp_path, monkeypatch, sep):
    path = tmp_path / "b.txt"
    path.write_text(f"a{sep}b{sep} c\n\nb{sep}{sep}a{sep}a\n c \n")
    fast, slow = _both(path, monkeypatch, sep=sep)
    _same(fast, slow)


def test_only_blank_items_is_the_same_error(tmp_path, monkeypatch):
    path = tmp_path / "b.csv"
    path.write_text(",\n , \n")
    with pytest.raises(DataError) as fast:
        read_baskets(path)
    with monkeypatch.context() as m:
        m.setattr(R, "_ASCII_FAST_PATH", False)
        with pytest.raises(DataError) as slow:
            read_baskets(path)
    assert str(fast.value) == str(slow.value)
