"""Transactions read where Spark reads them (a Parquet or CSV path Spark can open, basket
lines, or a table), with basketry's validation: the columns resolved as the local reader
resolves them (flags, presets, known names), rows filtered as it filters them (null
transactions, cancelled invoices and non-product lines under a preset, quantity <= 0, null or
blank items), items trimmed, duplicate items of a basket merged (Spark's FPGrowth refuses them)
and empty baskets dropped.

The result is a cached DataFrame with one row per basket (``items``: array<string>, and
``timestamp``/``customer`` when the data has them) for FPGrowth, and the same baskets brought
to the driver as basketry's ``Baskets`` (item ids, 4 bytes an entry) for the dataset profile,
the fingerprint and the items table the artifact records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.data import Baskets, DataError
from basketry.data._presets import _FLAG, PRESETS, ROLES, _resolve_columns
from basketry.mining._spark_session import spark_failure

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_FORMATS = ("auto", "basket", "long-csv", "long-parquet", "table")
_BASKET_SUFFIXES = (".dat", ".txt", ".basket", ".baskets")


@dataclass(frozen=True)
class SparkBaskets:
    """Validated baskets: on Spark (``frame``, cached) and on the driver (``baskets``)."""

    frame: DataFrame
    baskets: Baskets
    cached: DataFrame  # what ``release`` frees

    def release(self) -> None:
        """Free the cached baskets on Spark."""
        self.cached.unpersist()


def _is_path(source: str) -> bool:
    return "://" in source or Path(source).exists() or "/" in source or "." in source


def _detect(source: str, fmt: str) -> str:
    if fmt not in _FORMATS:
        raise DataError(f"unknown format {fmt!r} for the spark engine; choose one of "
                        f"{', '.join(_FORMATS)}")
    if fmt != "auto":
        return fmt
    if not _is_path(source):
        return "table"
    lower = source.rstrip("/").lower()
    if lower.endswith(".parquet") or (Path(source).is_dir() and not lower.endswith(".csv")):
        return "long-parquet"
    if lower.endswith((".csv", ".tsv")):
        return "long-csv"
    if lower.endswith(_BASKET_SUFFIXES):
        return "basket"
    return "long-parquet" if "://" in source else "basket"


def _check_local_parquet_schemas(source: str) -> None:
    """Every file of a local Parquet directory has the first file's schema (read from the
    footers only): Spark would take one file's schema and read the others' columns as null."""
    path = Path(source)
    if not path.is_dir():
        return
    import pyarrow.parquet as pq

    files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith(("_", ".")))
    if len(files) < 2:
        return
    first = pq.read_schema(files[0])
    names = {f.name: str(f.type) for f in first if not f.name.startswith("__")}
    for other in files[1:]:
        schema = pq.read_schema(other)
        theirs = {f.name: str(f.type) for f in schema if not f.name.startswith("__")}
        if theirs != names:
            diff = sorted(set(names.items()) ^ set(theirs.items()))
            shown = ", ".join(f"{n} {t}" for n, t in diff[:4])
            raise DataError(f"{source}: Parquet files with mismatched schemas: {other.name} "
                            f"differs from {files[0].name} ({shown})")


def _load(spark: SparkSession, source: str, fmt: str, sep: str | None) -> DataFrame:
    from pyspark.errors import AnalysisException

    try:
        if fmt == "table":
            return spark.table(source)
        if fmt == "long-parquet":
            _check_local_parquet_schemas(source)
            return spark.read.option("mergeSchema", "true").parquet(source)
        if fmt == "long-csv":
            delimiter = "\t" if sep in ("\\t", "\t") or (sep is None and
                                                       source.lower().endswith(".tsv")) else sep
            return (spark.read.option("header", "true").option("inferSchema", "false")
                    .option("sep", delimiter or ",").csv(source))
        return spark.read.text(source)
    except AnalysisException as exc:
        message = str(exc).strip().splitlines()[0]
        if "merge" in message.lower() or "incompatible" in message.lower():
            raise DataError(f"{source}: Parquet files with mismatched schemas: {message}"
                            ) from None
        raise DataError(f"{source}: Spark cannot read it: {message}") from None


def _basket_lines(frame: DataFrame, sep: str | None) -> tuple[DataFrame, dict[str, Any]]:
    from pyspark.sql import functions as F

    pattern = r"\s+" if sep is None else ("\t" if sep in ("\\t", "\t") else
                                          "\\" + sep if not sep.isalnum() else sep)
    raw = frame.select(F.split(F.trim(F.col("value")), pattern).alias("raw"))
    items = F.filter(F.transform("raw", lambda x: F.trim(x)), lambda x: x != "")
    return raw.select(items.alias("items")), {"format": "basket"}


def _long(frame: DataFrame, source: str, flags: dict[str, str | None], preset_name: str | None,
          fmt: str) -> tuple[DataFrame, DataFrame | None, dict[str, Any]]:
    from pyspark.sql import functions as F

    roles, preset = _resolve_columns(Path(source), list(frame.columns), flags, preset_name)
    t = F.trim(F.col(f"`{roles['transaction']}`").cast("string"))
    item = F.trim(F.col(f"`{roles['item']}`").cast("string"))
    cols = [t.alias("t"), item.alias("item")]
    for role in ("timestamp", "customer", "quantity", "label"):
        if role in roles:
            cols.append(F.col(f"`{roles[role]}`").alias(role))
    rows = frame.select(*cols).where(F.col("t").isNotNull() & (F.col("t") != ""))
    if preset is not None and preset.drop_cancelled:
        rows = rows.where(~F.col("t").startswith("C"))
    if preset is not None and preset.non_product_items:
        rows = rows.where(~F.col("item").isin(sorted(preset.non_product_items)))
    if "quantity" in roles:  # a null quantity is kept, as the local reader keeps it
        q = F.col("quantity").cast("double")
        rows = rows.where(q.isNull() | (q > 0))
    rows = rows.where(F.col("item").isNotNull() & (F.col("item") != ""))
    aggs = [F.array_sort(F.collect_set("item")).alias("items")]
    if "timestamp" in roles:
        aggs.append(F.min(_timestamp(frame, roles["timestamp"])).alias("timestamp"))
    if "customer" in roles:
        c = F.trim(F.col("customer").cast("string"))
        aggs.append(F.min(F.when(c != "", c)).alias("customer"))
    baskets = rows.groupBy("t").agg(*aggs).drop("t")
    labels = None
    if "label" in roles:
        lab = F.trim(F.col("label").cast("string"))
        counted = (rows.select("item", lab.alias("label")).where(F.col("label") != "")
                   .groupBy("item", "label").count())
        # the most frequent label of an item, ties by the smallest string (the local rule)
        best = F.min_by(F.col("label"), F.struct(-F.col("count"), F.col("label")))
        labels = counted.groupBy("item").agg(best.alias("label"))
    report = {"format": fmt, "preset": preset.name if preset else None,
              "columns": dict(roles)}
    return baskets, labels, report


def _timestamp(frame: DataFrame, column: str) -> Any:
    from pyspark.sql import functions as F

    kind = frame.schema[column].dataType.typeName()
    if kind in ("timestamp", "timestamp_ntz", "date"):
        return F.col("timestamp").cast("timestamp")
    return F.to_timestamp(F.col("timestamp").cast("string"))


def read_on_spark(spark: SparkSession, source: str | Path, *, format: str = "auto",
                  sep: str | None = None, preset: str | None = None,
                  **columns: str | None) -> SparkBaskets:
    """Read and validate ``source`` on Spark (``format``: auto, basket, long-csv,
    long-parquet, table); ``columns``: the ``*_col`` flags of the local reader.
    ``DataError`` (one line) for what the local reader refuses, a Parquet directory with
    mismatched schemas, or a source Spark cannot read."""
    from py4j.protocol import Py4JError
    from pyspark.sql import functions as F

    source = str(source)
    unknown = set(columns) - set(_FLAG.values())
    if unknown - {"timestamp_format"}:
        raise DataError(f"the spark engine does not take {', '.join(sorted(unknown))}")
    if columns.get("timestamp_format"):
        raise DataError("the spark engine reads timestamps with Spark's own parsing (ISO 8601 "
                        "or a timestamp column); --timestamp-format is for the local engine")
    if preset is not None and preset not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    fmt = _detect(source, format)
    frame = _load(spark, source, fmt, sep)
    labels = None
    if fmt == "basket":
        rows, report = _basket_lines(frame, sep)
    else:
        flags = {role: columns.get(_FLAG[role]) for role in ROLES}
        rows, labels, report = _long(frame, source, flags, preset, fmt)
    rows = rows.withColumn("n_read", F.size("items"))
    # cached: one pass over the source brings the baskets here, FPGrowth reads the cache
    rows = rows.withColumn("items", F.array_sort(F.array_distinct("items"))).cache()
    try:
        baskets = _to_driver(rows, labels, source, {**report, "engine": "spark"})
    except Py4JError as exc:
        rows.unpersist()
        raise spark_failure(f"reading {source}", exc) from None
    except BaseException:
        rows.unpersist()
        raise
    kept = rows.where(F.size("items") > 0).drop("n_read")
    return SparkBaskets(frame=kept, baskets=baskets, cached=rows)


def _to_driver(frame: DataFrame, labels: DataFrame | None, source: str,
               report: dict[str, Any]) -> Baskets:
    """The baskets as basketry's CSR ``Baskets``: items numbered in sorted order, as the
    local readers number them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = frame.toArrow()
    n_read = table.column("n_read").to_numpy()
    lists = table.column("items").cast(pa.list_(pa.string())).combine_chunks()
    sizes = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    report.update(baskets_read=int(sizes.shape[0]),
                  duplicate_items_merged=int((n_read - sizes).sum()),
                  empty_baskets_dropped=int((sizes == 0).sum()))
    if not (sizes > 0).all():
        nonempty = pa.array(sizes > 0)
        table = table.filter(nonempty)
        lists = lists.filter(nonempty)
    if table.num_rows == 0:
        raise DataError(f"{source}: no baskets left after filtering")
    flat = lists.flatten()
    vocab = pc.unique(flat)
    vocab = vocab.take(pc.array_sort_indices(vocab))
    ids = pc.index_in(flat, value_set=vocab).to_numpy(zero_copy_only=False).astype(np.int32)
    offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    indptr = offsets - offsets[0]
    # each basket's ids ascend already: Spark sorted the strings, ids follow that order
    items = np.array(vocab.to_pylist(), dtype=object)
    timestamps = customers = label_array = None
    if "timestamp" in table.column_names:
        ts = table.column("timestamp").combine_chunks()
        timestamps = pc.cast(ts, pa.timestamp("ns")).to_numpy(zero_copy_only=False)
        timestamps = timestamps.astype("datetime64[ns]")
    if "customer" in table.column_names:
        customers = np.array(table.column("customer").to_pylist(), dtype=object)
    if labels is not None:
        found = labels.toArrow()
        by_item = dict(zip(found.column("item").to_pylist(), found.column("label").to_pylist(),
                           strict=True))
        label_array = np.array([by_item.get(i) for i in items.tolist()], dtype=object)
    report.update(n_baskets=int(indptr.shape[0] - 1), n_items=int(items.shape[0]),
                  n_entries=int(indptr[-1]))
    return Baskets(indptr=indptr, indices=ids, items=items, labels=label_array,
                   timestamps=timestamps, customers=customers, source=source, report=report)
