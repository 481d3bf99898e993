"""The spark engine: frequent itemsets mined by Spark's FPGrowth (``pyspark.ml.fpm``), rules,
measures and the artifact made by basketry's own code, so a model mined on Spark is the model
the local engine mines (same itemsets, counts, rules, measures and version).

Two differences of Spark's FPGrowth are handled here:

- its ``minSupport`` is a fraction and it keeps the itemsets counted in at least
  ``ceil(minSupport * n)`` baskets; basketry's cut is an exact integer count ``m``, so the
  fraction given to Spark is ``(m - 0.5) / n``, whose ``ceil(. * n)`` is ``m`` (the half
  basket of room is far beyond a double's rounding);
- it has no maximum length: ``max_len`` is applied to what it found, so Spark still counts
  every longer itemset (the cost of a low support is Spark's, whatever ``max_len`` says).

The itemsets come back to the driver with their exact counts (one row per itemset); the rules
are generated there. pyspark is imported only when the engine is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.data.baskets import Baskets
from basketry.mining._compiled import kernels
from basketry.mining._params import MemoryBudget, check_max
from basketry.mining._spark_read import SparkBaskets, read_on_spark
from basketry.mining._spark_session import spark_failure, start_session
from basketry.mining.errors import BudgetExceeded, MiningError
from basketry.mining.estimator import AssociationMiner
from basketry.mining.itemsets import FrequentItemsets, item_mask
from basketry.mining.rules import Rules, association_rules

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Say = Callable[[str], None]

__all__ = ["SparkAssociationMiner", "SparkEngine", "mine_on_spark", "miners", "spark_min_support"]


def spark_min_support(min_count: int, n_baskets: int) -> float:
    """The fraction Spark's FPGrowth cuts at exactly ``min_count`` baskets of ``n_baskets``
    (Spark keeps an itemset counted ``c`` times when ``c >= ceil(minSupport * n)``)."""
    if n_baskets <= 0:
        return 1.0
    return min(1.0, (min_count - 0.5) / n_baskets)


class SparkEngine:
    """A Spark session for mining (started on ``master``, or the ``session`` given, which is
    then left running), the phases' timings (``timings``: seconds by phase) and ``say`` for
    progress lines."""

    def __init__(self, master: str | None = None, *, session: SparkSession | None = None,
                 say: Say | None = None) -> None:
        self._own = session is None
        self.say: Say = say or (lambda message: None)
        self.timings: dict[str, float] = {}
        if session is None:
            started = time.perf_counter()
            self.say(f"starting Spark ({master or 'SPARK_MASTER or local[*]'})")
            session = start_session(master)
            self.timings["start"] = time.perf_counter() - started
        self.session: SparkSession = session

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.session.stop()

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - started

    def read(self, source: Any, **read_options: Any) -> SparkBaskets:
        """Read and validate ``source`` on Spark (see ``_spark_read.read_on_spark``)."""
        started = time.perf_counter()
        self.say(f"reading {source} on Spark")
        data = read_on_spark(self.session, source, **read_options)
        self.timed("read", started)
        return data

    def frame_of(self, baskets: Baskets) -> DataFrame:
        """Baskets held by this process, sent to Spark (one row of item strings a basket)."""
        import pyarrow as pa

        from basketry.model.columns import list_array

        items = pa.array(baskets.items.tolist(), type=pa.string())
        ids = list_array(baskets.indptr, baskets.indices, pa.int32())
        strings = pa.ListArray.from_arrays(ids.offsets, items.take(ids.flatten()))
        return self.session.createDataFrame(pa.table({"items": strings}))

    def miner(self, frame: DataFrame | None = None, **params: Any) -> SparkAssociationMiner:
        """An :class:`AssociationMiner` with ``params`` that mines on this engine (``frame``:
        the baskets already on Spark, else those given to ``fit`` are sent)."""
        return SparkAssociationMiner(engine=self, frame=frame, **params)


class SparkAssociationMiner(AssociationMiner):
    """:class:`AssociationMiner` whose frequent itemsets Spark's FPGrowth mines. Its parameters
    (``get_params``, recorded in a model's manifest) are the local miner's: the engine is how
    a fit runs, not what it finds. ``antecedents``/``consequents`` are not supported."""

    def __init__(self, *, engine: SparkEngine, frame: DataFrame | None = None,
                 **params: Any) -> None:
        super().__init__(**params)
        self.engine = engine
        self.frame = frame

    def _mine(self, b: Baskets, budget: MemoryBudget,
              progress: Callable[[float], None] | None) -> tuple[FrequentItemsets, Rules]:
        if self.antecedents is not None or self.consequents is not None:
            raise MiningError("the spark engine does not take antecedents or consequents "
                              "yet; mine with --engine local")
        fi = self._itemsets(b, budget, progress)
        started = time.perf_counter()
        self.engine.say(f"generating rules from {len(fi):,} itemsets")
        rules = association_rules(
            fi, min_confidence=self.min_confidence, min_lift=self.min_lift,
            max_p_value=self.max_p_value, multi_consequent=bool(self.multi_consequent),
            max_rules=self.max_rules, memory_budget=budget)
        self.engine.timed("rules", started)
        return fi, rules

    def _itemsets(self, b: Baskets, budget: MemoryBudget,
                  progress: Callable[[float], None] | None) -> FrequentItemsets:
        from py4j.protocol import Py4JError
        from pyspark.ml.fpm import FPGrowth
        from pyspark.sql import functions as F

        engine = self.engine
        n, min_count = b.n_baskets, int(self.min_count_)
        max_len = check_max("max_len", self.max_len)
        limit = budget.max_itemsets(check_max("max_itemsets", self.max_itemsets))
        excluded = item_mask("exclude", self.exclude, b.items)
        frame = self.frame if self.frame is not None else engine.frame_of(b)
        if excluded is not None:
            # the baskets stay (the support's denominator), the items go
            dropped = [str(x) for x in b.items[excluded]]
            frame = frame.select(F.filter("items", lambda x: ~x.isin(dropped)).alias("items"))
        started = time.perf_counter()
        engine.say(f"FPGrowth on Spark: {n:,} baskets, min count {min_count:,}")
        # FPGrowth passes over its input more than once (cached, it is read once), and its
        # itemsets are mined lazily: counted here (the mining, timed as "fit"), cached so that
        # the collect after is the transfer alone
        items = frame.select("items").cache()
        found = None
        try:
            # the mining is spread over numPartitions: by default the input's, one for a
            # small file, which would leave every other core idle
            partitions = max(engine.session.sparkContext.defaultParallelism,
                             items.rdd.getNumPartitions())
            model = FPGrowth(itemsCol="items", minSupport=spark_min_support(min_count, n),
                             minConfidence=1.0, numPartitions=partitions).fit(items)
            found = model.freqItemsets
            if max_len is not None:
                found = found.where(F.size("items") <= max_len)
            found = found.cache()
            total = found.count()
            engine.timed("fit", started)
            if progress is not None:
                progress(0.5)
            if limit.value is not None and total > limit.value:
                raise BudgetExceeded(
                    f"Spark found {total:,} frequent itemsets, more than "
                    f"{limit.describe('max_itemsets')}; raise min_support"
                    + ("" if max_len is not None else " or set max_len"),
                    what="itemsets", found=total, limit=limit.value)
            started = time.perf_counter()
            table = found.toArrow()
            engine.timed("collect", started)
        except Py4JError as exc:
            raise spark_failure("mining", exc) from None
        finally:
            items.unpersist()
            if found is not None:
                found.unpersist()
        engine.say(f"collected {table.num_rows:,} frequent itemsets")
        if progress is not None:
            progress(0.8)
        return _as_itemsets(table, b, min_count, max_len, bool(self.multi_consequent))


def _as_itemsets(table: Any, b: Baskets, min_count: int, max_len: int | None,
                 multi_consequent: bool) -> FrequentItemsets:
    """Spark's (items, freq) rows as basketry's itemsets: ids of ``b``'s vocabulary, each row
    ascending, rows ordered by length then ids (the local engine's order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = table.column("items").cast(pa.list_(pa.string())).combine_chunks()
    vocab = pa.array(b.items.tolist(), type=pa.string())
    found = pc.index_in(lists.flatten(), value_set=vocab)
    if found.null_count:
        raise MiningError("Spark returned an item the baskets do not hold")
    ids = found.to_numpy(zero_copy_only=False)
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    ptr = offsets - offsets[0]
    idx = np.asarray(ids, dtype=np.int32)
    counts = table.column("freq").to_numpy().astype(np.int64)
    n_all = b.n_items
    idx = kernels.map_sort_rows(ptr, idx, np.arange(max(n_all, 1), dtype=np.int32))
    order = kernels.radix_order(ptr, idx, n_all, True)
    f_ptr, f_idx = kernels.gather_rows(ptr, idx, order)
    return FrequentItemsets(
        indptr=f_ptr, indices=f_idx, counts=counts[order], n_baskets=b.n_baskets,
        min_count=min_count, items=b.items, item_counts=b.item_counts(),
        multi_consequent=multi_consequent, max_len=max_len)


ENGINES = ("local", "spark")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise MiningError(f"unknown engine {engine!r}; choose local or spark")
    return engine


@contextmanager
def miners(engine: str, master: str | None = None, *,
           say: Say | None = None) -> Iterator[Callable[..., AssociationMiner]]:
    """What makes a miner from its parameters, for the block: ``AssociationMiner`` (local),
    or a Spark session's :meth:`SparkEngine.miner`, the session stopped at the end."""
    if check_engine(engine) == "local":
        yield AssociationMiner
        return
    with SparkEngine(master, say=say) as spark:
        yield spark.miner


def mine_on_spark(source: Any, params: dict[str, Any], read_options: dict[str, Any], *,
                  master: str | None = None, session: SparkSession | None = None,
                  say: Say | None = None,
                  progress: Callable[[float], None] | None = None,
                  ) -> tuple[SparkAssociationMiner, Baskets]:
    """Read ``source`` on Spark and mine it with the miner parameters ``params``: the fitted
    miner (its ``engine.timings``: seconds by phase) and the validated baskets, ready for
    ``basketry.training.artifact.save_model``."""
    AssociationMiner(**params).validate()  # a bad parameter refused before Spark starts
    with SparkEngine(master, session=session, say=say) as spark:
        data = spark.read(source, **read_options)
        try:
            miner = spark.miner(frame=data.frame, **params).fit(data.baskets, progress=progress)
        finally:
            data.release()
    return miner, data.baskets
