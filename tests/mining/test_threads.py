"""FP-Growth with several threads (``n_jobs``): the same itemsets, in the same order, as one
thread, whatever the constraints; budgets and bad values behave as with one thread."""

from __future__ import annotations

import numpy as np
import pytest

from basketry.mining import AssociationMiner, BudgetExceeded, MiningError, frequent_itemsets

from .conftest import load_baskets


def _same(a, b) -> None:
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.counts, b.counts)


@pytest.mark.parametrize(
    ("name", "support", "kwargs"),
    [
        ("retail.dat", 0.001, {}),
        ("T10I4D100K.dat", 0.002, {}),
        ("chess.dat", 0.7, {}),
        ("mushroom.dat", 0.2, {"max_len": 3}),
        ("retail.dat", 0.0005, {"consequents": ["39", "48", "41"]}),
        ("retail.dat", 0.0005, {"antecedents": [str(i) for i in range(0, 2000)],
                                "consequents": ["39", "48", "32", "38"]}),
    ],
)
def test_threads_find_what_one_thread_finds(name, support, kwargs):
    b = load_baskets(name)
    one = frequent_itemsets(b, support, n_jobs=1, **kwargs)
    assert len(one) > 100
    for jobs in (2, 3, None, -1):
        _same(one, frequent_itemsets(b, support, n_jobs=jobs, **kwargs))


def test_threads_report_progress_to_the_end():
    b = load_baskets("retail.dat")
    seen: list[float] = []
    fi = frequent_itemsets(b, 0.001, n_jobs=2, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 10
    _same(fi, frequent_itemsets(b, 0.001, n_jobs=1))


def test_threads_stop_at_the_itemset_budget():
    b = load_baskets("chess.dat")
    with pytest.raises(BudgetExceeded) as info:
        frequent_itemsets(b, 0.5, max_itemsets=20_000, n_jobs=2)
    assert info.value.found > 20_000
    assert "max_itemsets=20,000" in str(info.value)


@pytest.mark.parametrize("jobs", [2, 3])
def test_threads_together_never_hold_more_than_the_budget(jobs):
    """Chunks mined at once share what is left of the budget: the itemsets held when it
    stops are within it (each chunk given all of it, two threads held twice as many)."""
    b = load_baskets("mushroom.dat")
    limit = len(frequent_itemsets(b, 0.2, n_jobs=1, max_len=4)) // 2
    with pytest.raises(BudgetExceeded, match="stopped after finding") as info:
        frequent_itemsets(b, 0.2, max_itemsets=limit, n_jobs=jobs, max_len=4)
    assert limit < info.value.found <= limit + jobs


def test_a_budget_that_holds_everything_is_not_refused_by_a_chunk_past_its_share():
    """A chunk past its share of the budget is mined again alone: a budget exactly the size
    of the result still succeeds, with the single thread's itemsets."""
    b = load_baskets("mushroom.dat")
    one = frequent_itemsets(b, 0.2, n_jobs=1, max_len=4)
    for jobs in (2, 3):
        _same(one, frequent_itemsets(b, 0.2, n_jobs=jobs, max_len=4, max_itemsets=len(one)))


def test_estimator_takes_n_jobs_and_results_do_not_depend_on_it():
    b = load_baskets("retail.dat")
    one = AssociationMiner(min_support=0.001, min_confidence=0.1, n_jobs=1).fit(b)
    two = AssociationMiner(min_support=0.001, min_confidence=0.1, n_jobs=2).fit(b)
    assert two.get_params()["n_jobs"] == 2
    for name in ("antecedent_indices", "consequent_indices", "count", "antecedent_count"):
        assert np.array_equal(getattr(one.rules_arrays_, name), getattr(two.rules_arrays_, name))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_n_jobs_is_refused_naming_it(bad):
    with pytest.raises(MiningError, match="n_jobs"):
        AssociationMiner(n_jobs=bad).fit([["a", "b"], ["a"]])
    with pytest.raises(MiningError, match="n_jobs"):
        frequent_itemsets([["a", "b"], ["a"]], 1, n_jobs=bad)


def test_automatic_thread_count_keeps_tree_copies_within_a_quarter_of_memory():
    from basketry.mining.itemsets import threads_for_memory

    gb = 2**30
    assert threads_for_memory(2, tree_bytes=14 * 2**20, available=12 * gb) == 2
    # 16 cores, a 0.5 GB tree, 8 GB free: a quarter is 2 GB, so 4 copies, 5 threads in all
    assert threads_for_memory(16, tree_bytes=gb // 2, available=8 * gb) == 5
    assert threads_for_memory(16, tree_bytes=4 * gb, available=8 * gb) == 1  # no room: one
    assert threads_for_memory(16, tree_bytes=gb, available=None) == 16  # unknown: all
    assert threads_for_memory(3, tree_bytes=0, available=gb) == 3
