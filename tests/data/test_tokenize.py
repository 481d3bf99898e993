"""The basket-line tokenizer kernel (``kernels.tokenize``, ahead of time or JIT as the process
runs it) against a plain Python reading of the same rules, output by output: lines, items read,
blank items, each kept token's line and code, each code's first occurrence."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basketry.data._compiled import kernels

WHITESPACE = frozenset([*range(9, 14), *range(28, 33)])  # str.isspace on ASCII
TOKEN = re.compile(rb"[^\x09-\x0d\x1c-\x20]+")
COMMA = ord(",")


def reference(data: bytes, sep: int) -> tuple:
    """The tokenizer's outputs as its docstrings state them, with bytes and dicts."""
    n = len(data)
    n_lines = items_read = blank = 0
    t_line: list[int] = []
    t_code: list[int] = []
    codes: dict[bytes, int] = {}
    first: list[tuple[int, int]] = []
    pos = 0
    while pos < n:
        end = data.find(b"\n", pos)
        end = n if end < 0 else end
        ls, le = pos, end
        while ls < le and data[ls] in WHITESPACE:
            ls += 1
        while le > ls and data[le - 1] in WHITESPACE:
            le -= 1
        line = n_lines
        n_lines += 1
        pos = end + 1
        if ls == le:
            continue
        if sep < 0:
            spans = [m.span() for m in TOKEN.finditer(data, ls, le)]
        else:
            spans = []
            ts = ls
            for k in [*(i for i in range(ls, le) if data[i] == sep), le]:
                a, b = ts, k
                while a < b and data[a] in WHITESPACE:
                    a += 1
                while b > a and data[b - 1] in WHITESPACE:
                    b -= 1
                spans.append((a, b))
                ts = k + 1
        for a, b in spans:
            items_read += 1
            if a == b:
                blank += 1
                continue
            word = data[a:b]
            if word not in codes:
                codes[word] = len(codes)
                first.append((a, b))
            t_line.append(line)
            t_code.append(codes[word])
    return (n_lines, items_read, blank, t_line, t_code,
            [a for a, _ in first], [b for _, b in first])


def check(data: bytes, sep: int) -> tuple:
    got = kernels.tokenize(np.frombuffer(data, dtype=np.uint8), sep)
    want = reference(data, sep)
    n_lines, items_read, blank, t_line, t_code, u_start, u_end = got
    assert (int(n_lines), int(items_read), int(blank)) == want[:3]
    for array, dtype, expected in zip((t_line, t_code, u_start, u_end),
                                      (np.int32, np.int32, np.int64, np.int64),
                                      want[3:], strict=True):
        assert array.dtype == dtype and array.ndim == 1
        assert array.tolist() == expected
    return want


def _ids(values: list[str]) -> str:
    return " ".join(values)


CASES = {
    "empty": b"",
    "one newline": b"\n",
    "only newlines": b"\n\n\n",
    "only whitespace": b" \t\n\x0b\x0c\r\n\x1c\x1d\x1e\x1f \n",
    "crlf": b"1 2\r\n3 4\r\n\r\n5\r\n",
    "every whitespace byte": b"".join(b"%d%c" % (i, c) for i, c in enumerate(sorted(WHITESPACE)))
                             + b"x\x0b\x0b\x1f\x1cy\n",
    "leading and trailing": b"  1 2  \n\t3\t\n \x1f4 5\x1c \n",
    "last line without newline": b"1 2\n3",
    "last line of whitespace": b"1 2\n  \t",
    "two newlines at the end": b"1 2\n3\n\n",
    "leading zeros": b"007 0 00 07 0 007 000 0\n0 00\n",
    "six and seven digits": b"999999 1000000 123456 1234567 0999999 999999 1234567\n",
    "2**20 boundaries": b"1048575 1048576 1048577 104857 1048575 1048576\n",
    "not decimal": b"a b 1a a1 -1 +1 1e3 1.5 ab 1a a1 12x 12 x\n",
    "digits then letters at the end": b"12 12ab",
    "long tokens": (b"abcdefgh abcdefghi abcdefghj abcdefgh abcdefghij abcdefghi\n"
                    b"12345678 123456789 123456780 12345678 123456789\n"
                    b"abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyZ\n"),
    "non-ascii bytes": "caf\u00e9 th\u00e9 caf\u00e9 1\u00e9 \u00e91\n".encode(),
    "separator bytes in whitespace mode": b"1,2 , 3,,4 ,\n",
}


@pytest.mark.parametrize("sep", [-1, COMMA, ord("\t"), ord(" ")],
                         ids=["whitespace", "comma", "tab", "space"])
@pytest.mark.parametrize("name", list(CASES))
def test_tricky_inputs_match_the_reference(name, sep):
    check(CASES[name], sep)


def test_the_reference_on_a_case_worked_out_by_hand():
    data = b" 7 a\t007\r\n\n7  b\n a , ,7"
    assert reference(data, -1) == (
        4, 8, 0, [0, 0, 0, 2, 2, 3, 3, 3], [0, 1, 2, 0, 3, 1, 4, 5],
        [1, 3, 5, 14, 19, 21], [2, 4, 8, 15, 20, 23])
    assert reference(data, COMMA) == (
        4, 5, 1, [0, 2, 3, 3], [0, 1, 2, 3], [1, 11, 17, 22], [8, 15, 18, 23])
    check(data, -1)
    check(data, COMMA)


@pytest.mark.parametrize("sep", [-1, COMMA])
@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n", b" "])
def test_separator_cases_and_endings(sep, ending):
    data = b"a, b,,c ,\n , \n\n1,2 , 3\n\t,\t\n,x"
    if sep < 0:
        data = data.replace(b",", b" ")
    check(data + ending, sep)


@pytest.mark.parametrize("sep", [-1, COMMA])
def test_many_distinct_words_grow_the_hash_table(sep):
    # past 4096 slots (and their rehash) several times, and past the first-occurrence arrays
    rng = random.Random(7)
    words = [f"w{i}" for i in range(12000)] + [f"item-{i:012d}" for i in range(3000)]
    lines = []
    for _ in range(3000):
        k = rng.randint(0, 12)
        lines.append(_ids([rng.choice(words) for _ in range(k)]))
    data = "\n".join(lines).encode()
    if sep >= 0:
        data = data.replace(b" ", b",")
    want = check(data, sep)
    assert len(want[5]) > 8192


@pytest.mark.parametrize("sep", [-1, COMMA])
def test_many_tokens_and_direct_codes_grow_the_outputs(sep):
    # more tokens than the first guess (a sixth of the bytes) and codes past 1024, all direct
    rng = random.Random(3)
    data = "\n".join(_ids([str(rng.randrange(5000)) if rng.random() < 0.5 else "1"
                           for _ in range(rng.randint(1, 40))])
                     for _ in range(2000)).encode()
    if sep >= 0:
        data = data.replace(b" ", b",")
    want = check(data, sep)
    assert len(want[3]) > len(data) // 6 + 16 and len(want[5]) > 1024


def test_mixed_direct_and_hashed_codes_interleave_in_first_appearance_order():
    data = b"5 x 005 5 y 1234567 x 0 00 3\n"
    want = check(data, -1)
    assert want[4] == [0, 1, 2, 0, 3, 4, 1, 5, 6, 7]


def test_real_files_match_the_reference(shared_data):
    for name, sep in (("T10I4D100K.dat", -1), ("retail.dat", -1), ("groceries.csv", COMMA)):
        path = shared_data / name
        if path.is_file():
            check(path.read_bytes(), sep)


ALPHABET = b"0123456789abZ \t\r\n,"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(st.sampled_from(ALPHABET), max_size=120).map(bytes),
       sep=st.sampled_from([-1, COMMA, ord(" ")]))
def test_random_bytes_match_the_reference(data, sep):
    check(data, sep)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.text("0123456789ab", min_size=1, max_size=10), min_size=1, max_size=30),
       picks=st.lists(st.integers(0, 10**6), max_size=3000),
       gaps=st.lists(st.sampled_from([" ", "\t", "\n", " \r\n", "  "]), min_size=1, max_size=5))
def test_random_long_files_match_the_reference(words, picks, gaps):
    # long enough to make the output arrays grow and the scan resume
    text = "".join(words[p % len(words)] + gaps[p % len(gaps)] for p in picks)
    check(text.encode(), -1)
    check(text.replace("\t", ",").encode(), COMMA)
