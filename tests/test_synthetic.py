from __future__ import annotations

import numpy as np
import pytest

from basketry.data.synthetic import SyntheticSpec, generate
from basketry.data.synthetic_drift import parse_drift


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


# planted changes (basketry generate --drift): known kind, size and day

def _split(b, first):
    return b.subset(np.arange(first)), b.subset(np.arange(first, b.n_baskets))


def _holders(b, item: str) -> np.ndarray:
    has = np.zeros(b.n_baskets, dtype=bool)
    rows = np.repeat(np.arange(b.n_baskets), b.sizes)
    has[rows[b.indices == int(item[1:])]] = True
    return has


_BASE = dict(n_baskets=30_000, n_items=1_500, n_patterns=40, days=30, seed=4)


def test_without_changes_the_history_is_unchanged_and_before_the_day_too():
    plain = generate(SyntheticSpec(**_BASE))
    assert "drifts" not in plain.report
    for drift in ("popularity:15:0.5", "new-items:15:0.05", "break-rule:15",
                  "basket-size:15:1.5", "basket-size:15:0.6"):
        b = generate(SyntheticSpec(**_BASE, drifts=(parse_drift(drift),)))
        (planted,) = b.report["drifts"]
        first = planted["first_basket"]
        day = (b.timestamps[first] - plain.timestamps[0]) // np.timedelta64(1, "D")
        assert day == 15 and (b.timestamps[first - 1] - plain.timestamps[0]) // np.timedelta64(
            1, "D") == 14
        assert np.array_equal(b.timestamps, plain.timestamps)
        assert np.array_equal(b.indptr[: first + 1], plain.indptr[: first + 1])
        n_before = int(plain.indptr[first])
        assert np.array_equal(b.indices[:n_before], plain.indices[:n_before])
        assert not np.array_equal(b.indices[n_before:n_before + 5_000],
                                  plain.indices[n_before:n_before + 5_000])
        for row in range(first, b.n_baskets, 101):  # still sorted and unique per basket
            assert (np.diff(b.indices[b.indptr[row]:b.indptr[row + 1]]) > 0).all()


def test_popularity_lifts_the_top_items():
    b = generate(SyntheticSpec(**_BASE, drifts=(parse_drift("popularity:10:1.0"),)))
    (planted,) = b.report["drifts"]
    before, after = _split(b, planted["first_basket"])
    top = [int(x[1:]) for x in planted["items"]]
    assert len(top) == 10
    # the top items are the most frequent before (random draws and patterns aside)
    assert set(top[:3]) <= set(np.argsort(-before.item_counts())[:15].tolist())
    share = [part.item_counts()[top].sum() / part.indices.shape[0] for part in (before, after)]
    assert share[1] > 1.5 * share[0]


def test_new_items_enter_with_their_share():
    b = generate(SyntheticSpec(**_BASE, drifts=(parse_drift("new-items:10:0.1"),)))
    (planted,) = b.report["drifts"]
    assert b.n_items == 1_510 and planted["items"] == [f"i{i}" for i in range(1_500, 1_510)]
    before, after = _split(b, planted["first_basket"])
    assert before.indices.max() < 1_500
    new_share = (after.indices >= 1_500).mean()
    assert 0.06 < new_share < 0.1  # 10% of the random draws, patterns hold the rest


def test_break_rule_decouples_the_consequent_and_keeps_its_frequency():
    b = generate(SyntheticSpec(**_BASE, drifts=(parse_drift("break-rule:10"),)))
    (planted,) = b.report["drifts"]
    (rule,) = planted["rules"]
    assert rule["antecedent"] and rule["consequent"] not in rule["antecedent"]
    assert set(rule["antecedent"]) | {rule["consequent"]} == set(b.report["patterns"][0])
    before, after = _split(b, planted["first_basket"])
    confidence = []
    for part in (before, after):
        a = np.logical_and.reduce([_holders(part, i) for i in rule["antecedent"]])
        confidence.append((a & _holders(part, rule["consequent"])).sum() / a.sum())
    # before: the pattern's baskets plus chance; after: chance alone (the item's frequency)
    assert confidence[0] > 0.5 and confidence[1] < confidence[0] / 3
    support = [_holders(part, rule["consequent"]).mean() for part in (before, after)]
    assert abs(support[1] - support[0]) < 0.2 * support[0]


def test_basket_size_scales_the_mean_both_ways():
    for factor, low, high in ((1.5, 1.35, 1.55), (0.6, 0.55, 0.75)):
        b = generate(SyntheticSpec(**_BASE, drifts=(parse_drift(f"basket-size:10:{factor}"),)))
        before, after = _split(b, b.report["drifts"][0]["first_basket"])
        assert (after.sizes >= 1).all()
        assert low < after.sizes.mean() / before.sizes.mean() < high


def test_bad_drifts_are_refused_in_one_line():
    for text, match in (("shift:3:1", "KIND:DAY"), ("popularity:3", "popularity:DAY:SIZE"),
                        ("popularity:x:1", "whole number")):
        with pytest.raises(ValueError, match=match):
            parse_drift(text)
    for text, match in (("popularity:30:1", r"day must be in \[0, 30\)"),
                        ("new-items:3:1.5", "SHARE"), ("break-rule:3:0.5", "whole number"),
                        ("basket-size:3:0.05", "FACTOR")):
        with pytest.raises(ValueError, match=match):
            generate(SyntheticSpec(**_BASE, drifts=(parse_drift(text),)))


def test_generate_command_plants_changes_and_refuses_bad_ones(tmp_path):
    from typer.testing import CliRunner

    from basketry.cli import app
    from basketry.data import read_baskets

    out = tmp_path / "drifted.parquet"
    args = ["generate", str(out), "--baskets", "4000", "--items", "300", "--patterns", "10",
            "--days", "10", "--seed", "3"]
    result = CliRunner().invoke(app, [*args, "--drift", "new-items:6:0.2",
                                      "--drift", "basket-size:8:1.5"])
    assert result.exit_code == 0, result.output
    assert "planted new-items from day 6" in result.output
    read = read_baskets(out)
    expected = generate(SyntheticSpec(n_baskets=4000, n_items=300, n_patterns=10, days=10,
                                      seed=3, drifts=(parse_drift("new-items:6:0.2"),
                                                      parse_drift("basket-size:8:1.5"))))
    assert read.n_baskets == 4000 and read.indices.shape[0] == expected.indices.shape[0]
    assert sorted(set(read.items.tolist())) == sorted(set(expected.items.tolist()))
    result = CliRunner().invoke(app, [*args, "--drift", "popularity:10:1"])
    assert result.exit_code == 2 and "day must be in [0, 10)" in result.output
