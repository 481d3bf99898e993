"""What loading checks beyond the checksums: that a model's content is sound.

A checksum proves that a file holds the bytes its manifest lists, not that those bytes make a
sound model: whoever edits a table can recompute the checksums. The compiled scorer indexes
arrays by the rules' item ids without bounds checks, so an id outside the items table is a
memory error (a crash), not an exception. Every check here therefore runs whenever a model is
read or written, also with checksum verification off, before any index is built. The checks
are vectorised (numpy views of the Arrow buffers, ``basketry.model.columns``: no pandas, no
``pyarrow.compute`` unless a problem is found) so that a model of millions of rules is checked
in about a second. docs/model-format.md ("What loading checks") lists them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from basketry.model._version import manifest_version, version_of
from basketry.model.columns import list_parts, view
from basketry.model.errors import (
    ModelContentError,
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
)
from basketry.model.format import ITEMS_FILE, RULES_FILE
from basketry.model.scoring import scoring_spec

#: Rule measures within [0, 1] by definition (a support, a probability or a mean of them).
UNIT_MEASURES = ("support", "antecedent_support", "consequent_support", "confidence",
                 "jaccard", "kulczynski", "p_value")
#: Rule measures that are >= 0 by definition.
NON_NEGATIVE_MEASURES = ("lift", "conviction")
#: The one measure that may be +inf: conviction, when confidence is 1 (the writer's value).
MAY_BE_INFINITE = ("conviction",)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")


def _is_int(value: Any) -> bool:
    """A JSON integer: ``int`` but not ``bool`` (``True`` is an ``int`` to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _row_problem(where: str, column: str, bad: np.ndarray, problem: str | Callable[[int], str],
                 rows: np.ndarray | None = None, base: int = 0) -> ModelContentError:
    """The error for the first position where ``bad`` holds: its row (``base`` + position, or
    ``base + rows[position]`` for the flattened item ids of a list column) and ``problem``, or
    ``problem(position)``."""
    first = int(np.flatnonzero(bad)[0])
    row = base + (first if rows is None else int(rows[first]))
    text = problem(first) if callable(problem) else problem
    return ModelContentError(f"{where}: column {column!r}, row {row}: {text}")


def _batches(table: pa.Table) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The record batches of ``table`` with the row each starts at. Checking batch by batch
    keeps the temporary arrays small and copies nothing; a file of tiny row groups is combined
    first, so that the cost per batch stays negligible."""
    batches = table.to_batches()
    if len(batches) > 1 + table.num_rows // 4096:
        batches = table.combine_chunks().to_batches()
    base = 0
    for batch in batches:
        yield base, batch
        base += batch.num_rows


def check_manifest(manifest: Mapping[str, Any], where: str) -> None:
    """The manifest's own fields: their types, the counts, the scoring object, and its
    ``model_version`` against the version its content gives (``where``: the manifest's path).
    The format name and version are ``read_manifest``'s."""
    counts = manifest.get("counts")
    if not isinstance(counts, Mapping):
        raise ModelContentError(f"{where}: field 'counts' must be an object, got {counts!r}")
    n_baskets = counts.get("n_baskets")
    if not _is_int(n_baskets) or n_baskets < 1:
        raise ModelContentError(f"{where}: field 'counts.n_baskets' must be a whole number "
                                f">= 1, got {n_baskets!r}")
    for key in ("n_items", "n_rules"):
        value = counts.get(key)
        if not _is_int(value) or value < 0:
            raise ModelContentError(f"{where}: field 'counts.{key}' must be a whole number "
                                    f">= 0, got {value!r}")
    files = manifest.get("files")
    if not isinstance(files, Mapping):
        raise ModelContentError(f"{where}: field 'files' must be an object, got {files!r}")
    for name, meta in files.items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise ModelFormatError(f"{where} lists an unsafe file name {name!r}")
        if not isinstance(meta, Mapping):
            raise ModelContentError(f"{where}: field 'files.{name}' must be an object")
        if not isinstance(meta.get("sha256"), str) or not _HEX64.fullmatch(meta["sha256"]):
            raise ModelContentError(f"{where}: field 'files.{name}.sha256' must be 64 "
                                    f"lowercase hex digits, got {meta.get('sha256')!r}")
        for key in ("bytes", "rows"):
            if not _is_int(meta.get(key)) or meta[key] < 0:
                raise ModelContentError(f"{where}: field 'files.{name}.{key}' must be a whole "
                                        f"number >= 0, got {meta.get(key)!r}")
    for key in ("parameters", "dataset", "metrics"):
        if key in manifest and not isinstance(manifest[key], Mapping):
            raise ModelContentError(f"{where}: field {key!r} must be an object, "
                                    f"got {type(manifest[key]).__name__}")
    check_scoring(manifest.get("scoring"), where)
    version = manifest.get("model_version")
    if not isinstance(version, str) or not _HEX16.fullmatch(version):
        raise ModelContentError(f"{where}: field 'model_version' must be 16 lowercase hex "
                                f"digits, got {version!r}")
    try:
        covered = version_of(dict(manifest))
    except ValueError as exc:
        raise ModelContentError(f"{where}: {exc}") from None
    expected = manifest_version(dict(manifest))
    if version != expected:
        raise ModelIntegrityError(
            f"{where}: field 'model_version' is {version} but the manifest's "
            f"{', '.join(covered)} give {expected} (the manifest was edited after writing)")


def check_scoring(scoring: Any, where: str) -> None:
    """The scoring object as ``scoring_spec`` reads it: a known method, known parameters,
    finite values >= 0 (missing or empty: the default)."""
    if scoring is not None and not isinstance(scoring, str | Mapping):
        raise ModelContentError(f"{where}: field 'scoring' must be an object, got {scoring!r}")
    try:
        scoring_spec(scoring or None)
    except ModelError as exc:
        raise ModelContentError(f"{where}: field 'scoring': {exc}") from None


def check_counts_match(manifest: Mapping[str, Any], items: pa.Table, rules: pa.Table,
                       where: str) -> None:
    """``counts.n_items``/``n_rules`` and each file's ``rows`` against the tables."""
    counts = manifest["counts"]
    for key, table, name in (("n_items", items, ITEMS_FILE), ("n_rules", rules, RULES_FILE)):
        if counts[key] != table.num_rows:
            raise ModelContentError(f"{where}: field 'counts.{key}' is {counts[key]} but "
                                    f"{name} has {table.num_rows} rows")
        rows = manifest["files"].get(name, {}).get("rows", table.num_rows)
        if rows != table.num_rows:
            raise ModelContentError(f"{where}: field 'files.{name}.rows' is {rows} but {name} "
                                    f"has {table.num_rows} rows")


def check_no_nulls(table: pa.Table, columns: tuple[str, ...], where: str) -> None:
    """No null in ``columns`` of ``table`` (nor among the item ids of a list column)."""
    for name in columns:
        column = table.column(name)
        if not column.null_count and not pa.types.is_list(column.type):
            continue
        base = 0
        for chunk in column.chunks:
            if chunk.null_count:
                import pyarrow.compute as pc  # only to name the row of a problem

                raise _row_problem(where, name, pc.is_null(chunk).to_numpy(
                    zero_copy_only=False), "is null", base=base)
            if pa.types.is_list(chunk.type) and chunk.values.null_count:
                values = chunk.flatten()
                if values.null_count:
                    import pyarrow.compute as pc

                    rows = np.repeat(np.arange(len(chunk)), np.diff(view(chunk.offsets)))
                    raise _row_problem(where, name, pc.is_null(values).to_numpy(
                        zero_copy_only=False), "holds a null item id", rows, base)
            base += len(chunk)


def check_items(items: pa.Table, n_baskets: int, where: str) -> None:
    """The items table (``where``: its file): item codes present and unique, counts within
    0..n_baskets."""
    check_no_nulls(items, ("item", "count"), where)
    # a set of the codes as Python strings: faster than pyarrow.compute's count_distinct (and
    # no import of it), 0.3 s for a million items
    codes = items.column("item").to_pylist()
    if len(set(codes)) != len(codes):
        # named: the repeated item that comes first, at its second row
        first: dict[str, int] = {}
        second: dict[str, int] = {}
        for row, code in enumerate(codes):
            if code not in first:
                first[code] = row
            elif code not in second:
                second[code] = row
        code = min(second, key=first.__getitem__)
        raise ModelContentError(f"{where}: column 'item', row {second[code]}: the item "
                                f"{code!r} is also in row {first[code]}")
    counts = view(items.column("count"))
    if counts.size and (counts.min() < 0 or counts.max() > n_baskets):
        bad = (counts < 0) | (counts > n_baskets)
        raise _row_problem(where, "count", bad, lambda i: f"count {int(counts[i])} is not "
                           f"within 0..{n_baskets} (counts.n_baskets)")


def check_rules(rules: pa.Table, n_items: int, n_baskets: int, where: str) -> None:
    """The rules table (``where``: its file) against ``n_items`` items and ``n_baskets``
    baskets: item ids, itemsets, counts and measures; the first problem is reported."""
    check_no_nulls(rules, tuple(rules.column_names), where)
    for base, batch in _batches(rules):
        sides = {name: list_parts(batch.column(name)) for name in ("antecedent", "consequent")}
        for name, (offsets, values) in sides.items():
            _check_itemsets(name, offsets, values, n_items, where, base)
        _check_disjoint(*sides["antecedent"], *sides["consequent"], where, base)
        _check_rule_counts(batch, n_baskets, where, base)
        _check_measures(batch, where, base)


def _check_itemsets(name: str, offsets: np.ndarray, values: np.ndarray, n_items: int,
                    where: str, base: int) -> None:
    """Non-empty, ids within 0..n_items-1, strictly ascending (so no id twice)."""
    lengths = np.diff(offsets)
    if lengths.size and lengths.min() < 1:
        raise _row_problem(where, name, lengths < 1, "is empty", base=base)
    if not values.size:
        return
    if values.min() < 0 or values.max() >= n_items:
        rows = np.repeat(np.arange(lengths.shape[0]), lengths)
        bad = (values < 0) | (values >= n_items)
        raise _row_problem(where, name, bad, lambda i: f"item id {int(values[i])} is "
                           f"outside 0..{n_items - 1} (the rows of the items table)", rows, base)
    # ascending within each itemset: every step but those into the next itemset is > 0
    step = np.diff(values)
    step[offsets[1:-1] - 1] = 1
    if (step <= 0).any():
        rows = np.repeat(np.arange(lengths.shape[0]), lengths)
        bad = np.concatenate(([False], step <= 0))
        raise _row_problem(where, name, bad, lambda i: (
            f"item id {int(values[i])} appears twice" if values[i] == values[i - 1]
            else "item ids are not ascending"), rows, base)


def _check_disjoint(a_off: np.ndarray, a_val: np.ndarray, c_off: np.ndarray,
                    c_val: np.ndarray, where: str, base: int) -> None:
    """No item on both sides of a rule: each consequent position against every antecedent
    item of its rule, one pass per position (consequents have one item, rarely a few)."""
    a_len = np.diff(a_off)
    c_len = np.diff(c_off)
    if not a_val.size or not c_len.size:
        return
    last = c_off[1:] - 1
    for j in range(int(c_len.max())):
        # rules whose consequent is shorter repeat their last item: checked twice, harmless
        consequent_j = c_val[np.minimum(c_off[:-1] + j, last)]
        bad = np.repeat(consequent_j, a_len) == a_val
        if bad.any():
            rows = np.repeat(np.arange(a_len.shape[0]), a_len)
            raise _row_problem(where, "consequent", bad, lambda i: f"item id {int(a_val[i])} "
                               "is also in the antecedent", rows, base)


def _check_rule_counts(batch: pa.RecordBatch, n_baskets: int, where: str, base: int) -> None:
    """0 < count <= antecedent_count, count <= consequent_count, both <= n_baskets."""
    n_xy = view(batch.column("count"))
    n_x = view(batch.column("antecedent_count"))
    n_y = view(batch.column("consequent_count"))
    checks: tuple[tuple[str, np.ndarray, Callable[[int], str]], ...] = (
        ("count", n_xy < 1, lambda i: f"count {n_xy[i]} is not >= 1"),
        ("count", n_xy > n_x,
         lambda i: f"count {n_xy[i]} exceeds antecedent_count {n_x[i]}"),
        ("count", n_xy > n_y,
         lambda i: f"count {n_xy[i]} exceeds consequent_count {n_y[i]}"),
        ("antecedent_count", n_x > n_baskets,
         lambda i: f"antecedent_count {n_x[i]} exceeds counts.n_baskets {n_baskets}"),
        ("consequent_count", n_y > n_baskets,
         lambda i: f"consequent_count {n_y[i]} exceeds counts.n_baskets {n_baskets}"),
    )
    for column, bad, problem in checks:
        if bad.any():
            raise _row_problem(where, column, bad, problem, base=base)


def _check_measures(batch: pa.RecordBatch, where: str, base: int) -> None:
    """Every measure a number (never NaN), finite except conviction (+inf when confidence is
    1), within [0, 1] for supports, confidence, jaccard, kulczynski and p_value, >= 0 for lift
    and conviction. A column's minimum and maximum (NaN if any value is NaN) decide whether it
    is sound; only a column that is not is looked at value by value."""
    for column in batch.schema.names:
        if not pa.types.is_floating(batch.schema.field(column).type):
            continue
        values = view(batch.column(column))
        if not values.size:
            continue
        low, high = values.min(), values.max()
        if column in UNIT_MEASURES:
            sound = low >= 0 and high <= 1
        elif column in NON_NEGATIVE_MEASURES:
            sound = low >= 0 and (high < np.inf or column in MAY_BE_INFINITE)
        else:
            sound = -np.inf < low and high < np.inf
        if sound:
            continue
        allowed = column in MAY_BE_INFINITE
        bad = ~np.isfinite(values) & ~(allowed & (values == np.inf))
        if bad.any():
            raise _row_problem(where, column, bad, lambda i, v=values, a=allowed: (
                f"{float(v[i])} is not " + ("a number or +inf" if a else "a finite number")),
                base=base)
        if column in UNIT_MEASURES:
            bad, span = (values < 0) | (values > 1), "within [0, 1]"
        else:
            bad, span = values < 0, ">= 0"
        raise _row_problem(where, column, bad,
                           lambda i, v=values, s=span: f"{float(v[i])} is not {s}", base=base)
