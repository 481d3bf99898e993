from __future__ import annotations

import numpy as np
import pytest

from basketry.data.synthetic import SyntheticSpec, generate


def test_same_seed_same_data_other_seed_other_data():
    spec = SyntheticSpec(n_baskets=2_000, n_items=300, n_patterns=10, seed=7)
    a, b = generate(spec), generate(spec)
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    c = generate(SyntheticSpec(n_baskets=2_000, n_items=300, n_patterns=10, seed=8))
    assert not np.array_equal(a.indices[:100], c.indices[:100])


def test_csr_invariants_and_time_order():
    b = generate(SyntheticSpec(n_baskets=5_000, n_items=1_000, n_patterns=20))
    assert b.n_baskets == 5_000 and b.indptr[0] == 0 and b.indptr[-1] == b.indices.shape[0]
    assert (b.sizes >= 1).all()
    for row in range(0, 5_000, 97):
        ids = b.indices[b.indptr[row] : b.indptr[row + 1]]
        assert (np.diff(ids) > 0).all()  # sorted, unique
    assert (np.diff(b.timestamps.astype(np.int64)) >= 0).all()
    assert b.indices.max() < 1_000


def test_popularity_is_skewed_and_patterns_co_occur():
    spec = SyntheticSpec(n_baskets=20_000, n_items=2_000, n_patterns=1, pattern_size=(3, 3),
                         pattern_rate=0.2)
    b = generate(spec)
    counts = np.sort(b.item_counts())[::-1]
    assert counts[0] > 20 * np.median(counts)  # Zipf: the head dwarfs the middle
    # the single planted pattern is in about 20% of baskets: its items co-occur far above chance
    (pattern,) = b.report["patterns"]
    ids = [int(x[1:]) for x in pattern]
    rows = np.repeat(np.arange(b.n_baskets), b.sizes)
    holders = [set(rows[b.indices == i].tolist()) for i in ids]
    together = len(set.intersection(*holders))
    chance = b.n_baskets * np.prod([len(h) / b.n_baskets for h in holders])
    assert together >= 0.19 * b.n_baskets
    assert together > 3 * chance


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="n_baskets"):
        generate(SyntheticSpec(n_baskets=0))
    with pytest.raises(ValueError, match="pattern_rate"):
        generate(SyntheticSpec(n_baskets=10, pattern_rate=2))
