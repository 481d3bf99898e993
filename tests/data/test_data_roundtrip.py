"""Property: random baskets written as long CSV, long Parquet and basket lines read back equal."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basketry.data import fingerprint, read_baskets
from basketry.data.baskets import Baskets

ALPHABET = st.sampled_from("abcxyz0179-_/.&'\" éü日Ω")
ITEM = st.text(ALPHABET, min_size=1, max_size=8).map(str.strip).filter(bool)
BASKETS = st.lists(st.lists(ITEM, min_size=1, max_size=8), min_size=1, max_size=40)


def as_sets(b: Baskets) -> list[frozenset[str]]:
    return [frozenset(b.basket(i)) for i in range(b.n_baskets)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(baskets=BASKETS, data=st.data())
def test_formats_round_trip(baskets, data):
    expected = [frozenset(b) for b in baskets]
    # long rows in a shuffled order with some rows repeated; ids in first-appearance order
    rows = [(f"t{i}", x) for i, b in enumerate(baskets) for x in b]
    order = data.draw(st.permutations(range(len(rows))))
    shuffled = [rows[i] for i in order]
    shuffled += data.draw(st.lists(st.sampled_from(rows), max_size=5))
    first_seen = list(dict.fromkeys(t for t, _ in shuffled))
    expected_long = [expected[int(t[1:])] for t in first_seen]

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        long_csv = tmp / "long.csv"
        with open(long_csv, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["transaction", "item"])
            w.writerows(shuffled)
        long_parquet = tmp / "long.parquet"
        pq.write_table(
            pa.table({"transaction": [t for t, _ in shuffled], "item": [x for _, x in shuffled]}),
            long_parquet,
            row_group_size=max(1, len(shuffled) // 3),
        )
        lines = tmp / "baskets.basket"
        # basket lines as CSV writes them: an item holding a quote is quoted, its quotes doubled
        with open(lines, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(baskets)

        from_csv = read_baskets(long_csv)
        from_parquet = read_baskets(long_parquet)
        from_lines = read_baskets(lines, sep=",")

    assert as_sets(from_csv) == expected_long
    assert as_sets(from_parquet) == expected_long
    assert list(from_csv.basket_ids) == first_seen == list(from_parquet.basket_ids)
    assert as_sets(from_lines) == expected
    vocab = sorted({x for b in baskets for x in b})
    for b in (from_csv, from_parquet, from_lines):
        assert list(b.items) == vocab
    fp = fingerprint(Baskets.from_lists(baskets))
    assert fingerprint(from_csv) == fingerprint(from_parquet) == fingerprint(from_lines) == fp
