"""Read transaction files into :class:`~basketry.data.baskets.Baskets`.

Three formats:

``basket``
    One basket per line, items separated by whitespace (FIMI ``.dat`` files) or by ``sep``
    (default: a tab for ``.tsv``, else a comma if the file has one in its first 64 KiB, e.g.
    ``groceries.csv``, else whitespace). Items are stripped of surrounding whitespace; a line
    with no item is an empty basket (dropped and counted). An item may be quoted CSV style
    (``"bread, white",milk``; ``""`` for a quote inside it); an unquoted item holding a quote,
    or a quote left open at the end of its line, is refused (``_quoted``).
``long-csv`` / ``long-parquet``
    One row per (transaction, item) with optional timestamp, customer, quantity and label
    (item description) columns. Rows are filtered in this order, each dropped row counted once
    under the first reason that applies: null transaction id, cancelled transaction
    (``drop_cancelled``: its id starts with ``"C"``), non-product item (``drop_non_products``:
    the item is one of the preset's non-merchandise codes, e.g. postage, fees, discounts),
    quantity <= 0 (a null quantity is kept), null item, blank item (empty or whitespace only
    after stripping). Repeated (transaction, item) pairs are merged and counted.

Everything is done on integer codes: string columns are dictionary-encoded as they are read
(Parquet ``read_dictionary``, CSV dictionary column types), filters and de-duplication work on
numpy integer arrays, and only the vocabulary, basket ids and customers become Python strings.

Baskets are numbered in order of first appearance in the file; item ids are assigned in
ascending order of the item string (UTF-8 byte order), so they do not depend on row order.
A basket's timestamp is the earliest timestamp of its kept rows (NaT if none); its customer is
the smallest customer id (string order) among its kept rows (baskets naming several customers
are counted in the report); an item's label is its most frequent non-blank description among
the kept rows (ties: the smallest string).

``Baskets.report`` (plain ints and strings): ``format``; ``rows_read`` (lines for the basket
format, data rows for the long formats); ``rows_kept`` (lines with at least one item; rows that
passed the filters); ``dropped_null_items``, ``dropped_blank_items``;
``duplicate_items_merged``; ``empty_baskets_dropped`` (lines without items; transactions none
of whose rows passed the filters, cancelled ones and those holding only non-product lines
included); ``n_baskets``, ``n_items``, ``n_entries``. Basket format also: ``separator``,
``items_read``. Long formats also: ``preset``, ``columns`` (role -> column used),
``baskets_read`` (distinct transaction ids), ``dropped_null_transactions``,
``dropped_cancelled``, ``dropped_non_product_rows``, ``dropped_nonpositive_quantity`` (rows),
``null_timestamps`` (kept rows without a timestamp), ``baskets_with_several_customers``.

Readers never write anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from basketry.data import _basket_lines
from basketry.data._long_tables import _read_long_csv, _read_long_parquet
from basketry.data._parquet_directory import _read_parquet_directory
from basketry.data._presets import _FLAG, PRESETS, Preset
from basketry.data._separators import _check_csv_sep, _check_sep
from basketry.data._sources import _check_source, _detect_format, _suffix
from basketry.data._timestamps import _check_timestamp_format
from basketry.data.baskets import Baskets
from basketry.data.errors import DataError

# The work is done in neighbouring modules, one job each: _sources (opening files, format
# detection), _presets (column roles, presets, known names), _basket_lines (the basket format),
# _long_tables (long CSV/Parquet), _arrow_codes and _timestamps (their column helpers) and
# _result (the CSR and report totals common to all). Arrow is imported when a long-format file
# (or a non-ASCII basket file) is read, never for ASCII basket lines (FIMI .dat files).

__all__ = ["FORMATS", "PRESETS", "Preset", "read_baskets"]

FORMATS: tuple[str, ...] = ("auto", "basket", "long-csv", "long-parquet")

_ASCII_FAST_PATH = True  # basket lines in ASCII: one compiled pass (tests switch it off)


def read_baskets(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    transaction_col: str | None = None,
    item_col: str | None = None,
    timestamp_col: str | None = None,
    customer_col: str | None = None,
    quantity_col: str | None = None,
    label_col: str | None = None,
    sep: str | None = None,
    preset: str | None = None,
    drop_cancelled: bool | None = None,
    drop_non_products: bool | None = None,
    timestamp_format: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> Baskets:
    """Read a transaction file into baskets.

    Args:
        path: the file (``.gz``/``.bz2``/``.xz`` compression is recognised for text files),
            or a directory of Parquet files read as one long-parquet table, row group by row
            group (hive ``key=value`` directories give columns; see ``_parquet_directory``).
        format: ``"auto"``, ``"basket"``, ``"long-csv"`` or ``"long-parquet"``. ``auto``
            picks long-parquet for ``.parquet``/``.pq`` (or the Parquet magic bytes), basket
            for ``.dat``/``.basket``/``.txt``, and for ``.csv``/``.tsv``/other text files
            long-csv when the header names the columns (given by flags, a preset, or known
            names such as ``transaction_id``/``item``), basket otherwise.
        transaction_col, item_col, timestamp_col, customer_col, quantity_col, label_col:
            column names for the long formats; when not given, a preset's names or a known
            column name is used (see ``report["columns"]``).
        sep: item separator (basket) or field delimiter (long-csv): exactly one character
            (``"\\t"`` typed as backslash-t means a tab); a space means any run of
            whitespace (basket format). Empty, several characters, a line break, the quote, a
            control character, or (long-csv) a non-ASCII character: DataError. Default: basket:
            a tab for ``.tsv``, a comma if the file contains one in its first 64 KiB, else any
            whitespace; long-csv: the most frequent of ``, ; \\t |`` in the header line.
        preset: a known layout (``"online-retail"``, ``"online-retail-ii"``); auto-detected
            when the file has all of a preset's columns. Flags override a preset's columns.
        drop_cancelled: drop transactions whose id starts with ``"C"``. Default: the preset's
            setting (True for the online-retail presets), else False.
        drop_non_products: drop rows whose item is one of the preset's non-product codes
            (``Preset.non_product_items``: postage, carriage, fees, manual lines, discounts,
            samples, bad-debt adjustments; for the online-retail presets ``POST``, ``DOT``,
            ``M``, ``C2``, ``D``...). Default: the preset's setting (True for the
            online-retail presets), else False; True without such a preset is an error.
        timestamp_format: ``strptime`` format of a string timestamp column (the CLI's
            ``--timestamp-format``), applied to every row; a row that does not match is a
            DataError naming its line and value. Checked first: a format without a ``%``
            directive or with a bad one, given for the basket format or for a table without a
            timestamp column, is a DataError (a typed timestamp/date column ignores it).
            Default: ISO 8601 (with or without zone offset; converted to naive UTC), else the
            one format guessed from the first value (a guess that reads day/month both ways
            is a DataError asking for the format).
        progress: called with the fraction of the rows read (a directory of Parquet files).

    Returns:
        Baskets with ``report`` counting what was read, kept and dropped.

    Raises:
        DataError: one line naming the file and, where there is one, the line, row or column:
            missing file, not a regular file, unknown format or preset, a bad ``sep`` or
            ``timestamp_format``, a file that is not UTF-8 text, badly quoted basket lines,
            ragged CSV rows, missing or duplicated columns, a column of a type its role cannot
            use (lists, structs, maps...), empty input, unparsable or out-of-range timestamps,
            non-numeric quantities, an item column with no value, ``drop_non_products=True``
            without a preset listing non-product items, or nothing left after filtering.
            Never another exception for a bad file.
    """
    source = Path(path)
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if preset is not None and preset not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    sep = _check_sep(sep)
    timestamp_format = _check_timestamp_format(timestamp_format)
    flags = {
        "transaction": transaction_col,
        "item": item_col,
        "timestamp": timestamp_col,
        "customer": customer_col,
        "quantity": quantity_col,
        "label": label_col,
    }
    if source.is_dir():
        if format not in ("auto", "long-parquet"):
            raise DataError(
                f"{source}: is a directory; only a directory of Parquet files can be read "
                f"(format 'auto' or 'long-parquet', not {format!r})"
            )
        if sep is not None:
            raise DataError(f"{source}: sep given, but a directory of Parquet files has none")
        return _read_parquet_directory(
            source, flags, preset, drop_cancelled, drop_non_products, timestamp_format,
            progress,
        )
    _check_source(source)

    fmt = format if format != "auto" else _detect_format(source, flags, preset, sep)
    if fmt == "basket":
        named = [_FLAG[r] for r, c in flags.items() if c is not None]
        if named or preset is not None:
            what = ", ".join(named + (["preset"] if preset is not None else []))
            raise DataError(
                f"{source}: {what} given, but the basket format (one basket per line) has no "
                "columns; use format='long-csv' for a file with one row per item"
            )
        if drop_cancelled:
            raise DataError(
                f"{source}: drop_cancelled needs transaction ids; the basket format has none"
            )
        if drop_non_products:
            raise DataError(
                f"{source}: drop_non_products needs a preset that lists non-product items; the "
                "basket format has no preset"
            )
        if timestamp_format is not None:
            raise DataError(
                f"{source}: --timestamp-format given, but the basket format (one basket per "
                "line) has no timestamps"
            )
        if sep is None and _suffix(source) == ".tsv":
            sep = "\t"  # items may hold spaces: the whitespace split would cut them
        return _read_basket_lines(source, sep)
    if fmt == "long-parquet":
        return _read_long_parquet(
            source, flags, preset, drop_cancelled, drop_non_products, timestamp_format
        )
    if sep is not None:
        _check_csv_sep(sep)
    return _read_long_csv(
        source, flags, preset, drop_cancelled, drop_non_products, timestamp_format, sep
    )


def _read_basket_lines(source: Path, sep: str | None) -> Baskets:
    """The basket format (``_basket_lines``), reading ``_ASCII_FAST_PATH`` here at each call so
    that switching it off on this module takes effect."""
    return _basket_lines._read_basket_lines(source, sep, _ASCII_FAST_PATH)
