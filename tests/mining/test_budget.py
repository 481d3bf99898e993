"""The default memory budget, the bounds on the explosion, and the stops they give."""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.data.baskets import Baskets
from basketry.mining import (
    AssociationMiner,
    BudgetExceeded,
    MiningError,
    association_rules,
    frequent_itemsets,
)
from basketry.mining._explosion import Explosion, row_sums, rule_candidates
from basketry.mining._params import (
    BYTES_PER_ITEMSET,
    MEMORY_BUDGET_ENV,
    parse_memory_size,
    resolve_memory_budget,
)

from .conftest import load_baskets

ROOT = Path(__file__).resolve().parents[2]
FORTY = [str(i) for i in range(1, 41)]  # one basket of 40 items: 2**40 - 1 itemsets at count 1


def _run_limited(code: str, tmp_path: Path, *, gb: float = 2.0, env: dict | None = None):
    """Run ``code`` in a fresh Python under RLIMIT_AS = ``gb`` GB."""
    limit = int(gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if k != MEMORY_BUDGET_ENV}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, preexec_fn=cap,
        env=full_env, cwd=ROOT, timeout=300,
    )


FIT_FORTY = """
    import sys
    from basketry.mining import AssociationMiner, BudgetExceeded
    try:
        AssociationMiner(min_support=0.01, n_jobs=1, memory_budget={budget!r}).fit([{items!r}])
    except BudgetExceeded as exc:
        print(exc.what, exc.estimated)
        print(exc, file=sys.stderr)
        sys.exit(3)
"""


def test_one_basket_of_40_items_stops_at_once_under_a_memory_limit(tmp_path):
    done = _run_limited(FIT_FORTY.format(budget=None, items=FORTY), tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["itemsets", "True"]  # stopped by the bound, before mining
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    line = lines[0]
    assert "at least 1,099,511,627,775 frequent itemsets" in line
    assert "the process rlimit" in line  # the default budget came from the 2 GB limit
    assert "max_len=" in line and "no min_support fits" in line


def test_out_of_memory_without_a_budget_is_a_one_line_error(tmp_path):
    # budget off: mining runs into the 2 GB limit; fit turns the MemoryError into the error
    done = _run_limited(FIT_FORTY.format(budget="off", items=FORTY), tmp_path, gb=1.5)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.split() == ["memory", "False"]
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert done.stderr.strip().startswith("mining ran out of memory")


def test_cli_mine_of_a_one_line_file_fails_cleanly(tmp_path):
    data = tmp_path / "one.dat"
    data.write_text(" ".join(FORTY) + "\n")
    out = tmp_path / "model"
    done = _run_limited(
        f"""
        import sys
        sys.argv = ["basketry", "mine", {str(data)!r}, "--out", {str(out)!r}]
        from basketry.cli import main
        main()
        """,
        tmp_path,
        env={"COLUMNS": "400"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert "frequent itemsets" in done.stderr and "max_len" in done.stderr
    assert not out.exists()


def test_default_budget_comes_from_the_rlimit(tmp_path):
    done = _run_limited(
        """
        from basketry.mining._params import resolve_memory_budget
        b = resolve_memory_budget(None)
        print(b.bytes)
        print(b.source)
        """,
        tmp_path,
        gb=2.0,
    )
    size, source = done.stdout.strip().splitlines()
    assert 0 < int(size) <= 2**30  # half of what the 2 GB address space leaves
    assert "rlimit" in source


# --- the bounds are bounds ---------------------------------------------------------------------

baskets_strategy = st.lists(
    st.lists(st.integers(0, 11), max_size=9, unique=True), min_size=1, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(rows=baskets_strategy, min_count=st.integers(1, 5),
       max_len=st.one_of(st.none(), st.integers(1, 4)))
def test_upper_and_lower_bounds_hold(rows, min_count, max_len):
    b = Baskets.from_lists([[f"i{x}" for x in r] for r in rows])
    min_count = min(min_count, b.n_baskets)
    real = len(frequent_itemsets(b, min_count, max_len=max_len, memory_budget="off"))
    ex = Explosion(b.indptr, b.indices, b.item_counts(), np.ones(b.n_items, dtype=bool),
                   b.n_baskets, max_len)
    assert ex.lower(min_count)[0] <= real <= ex.upper(min_count)


@settings(max_examples=100, deadline=None)
@given(rows=baskets_strategy, min_count=st.integers(1, 4), multi=st.booleans(),
       constrain=st.sampled_from(["none", "antecedents", "consequents"]))
def test_rule_candidates_are_exact_when_every_rule_passes(rows, min_count, multi, constrain):
    b = Baskets.from_lists([[f"i{x}" for x in r] for r in rows])
    min_count = min(min_count, b.n_baskets)
    kwargs = {}
    if constrain != "none" and not multi:
        kwargs[constrain] = list(b.items[: max(1, b.n_items // 2)])
    fi = frequent_itemsets(b, min_count, multi_consequent=multi, memory_budget="off", **kwargs)
    rules = association_rules(fi, min_confidence=0.0, memory_budget="off")
    is_a = np.ones(b.n_items, bool) if fi.antecedent_mask is None else fi.antecedent_mask
    is_c = np.ones(b.n_items, bool) if fi.consequent_mask is None else fi.consequent_mask
    per_set = rule_candidates(fi.indptr, fi.indices, is_a, is_c, multi, 1 << 30 if multi else 1)
    assert per_set is not None and per_set.sum() == len(rules)


@given(st.lists(st.lists(st.booleans(), max_size=5), max_size=8))
def test_row_sums(rows):
    indptr = np.cumsum([0] + [len(r) for r in rows])
    flags = np.array([f for r in rows for f in r], dtype=bool)
    assert row_sums(indptr, flags).tolist() == [sum(r) for r in rows]


def test_bounds_on_real_data():
    b = load_baskets("chess.dat")
    ex = Explosion(b.indptr, b.indices, b.item_counts(), np.ones(b.n_items, dtype=bool),
                   b.n_baskets, None)
    min_count = math.ceil(0.6 * b.n_baskets)
    assert ex.lower(min_count)[0] <= 254_944 <= ex.upper(min_count)


# --- the default budget and its overrides ----------------------------------------------------

@pytest.mark.parametrize(
    ("text", "size"),
    [("4G", 4 << 30), ("512m", 512 << 20), ("1.5GB", int(1.5 * 2**30)), ("2000", 2000),
     (2000, 2000), ("64 KiB", 64 << 10), ("off", None), ("OFF", None), ("none", None)],
)
def test_memory_sizes(text, size):
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "4X", "-1G", "0", 0, "G", True, 1.5, "nan"])
def test_bad_memory_sizes(text):
    with pytest.raises(MiningError, match="memory_budget"):
        parse_memory_size(text)


def test_default_budget_follows_the_environment(monkeypatch):
    b = load_baskets("chess.dat")  # 254,944 itemsets at 0.6
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1M")
    assert resolve_memory_budget(None).bytes == 1 << 20
    with pytest.raises(BudgetExceeded) as info:
        AssociationMiner(min_support=0.6).fit(b)
    assert info.value.limit == (1 << 20) // BYTES_PER_ITEMSET
    assert f"{MEMORY_BUDGET_ENV}=1M" in str(info.value)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "off")
    assert resolve_memory_budget(None).bytes is None
    miner = AssociationMiner(min_support=0.6, min_confidence=0.9).fit(b)
    assert len(miner.frequent_itemsets_) == 254_944
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "lots")
    with pytest.raises(MiningError, match=MEMORY_BUDGET_ENV):
        AssociationMiner(min_support=0.6).fit(b)


def test_the_parameter_wins_over_the_environment(monkeypatch):
    b = load_baskets("chess.dat")
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1M")
    miner = AssociationMiner(min_support=0.6, min_confidence=0.9, memory_budget="1G").fit(b)
    assert len(miner.frequent_itemsets_) == 254_944


def test_explicit_max_itemsets_wins(monkeypatch):
    b = load_baskets("chess.dat")
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1M")
    miner = AssociationMiner(min_support=0.6, min_confidence=0.9, max_itemsets=300_000,
                             max_rules=10**7).fit(b)
    assert len(miner.frequent_itemsets_) == 254_944
    with pytest.raises(BudgetExceeded, match=r"max_itemsets=200,000;"):  # no default note
        AssociationMiner(min_support=0.6, max_itemsets=200_000).fit(b)


def test_a_result_that_fits_is_unchanged_by_the_default_budget():
    b = load_baskets("groceries.csv")
    default = AssociationMiner(min_support=0.002, min_confidence=0.1).fit(b)
    off = AssociationMiner(min_support=0.002, min_confidence=0.1, memory_budget="off").fit(b)
    assert default.frequent_itemsets_.to_dict() == off.frequent_itemsets_.to_dict()
    assert default.rules_table().equals(off.rules_table())


def test_certain_rules_stop_before_generation_with_an_exact_count():
    b = load_baskets("chess.dat")
    fi = frequent_itemsets(b, 0.6, memory_budget="off")
    full = association_rules(fi, min_confidence=0.5, memory_budget="off")
    with pytest.raises(BudgetExceeded) as info:
        association_rules(fi, min_confidence=0.5, max_rules=1000)
    assert info.value.estimated and info.value.found == len(full)
    assert "max_len=" in str(info.value)


# --- min_support against the number of baskets -------------------------------------------------

ROWS = [["a", "b"], ["a"], ["b", "c"]]


@pytest.mark.parametrize(
    ("support", "needles"),
    [(4, ["count 4", "number of baskets (3)"]), (10**9, ["1,000,000,000", "(3)"]),
     (1.5, ["1.5", "3 baskets"]), (0.0, ["0.0", "3 baskets"]), (-2, ["-2", "3 baskets"])],
)
def test_support_beyond_the_baskets_is_an_error(support, needles):
    with pytest.raises(MiningError) as info:
        AssociationMiner(min_support=support).fit(ROWS)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_a_count_equal_to_the_baskets_is_allowed_and_validate_needs_no_data():
    assert AssociationMiner(min_support=3).fit(ROWS).min_count_ == 3
    assert AssociationMiner(min_support=25).validate() == 25  # no data yet: not checked
