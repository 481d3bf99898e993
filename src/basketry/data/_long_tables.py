"""The long formats: one row per (transaction, item) in CSV or Parquet, with optional timestamp,
customer, quantity and label columns; rows filtered, transactions grouped into baskets,
per-basket timestamp and customer, per-item label (rules in ``readers``' docstring).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from basketry.data._arrow_codes import (
    _arrow_int64,
    _encode,
    _indices,
    _int64,
    _lookup,
    _plain_ints,
    _trimmed,
)
from basketry.data._column_types import _check_column_types
from basketry.data._compiled import kernels
from basketry.data._csv_errors import _csv_error
from basketry.data._lazy import LazyModule
from basketry.data._presets import PRESETS, Preset, _resolve_columns
from basketry.data._result import _add_totals, _group, _sorted_vocabulary
from basketry.data._sources import (
    _arrow_input,
    _head_line,
    _header_names,
    _read_bytes,
    _sniff_delimiter,
    _suffix,
)
from basketry.data._timestamps import _NAT, _timestamps, _where
from basketry.data.baskets import Baskets
from basketry.data.errors import DataError

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")
pacsv = LazyModule("pyarrow.csv")
pq = LazyModule("pyarrow.parquet")

_BATCH_ROWS = 1 << 21
_INT64_MAX = np.iinfo(np.int64).max


def _read_long_parquet(
    source: Path,
    flags: dict[str, str | None],
    preset: str | None,
    drop_cancelled: bool | None,
    drop_non_products: bool | None,
    timestamp_format: str | None,
) -> Baskets:
    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{source}: not a readable Parquet file: {e}") from e
    names = list(schema.names)
    roles, preset_used = _resolve_columns(source, names, flags, preset)
    _check_column_types(source, roles, schema)
    columns = list(dict.fromkeys(roles.values()))
    strings = {
        c for c in columns
        if c != roles.get("quantity")
        and (pa.types.is_string(schema.field(c).type)
             or pa.types.is_large_string(schema.field(c).type)
             or pa.types.is_binary(schema.field(c).type))
    }
    # columns of few distinct values come straight from the file's dictionary pages
    few = [c for c in strings if c != roles["transaction"]]
    if roles["transaction"] not in strings:
        # no column of many distinct strings: one multi-threaded read
        try:
            table = pq.read_table(source, columns=columns, read_dictionary=few, use_threads=True)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{source}: cannot read Parquet columns {columns}: {e}") from e
        return _from_table(
            source, table, roles, preset_used, drop_cancelled, drop_non_products,
            timestamp_format, "long-parquet", row_offset=0,
        )
    try:
        # batch by batch, string columns dictionary-encoded at once: memory stays near the
        # integer codes, never the whole column of strings
        batches = []
        with pq.ParquetFile(source, read_dictionary=few) as pf:
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
                batches.append(pa.record_batch(
                    [pc.dictionary_encode(batch[c])
                     if c in strings and not pa.types.is_dictionary(batch[c].type)
                     else batch[c]
                     for c in columns],
                    names=columns,
                ))
        table = pa.Table.from_batches(batches) if batches else pq.read_table(
            source, columns=columns
        )
        del batches
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{source}: cannot read Parquet columns {columns}: {e}") from e
    return _from_table(
        source, table, roles, preset_used, drop_cancelled, drop_non_products, timestamp_format,
        "long-parquet", row_offset=0,
    )


def _read_long_csv(
    source: Path,
    flags: dict[str, str | None],
    preset: str | None,
    drop_cancelled: bool | None,
    drop_non_products: bool | None,
    timestamp_format: str | None,
    sep: str | None,
) -> Baskets:
    head = _head_line(source)
    if not head.strip():
        raise DataError(f"{source}: empty input (no header line)")
    delimiter = sep or ("\t" if _suffix(source) == ".tsv" else _sniff_delimiter(head))
    names = _header_names(source, delimiter)
    roles, preset_used = _resolve_columns(source, names, flags, preset)
    columns = list(dict.fromkeys(roles.values()))
    as_dict = pa.dictionary(pa.int32(), pa.string())
    types = {c: as_dict for c in columns if c != roles.get("quantity")}
    try:
        table = pacsv.read_csv(
            _arrow_input(source),
            read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types=types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowException, OSError) as e:
        raise _csv_error(source, delimiter, e) from None
    _check_column_types(source, roles, table.schema)
    # a description may hold a quoted line break (RFC 4180); an id or a timestamp never does
    _check_single_lines(source, table, [c for c in columns
                                        if c not in (roles.get("quantity"), roles.get("label"))])
    if roles.get("label") in columns and table.num_rows:
        # a quote left open swallows the rest of the file into the last value; quotes come in
        # pairs in a well-formed file ("" escapes one), so an odd count tells it from a
        # description that holds a quoted line break (read only in that rare case)
        try:
            _check_single_lines(source, table.slice(table.num_rows - 1), [roles["label"]],
                                first_row=table.num_rows - 1)
        except DataError:
            if _read_bytes(source).count(b'"') % 2:
                raise
    return _from_table(
        source, table, roles, preset_used, drop_cancelled, drop_non_products, timestamp_format,
        "long-csv", row_offset=2,
    )


def _check_single_lines(source: Path, table: pa.Table, columns: list[str], *,
                        first_row: int = 0) -> None:
    """A DataError for a value holding a line break: a quote left open swallows the lines after
    it into one value (Arrow's parser accepts that at the end of the file)."""
    for name in columns:
        row = first_row
        for chunk in table[name].chunks:
            broken = pc.match_substring_regex(chunk.dictionary, "[\\r\\n]")
            if pc.any(broken).as_py():
                bad = np.append(broken.to_numpy(zero_copy_only=False), False)
                hits = np.flatnonzero(bad[_indices(chunk)])
                if not len(hits):  # only values of the dictionary no row of this chunk uses
                    row += len(chunk)
                    continue
                at = int(hits[0])
                value = chunk.dictionary[int(chunk.indices[at].as_py())].as_py()
                raise DataError(
                    f"{source}: data row {row + at + 1}: column {name!r} holds a line break "
                    f"({value[:40]!r}); a quote left open?"
                )
            row += len(chunk)


def _text_codes(source: Path, column: pa.ChunkedArray, role: str, name: str) -> tuple:
    """``_encode`` of a column read as text; bytes that are not UTF-8 (or a type Arrow cannot
    turn into text) are a DataError naming the column and the first such row."""
    try:
        return _encode(column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        where = ""
        value_type = (
            column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        )
        if pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type):
            for row, value in enumerate(column.to_pylist()):
                try:
                    if value is not None:
                        value.decode("utf-8")
                except UnicodeDecodeError:
                    where, detail = f"row {row}: ", f"{value[:40]!r} is not valid UTF-8"
                    break
        raise DataError(
            f"{source}: {where}the {role} column {name!r} ({value_type}) cannot be read as "
            f"text: {detail}"
        ) from None


def _from_table(
    source: Path,
    table: pa.Table,
    roles: dict[str, str],
    preset: Preset | None,
    drop_cancelled: bool | None,
    drop_non_products: bool | None,
    timestamp_format: str | None,
    fmt: str,
    row_offset: int,
) -> Baskets:
    n = table.num_rows
    if n == 0:
        raise DataError(f"{source}: empty input (no data rows)")
    if timestamp_format is not None and "timestamp" not in roles:
        raise DataError(
            f"{source}: --timestamp-format given, but there is no timestamp column; name it "
            "with --timestamp-col"
        )
    if drop_cancelled is None:
        drop_cancelled = preset.drop_cancelled if preset is not None else False
    non_products = preset.non_product_items if preset is not None else frozenset()
    if drop_non_products is None:
        drop_non_products = bool(non_products)
    elif drop_non_products and not non_products:
        which = f"preset {preset.name!r} lists none" if preset is not None else "no preset applies"
        presets = ", ".join(p.name for p in PRESETS.values() if p.non_product_items)
        raise DataError(
            f"{source}: drop_non_products needs a preset that lists non-product items "
            f"({presets}); {which}"
        )
    report: dict = {
        "format": fmt,
        "preset": preset.name if preset is not None else None,
        "columns": dict(roles),
        "rows_read": int(n),
    }

    # items first: a column with no value at all is an error, whatever the filters
    item_codes, item_dict = _text_codes(source, table[roles["item"]], "item", roles["item"])
    item_nulls = bool((item_codes < 0).any())  # nulls, and NaN in a float column
    if item_nulls and (item_codes < 0).all():
        raise DataError(f"{source}: the item column {roles['item']!r} is entirely null")
    item_codes, item_dict = _trimmed(item_codes, item_dict)
    blank_code = np.append(
        pc.equal(pc.binary_length(item_dict), 0).to_numpy(zero_copy_only=False), False
    )
    # per-row checks only when some item is null or blank (else nothing to drop)
    item_checks = item_nulls or bool(blank_code[:-1].any())
    if item_checks and (blank_code[item_codes] | (item_codes < 0)).all():
        raise DataError(
            f"{source}: the item column {roles['item']!r} has no non-blank value"
        )

    t_column = table[roles["transaction"]]
    if _plain_ints(t_column):
        # integer ids: codes in one compiled pass (rows grouped by transaction cost no lookup)
        t_codes, t_ids = kernels.int_codes(_int64(t_column))
        in_order = True  # codes numbered by first appearance, no null
        t_dict = pc.cast(_arrow_int64(t_ids), pa.string())
        del t_ids
    else:
        t_codes, t_dict = _text_codes(source, t_column, "transaction", roles["transaction"])
        t_codes, t_dict = _trimmed(t_codes, t_dict)
        in_order = False
    del t_column
    table = _without(table, roles, ("item", "transaction"))
    keep = t_codes >= 0
    report["dropped_null_transactions"] = int(n - np.count_nonzero(keep))
    if in_order:  # every code is used
        report["baskets_read"] = len(t_dict)
    else:
        report["baskets_read"] = int(
            np.count_nonzero(np.bincount(t_codes[keep], minlength=len(t_dict)))
        )

    dropped = 0
    if drop_cancelled:
        cancelled_code = np.append(
            pc.starts_with(t_dict, "C").to_numpy(zero_copy_only=False), False
        )
        cancelled = cancelled_code[t_codes] & keep
        dropped = int(np.count_nonzero(cancelled))
        keep &= ~cancelled
        del cancelled
    report["dropped_cancelled"] = dropped

    dropped = 0
    if drop_non_products:
        listed = pa.array(sorted(non_products), type=item_dict.type)
        non_product_code = np.append(
            pc.is_in(item_dict, value_set=listed).to_numpy(zero_copy_only=False), False
        )
        if non_product_code[:-1].any():
            non_product = non_product_code[item_codes] & keep
            dropped = int(np.count_nonzero(non_product))
            keep &= ~non_product
            del non_product
    report["dropped_non_product_rows"] = dropped

    dropped = 0
    if "quantity" in roles:
        quantity = _numeric(source, table[roles["quantity"]], roles["quantity"], row_offset)
        nonpositive = (quantity <= 0) & keep  # NaN (null) compares False: kept
        dropped = int(np.count_nonzero(nonpositive))
        keep &= ~nonpositive
        del nonpositive, quantity
        table = _without(table, roles, ("item", "transaction", "quantity"))
    report["dropped_nonpositive_quantity"] = dropped

    report["dropped_null_items"] = report["dropped_blank_items"] = 0
    if item_checks:
        null_item = (item_codes < 0) & keep
        report["dropped_null_items"] = int(np.count_nonzero(null_item))
        keep &= ~null_item
        del null_item
        blank = blank_code[item_codes] & keep
        report["dropped_blank_items"] = int(np.count_nonzero(blank))
        keep &= ~blank
        del blank

    n_kept = int(np.count_nonzero(keep))
    report["rows_kept"] = n_kept
    if n_kept == 0:
        removed = ", ".join(
            f"{k.removeprefix('dropped_')}: {report[k]}"
            for k in (
                "dropped_null_transactions", "dropped_cancelled", "dropped_non_product_rows",
                "dropped_nonpositive_quantity",
                "dropped_null_items", "dropped_blank_items",
            )
            if report[k]
        )
        raise DataError(
            f"{source}: no baskets left after filtering: {n} rows read, all removed "
            f"({removed})"
        )

    # baskets in order of first appearance among the kept rows
    all_kept = n_kept == n
    tk = t_codes if all_kept else t_codes[keep]
    del t_codes
    change = np.empty(tk.shape[0], dtype=bool)
    change[0] = True
    np.not_equal(tk[1:], tk[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    del change
    if in_order and all_kept:
        # the codes already number the transactions by first appearance, all of them kept
        n_baskets = len(t_dict)
        basket_tx = np.arange(n_baskets, dtype=np.int64)
        bk = tk
    else:
        first = np.full(len(t_dict), _INT64_MAX, dtype=np.int64)
        np.minimum.at(first, tk[starts], starts)
        present = np.flatnonzero(first < _INT64_MAX)
        basket_tx = present[np.argsort(first[present], kind="stable")]
        n_baskets = basket_tx.shape[0]
        new_basket = np.full(len(t_dict), -1, dtype=np.int32)
        new_basket[basket_tx] = np.arange(n_baskets, dtype=np.int32)
        bk = new_basket[tk]
        del first, new_basket
    del tk
    # rows grouped by basket and in first-appearance order: segments can use reduceat
    grouped = bool(np.all(bk[starts[1:]] > bk[starts[:-1]])) if starts.shape[0] > 1 else True
    seg_starts = starts if grouped and starts.shape[0] == n_baskets else None

    ik = item_codes if all_kept else item_codes[keep]
    del item_codes
    ik, vocab = _sorted_vocabulary(ik, item_dict)

    timestamps = None
    if "timestamp" in roles:
        ts = _timestamps(source, table[roles["timestamp"]], roles["timestamp"], keep,
                         timestamp_format, row_offset)
        nat = ts == _NAT
        report["null_timestamps"] = int(np.count_nonzero(nat))
        if report["null_timestamps"]:
            ts = np.where(nat, _INT64_MAX, ts)
        del nat
        per_basket = _segment_reduce(np.minimum, ts, bk, n_baskets, _INT64_MAX, seg_starts)
        per_basket[per_basket == _INT64_MAX] = _NAT
        timestamps = per_basket.view("datetime64[ns]")
        del ts
        table = _without(table, roles, ("item", "transaction", "quantity", "timestamp"))

    customers = None
    if "customer" in roles:
        c_codes, c_dict = _text_codes(
            source, table[roles["customer"]], "customer", roles["customer"]
        )
        c_codes, c_dict = _trimmed(c_codes[keep], c_dict)
        c_codes[_lookup(pc.equal(pc.binary_length(c_dict), 0).to_numpy(
            zero_copy_only=False), c_codes, False)] = -1
        rank = np.empty(len(c_dict), dtype=np.int64)
        rank[pc.array_sort_indices(c_dict).to_numpy(zero_copy_only=False)] = np.arange(
            len(c_dict), dtype=np.int64
        )
        r = _lookup(rank, c_codes, _INT64_MAX)
        lo = _segment_reduce(np.minimum, r, bk, n_baskets, _INT64_MAX, seg_starts)
        r[r == _INT64_MAX] = -1
        hi = _segment_reduce(np.maximum, r, bk, n_baskets, -1, seg_starts)
        report["baskets_with_several_customers"] = int(np.count_nonzero((hi >= 0) & (hi != lo)))
        by_rank = c_dict.take(pc.array_sort_indices(c_dict)).to_numpy(zero_copy_only=False)
        customers = np.empty(n_baskets, dtype=object)
        known = lo < _INT64_MAX
        customers[known] = by_rank[lo[known]]
        del r, lo, hi, c_codes

    labels = None
    if "label" in roles:
        l_codes, l_dict = _text_codes(source, table[roles["label"]], "label", roles["label"])
        l_codes, l_dict = _trimmed(l_codes[keep], l_dict)
        labels = _labels(ik, l_codes, l_dict, len(vocab))

    ids_in_order = t_dict if in_order and all_kept else t_dict.take(_arrow_int64(basket_tx))
    basket_ids = ids_in_order.to_numpy(zero_copy_only=False).astype(object, copy=False)
    del ids_in_order
    del keep
    indptr, indices, kept_baskets, dups = _group(bk, ik, n_baskets, len(vocab))
    del bk, ik
    # every basket has at least one kept row, so none is empty here
    assert kept_baskets.shape[0] == n_baskets
    report["duplicate_items_merged"] = int(dups)
    report["empty_baskets_dropped"] = int(report["baskets_read"] - n_baskets)
    _add_totals(report, indptr, vocab)
    return Baskets(
        indptr=indptr,
        indices=indices,
        items=vocab,
        labels=labels,
        timestamps=timestamps,
        basket_ids=basket_ids,
        customers=customers,
        source=str(source),
        report=report,
    )


def _without(table: pa.Table, roles: dict[str, str], done: tuple[str, ...]) -> pa.Table:
    """The table without the columns of the roles ``done`` (now numpy codes) that no other
    role reads: their buffers are freed when the caller no longer holds the table (a
    directory of Parquet files hands it over), which lowers the peak of a large read."""
    later = {c for r, c in roles.items() if r not in done}
    return table.drop_columns([
        c for c in dict.fromkeys(roles[r] for r in done if r in roles)
        if c not in later and c in table.column_names
    ])


def _segment_reduce(
    ufunc: np.ufunc,
    values: np.ndarray,
    basket: np.ndarray,
    n_baskets: int,
    initial: int,
    seg_starts: np.ndarray | None,
) -> np.ndarray:
    if seg_starts is not None:
        return ufunc.reduceat(values, seg_starts)
    out = np.full(n_baskets, initial, dtype=values.dtype)
    ufunc.at(out, basket, values)
    return out


def _numeric(source: Path, column: pa.ChunkedArray, name: str, row_offset: int) -> np.ndarray:
    """The quantity column as float64 (NaN for null or blank); a value that is not a number is
    a DataError naming its line (CSV) or row (Parquet)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            trimmed = pc.utf8_trim_whitespace(column)
            column = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)
        try:
            column = pc.cast(column, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            where = ""
            for row, value in enumerate(column.to_pylist()):
                try:
                    if value is not None:
                        float(value)
                except (TypeError, ValueError):
                    where = f"{_where(row, row_offset)}: {value!r}: "
                    break
            raise DataError(
                f"{source}: {where}the quantity column {name!r} is not numeric "
                f"({column.type}): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
    return column.to_numpy().astype(np.float64, copy=False)


def _labels(
    item_ids: np.ndarray, label_codes: np.ndarray, label_dict: pa.Array, n_items: int
) -> np.ndarray:
    """Most frequent non-blank label per item (ties: smallest string); None if none."""
    labels = np.full(n_items, None, dtype=object)
    blank = np.append(pc.equal(pc.binary_length(label_dict), 0).to_numpy(
        zero_copy_only=False), True)
    valid = ~blank[label_codes]
    if not valid.any():
        return labels
    rank = np.empty(len(label_dict), dtype=np.int64)
    order = pc.array_sort_indices(label_dict).to_numpy(zero_copy_only=False)
    rank[order] = np.arange(len(label_dict), dtype=np.int64)
    n_labels = len(label_dict)
    pair = item_ids[valid].astype(np.int64) * n_labels + rank[label_codes[valid]]
    if n_items * n_labels <= 4 * pair.shape[0] + 1_000_000:
        counts = np.bincount(pair, minlength=n_items * n_labels)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:
        uniq, counts = np.unique(pair, return_counts=True)
    item = uniq // n_labels
    lab = uniq - item * n_labels
    best = np.lexsort((lab, -counts, item))
    item, lab = item[best], lab[best]
    first = np.ones(item.shape[0], dtype=bool)
    first[1:] = item[1:] != item[:-1]
    by_rank = label_dict.take(pa.array(order)).to_numpy(zero_copy_only=False)
    labels[item[first]] = by_rank[lab[first]]
    return labels
