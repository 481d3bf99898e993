"""The spark engine (``--engine spark``): Spark's FPGrowth in local mode, for real, against the
local engine: the same itemsets, counts, rules and artifact; basketry's reading rules applied on
Spark; the support boundary; bad input refused in one line with nothing written.

One Spark session serves the whole file (starting one takes ~10 s); the command-line test
starts its own, as a user's run does."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from basketry.data import Baskets, DataError, fingerprint, read_baskets
from basketry.mining import AssociationMiner, MiningError
from tests.shared_data import shared_file

pytest.importorskip("pyspark")

from basketry.mining._spark_read import read_on_spark
from basketry.mining._spark_session import check_master, start_session
from basketry.mining.spark import SparkEngine, spark_min_support

BASKETRY = [str(Path(sys.executable).with_name("basketry"))]


@pytest.fixture(scope="session")
def spark():
    session = start_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def engine(spark) -> SparkEngine:
    return SparkEngine(session=spark)


def head_lines(name: str, n: int, tmp: Path) -> Path:
    """The first ``n`` lines of a shared data set, written to ``tmp`` (Spark reads a file)."""
    out = tmp / f"{n}-{name}"
    with shared_file(name).open() as f, out.open("w") as w:
        for _, line in zip(range(n), f, strict=False):
            w.write(line)
    return out


def assert_same_mining(spark_miner: AssociationMiner, local: AssociationMiner) -> None:
    assert spark_miner.min_count_ == local.min_count_
    assert spark_miner.frequent_itemsets_.to_dict() == local.frequent_itemsets_.to_dict()
    # rows in the same order, the rules table (ids, counts, every measure) equal
    a, b = spark_miner.frequent_itemsets_, local.frequent_itemsets_
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert len(spark_miner.rules_arrays_) > 0
    assert spark_miner.rules_table().equals(local.rules_table())


# ---- parity on the shared FIMI data --------------------------------------------------------
@pytest.mark.parametrize(("name", "lines", "thresholds"), [
    ("mushroom.dat", None, [dict(min_support=0.35, min_confidence=0.5),
                            dict(min_support=0.25, min_confidence=0.8, max_len=3)]),
    ("retail.dat", 10_000, [dict(min_support=0.01, min_confidence=0.1),
                            dict(min_support=20, min_confidence=0.3, min_lift=2.0)]),
])
def test_same_itemsets_counts_and_rules_as_the_local_engine(engine, tmp_path, name, lines,
                                                              thresholds):
    path = shared_file(name) if lines is None else head_lines(name, lines, tmp_path)
    data = engine.read(path)  # read once on Spark, mined at each threshold
    try:
        local_baskets = read_baskets(path)
        # the baskets Spark validated are the local reader's, content for content
        assert fingerprint(data.baskets) == fingerprint(local_baskets)
        assert list(data.baskets.items) == list(local_baskets.items)
        for params in thresholds:
            mined = engine.miner(frame=data.frame, **params).fit(data.baskets)
            assert_same_mining(mined, AssociationMiner(**params).fit(local_baskets))
    finally:
        data.release()


def test_baskets_held_here_are_sent_to_spark_and_mined_the_same(engine):
    """What train and tune do: baskets this process read, mined on Spark."""
    baskets = read_baskets(shared_file("mushroom.dat"))
    params = dict(min_support=0.4, min_confidence=0.3, exclude=["34"])
    mined = engine.miner(**params).fit(baskets)
    assert_same_mining(mined, AssociationMiner(**params).fit(baskets))
    excluded = list(baskets.items).index("34")
    assert not any(excluded in s for s in mined.frequent_itemsets_.to_dict())


# ---- the support boundary and max_len ------------------------------------------------------
def test_the_fraction_given_to_spark_cuts_at_basketrys_count():
    for n in (1, 2, 3, 7, 10, 999, 88_162, 10**6 + 3, 10**9 + 7, 2**40 + 1):
        for m in {m for m in (1, 2, n // 3 + 1, n // 2, n) if 1 <= m <= n}:
            assert math.ceil(spark_min_support(m, n) * n) == m, (m, n)


def test_an_itemset_counted_exactly_min_count_times_is_kept_one_less_is_dropped(engine):
    # {a, b} in 3 of 7 baskets, {a, c} in 2; min count 3 from the fraction 3/7 and from 0.4
    # (ceil(0.4 * 7) = 3): the boundary itemset is kept, the one below it is not
    lists = [["a", "b"], ["a", "b", "c"], ["a", "b"], ["a", "c"], ["a"], ["b"], ["d"]]
    baskets = Baskets.from_lists(lists)
    for support in (3, 0.4, 3 / 7):
        mined = engine.miner(min_support=support, min_confidence=0.0).fit(baskets)
        local = AssociationMiner(min_support=support, min_confidence=0.0).fit(baskets)
        found = {tuple(baskets.items[list(s)]): c
                 for s, c in mined.frequent_itemsets_.to_dict().items()}
        assert mined.min_count_ == 3
        assert found[("a", "b")] == 3 and ("a", "c") not in found
        assert found == {("a",): 5, ("b",): 4, ("a", "b"): 3}
        assert mined.rules_table().equals(local.rules_table())


def test_max_len_is_applied_to_what_spark_found(engine):
    baskets = read_baskets(shared_file("mushroom.dat"))
    for max_len in (1, 2):
        params = dict(min_support=0.3, min_confidence=0.5, max_len=max_len)
        mined = engine.miner(**params).fit(baskets)
        assert mined.frequent_itemsets_.lengths.max() == max_len
        local = AssociationMiner(**params).fit(baskets)
        assert mined.frequent_itemsets_.to_dict() == local.frequent_itemsets_.to_dict()
        assert mined.rules_table().equals(local.rules_table())


# ---- reading on Spark: basketry's rules ----------------------------------------------------
def test_basket_lines_duplicates_merged_empty_baskets_dropped(spark, tmp_path):
    path = tmp_path / "lines.dat"
    path.write_text("a b a\n\n  \nb c c c\nd\n a  b \n")
    data = read_on_spark(spark, path)
    local = read_baskets(path)
    assert data.baskets.n_baskets == local.n_baskets == 4
    assert fingerprint(data.baskets) == fingerprint(local)
    assert data.baskets.report["duplicate_items_merged"] == 3
    assert data.baskets.report["empty_baskets_dropped"] == 2
    data.release()


def test_long_table_with_the_online_retail_preset_reads_as_the_local_reader(spark, tmp_path):
    table = pq.read_table(shared_file("online_retail.parquet")).slice(0, 10_000)
    path = tmp_path / "retail.parquet"
    pq.write_table(table, path)
    data = read_on_spark(spark, path, preset="online-retail")
    local = read_baskets(path, preset="online-retail")
    # cancelled invoices, postage and non-positive quantities dropped, duplicate rows merged,
    # the earliest timestamp of a basket, the most frequent label of an item: the same content
    assert data.baskets.n_baskets == local.n_baskets
    assert fingerprint(data.baskets) == fingerprint(local)  # items and timestamps
    assert list(data.baskets.items) == list(local.items)
    assert list(data.baskets.labels) == list(local.labels)
    assert "POST" not in set(data.baskets.items)
    data.release()


def test_long_csv_duplicates_blank_items_and_quantities(spark, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("basket,item,qty\n1,a,1\n1,a,2\n1,b,1\n2, ,1\n2,c,0\n3,c,1\n3,d,\n4,,1\n")
    data = read_on_spark(spark, path, quantity_col="qty")
    local = read_baskets(path, quantity_col="qty")
    assert fingerprint(data.baskets) == fingerprint(local)
    assert sorted(map(tuple, (data.baskets.basket(b) for b in range(data.baskets.n_baskets)))
                  ) == [("a", "b"), ("c", "d")]
    data.release()


# ---- bad input -----------------------------------------------------------------------------
def test_a_parquet_directory_with_mismatched_schemas_is_named(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"basket": ["1", "2"], "item": ["a", "b"]}), folder / "a.parquet")
    pq.write_table(pa.table({"basket": [3, 4], "item": ["a", "b"]}), folder / "b.parquet")
    with pytest.raises(DataError, match=r"parts: Parquet files with mismatched schemas"):
        read_on_spark(spark, folder)


def test_an_unreachable_master_is_one_line_in_bounded_time():
    with pytest.raises(MiningError, match=r"cannot reach the Spark master spark://127.0.0.1:1"):
        check_master("spark://127.0.0.1:1", timeout=2.0)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *args] if code else [*BASKETRY, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_cli_refuses_an_unreachable_master_and_writes_nothing(tmp_path):
    out = tmp_path / "model"
    done = run_cli("mine", str(shared_file("mushroom.dat")), "-o", str(out), "--engine",
                   "spark", env={"SPARK_MASTER": "spark://127.0.0.1:1"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "spark://127.0.0.1:1" in lines[0], done.stderr
    assert not out.exists()


def test_cli_without_pyspark_names_the_extra(tmp_path):
    # pyspark made unimportable in that process (sys.modules entry None: ImportError)
    code = ("import sys; sys.modules['pyspark'] = None; sys.argv = ['basketry', *sys.argv[1:]]; "
            "from basketry.cli.app import main; main()")
    out = tmp_path / "model"
    done = run_cli("mine", str(shared_file("mushroom.dat")), "-o", str(out), "--engine",
                   "spark", code=code)
    assert done.returncode == 2, done.stderr
    assert "pip install 'basketry[spark]'" in done.stderr and len(
        done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_cli_refuses_an_unknown_engine(tmp_path):
    done = run_cli("mine", str(shared_file("mushroom.dat")), "-o", str(tmp_path / "m"),
                   "--engine", "dask")
    assert done.returncode == 2 and "unknown engine 'dask'" in done.stderr, done.stderr


# ---- end to end ----------------------------------------------------------------------------
@pytest.mark.slow  # two commands, one of them starting its own Spark (~25 s on 2 cores)
def test_cli_mine_on_spark_writes_the_local_engines_artifact(tmp_path):
    import json

    from basketry.model import load_model, read_artifact

    data = head_lines("retail.dat", 5_000, tmp_path)
    args = ["--min-support", "0.005", "--min-confidence", "0.2"]
    local = run_cli("mine", str(data), "-o", str(tmp_path / "local"), *args)
    assert local.returncode == 0, local.stderr
    done = run_cli("mine", str(data), "-o", str(tmp_path / "spark"), *args, "--engine", "spark",
                   "--spark-master", "local[1]")
    assert done.returncode == 0, done.stderr
    for phase in ("starting Spark", "reading", "FPGrowth on Spark", "collected",
                  "generating rules"):
        assert phase in done.stdout
    # only warnings or errors of Spark reach the terminal, none in this run
    assert " INFO " not in done.stderr
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text())
                 for d in ("local", "spark")]
    assert manifests[0]["model_version"] == manifests[1]["model_version"]
    for name in ("items.parquet", "rules.parquet"):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    read_artifact(tmp_path / "spark")  # bytes and content verified
    basket = list(load_model(tmp_path / "local").recommend(["39", "48"], k=5).items)
    served = list(load_model(tmp_path / "spark").recommend(["39", "48"], k=5).items)
    assert [r.item for r in served] == [r.item for r in basket] and len(served) == 5


@pytest.mark.slow  # train fits twice (the scoring's validation slice, the training part)
def test_train_mines_on_spark_and_saves_the_local_engines_model(engine, tmp_path):
    """train's fits (the scoring's validation slice, the training part) mined on Spark."""
    import json

    import basketry.data
    from basketry.training.pipeline import mining_with
    from basketry.training.workflow import train_workflow

    sample = Path(basketry.data.__file__).parent / "sample" / "online_retail_sample.parquet"
    params = dict(min_support=0.02, min_confidence=0.1)
    train_workflow(sample, tmp_path / "local", mining=params, test_fraction=0.2)
    with mining_with(engine.miner):
        train_workflow(sample, tmp_path / "spark", mining=params, test_fraction=0.2)
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text())
                 for d in ("local", "spark")]
    assert manifests[0]["model_version"] == manifests[1]["model_version"]
    assert manifests[0]["metrics"] == manifests[1]["metrics"]
    assert (tmp_path / "spark" / "rules.parquet").read_bytes() == (
        tmp_path / "local" / "rules.parquet").read_bytes()
