"""`basketry rules`: a model's strongest rules, chosen without loading the whole rules table, and
written as a terminal table, CSV or JSON.

The sort key and the count (the tie-break) are read first, the top rows found with numpy
(``argpartition``, then a stable sort of the candidates only), and only the row groups holding
them are read in full: on a model of millions of rules this is seconds, not a minute of pandas.
The files are checked against the manifest's checksums, as every command that reads a model.

Exports carry itemsets as item lists (JSON arrays; in CSV the items joined by ``" | "``), the
item labels beside the codes when the model has labels, measures to 6 significant digits and
p-values to 3 (in CSV, in scientific notation when small: ``1e-300``, never ``0``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from basketry.model import read_manifest, verify_files
from basketry.model.format import COUNT_COLUMNS, ITEMS_FILE, MEASURE_COLUMNS, RULES_FILE

#: What ``--sort`` accepts: every count and measure of the rules table.
SORTABLE = (*MEASURE_COLUMNS, *COUNT_COLUMNS)
#: The separator of a CSV cell's items (``22804 | 21232``).
CSV_ITEM_SEPARATOR = " | "


@dataclass(frozen=True)
class RuleSelection:
    """The chosen rules, in order, with what is needed to show them."""

    rows: pa.Table  # every column of the rules table, the chosen rows only
    items: list[str]  # item code by id
    labels: list[str | None] | None  # item label by id; None when the model has no labels
    version: str
    n_rules: int  # in the model


def top_indices(key: np.ndarray, count: np.ndarray, top: int) -> np.ndarray:
    """Row indices of the ``top`` largest ``key`` values, ties by the larger ``count``, then by
    row order (as a stable descending sort would give); NaN sorts last."""
    key = np.where(np.isnan(key), -np.inf, key)
    if top < key.shape[0]:
        threshold = np.partition(key, key.shape[0] - top)[key.shape[0] - top]
        candidates = np.flatnonzero(key >= threshold)  # every tie at the boundary
    else:
        candidates = np.arange(key.shape[0])
    order = np.lexsort((candidates, -count[candidates], -key[candidates]))
    return candidates[order[:top]]


def _mentions(rules: pq.ParquetFile, item_id: int) -> np.ndarray:
    """The indices of the rules with ``item_id`` on either side."""
    import pyarrow.compute as pc

    found = np.zeros(rules.metadata.num_rows, dtype=bool)
    start = 0
    # a row group at a time: the item lists of millions of rules never sit in memory at once
    for group in range(rules.num_row_groups):
        table = rules.read_row_group(group, columns=["antecedent", "consequent"])
        for name in ("antecedent", "consequent"):
            column = table.column(name).combine_chunks()
            values = pc.list_flatten(column).to_numpy()
            parents = pc.list_parent_indices(column).to_numpy()
            found[start + parents[values == item_id]] = True
        start += table.num_rows
    return np.flatnonzero(found)


def _read_rows(rules: pq.ParquetFile, indices: np.ndarray) -> pa.Table:
    """The rows at ``indices`` (in that order), reading only the row groups that hold them."""
    sizes = [rules.metadata.row_group(g).num_rows for g in range(rules.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = np.searchsorted(starts, indices, side="right") - 1
    wanted = sorted(set(groups.tolist()))
    if not wanted:
        return rules.schema_arrow.empty_table()
    table = rules.read_row_groups(wanted)
    # where each wanted group starts in the table read
    base = dict(zip(wanted, np.concatenate([[0], np.cumsum([sizes[g] for g in wanted])]),
                    strict=False))
    positions = np.array([base[g] + i - starts[g] for g, i in zip(groups.tolist(), indices.tolist(),
                                                                   strict=True)], dtype=np.int64)
    return table.take(pa.array(positions))


def select_rules(model_dir: Path, *, sort: str, top: int, item: str | None,
                 stage: Callable[[str], None]) -> RuleSelection:
    """The ``top`` rules of the model at ``model_dir`` by ``sort`` (descending; ties by count),
    only those that mention ``item`` when given. ``stage`` hears what is being done."""
    stage("checking the model files")
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    items_table = pq.ParquetFile(model_dir / ITEMS_FILE).read()
    items = items_table.column("item").to_pylist()
    labels = items_table.column("label").to_pylist()
    rules = pq.ParquetFile(model_dir / RULES_FILE)
    n_rules = rules.metadata.num_rows
    stage(f"reading the {sort} of {n_rules:,} rules")
    keys = rules.read(columns=[sort, "count"])
    key = keys.column(sort).to_numpy().astype(np.float64)
    count = keys.column("count").to_numpy()
    if item is not None:
        stage(f"finding the rules that mention {item}")
        item_id = items.index(item) if item in items else -1
        subset = _mentions(rules, item_id) if item_id >= 0 else np.zeros(0, dtype=np.int64)
        chosen = subset[top_indices(key[subset], count[subset], top)]
    else:
        stage(f"choosing the top {top:,}")
        chosen = top_indices(key, count, top)
    stage(f"reading {len(chosen):,} rules")
    return RuleSelection(rows=_read_rows(rules, chosen), items=items,
                         labels=labels if any(labels) else None,
                         version=str(manifest.get("model_version", "")), n_rules=n_rules)


# ---- writing ---------------------------------------------------------------------------------
def round_significant(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits (1e-300 stays 1e-300)."""
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def records(selection: RuleSelection) -> Iterator[dict[str, Any]]:
    """The chosen rules as plain values: item lists, labels beside codes, counts as integers,
    measures rounded (p-values to 3 significant digits, the others to 6)."""
    items, labels = selection.items, selection.labels
    columns = selection.rows.to_pydict()
    for row in range(selection.rows.num_rows):
        record: dict[str, Any] = {side: [items[i] for i in columns[side][row]]
                                  for side in ("antecedent", "consequent")}
        if labels is not None:
            for side in ("antecedent", "consequent"):
                record[f"{side}_labels"] = [labels[i] for i in columns[side][row]]
        for name in COUNT_COLUMNS:
            record[name] = int(columns[name][row])
        for name in MEASURE_COLUMNS:
            record[name] = round_significant(columns[name][row], 3 if name == "p_value" else 6)
        yield record


def write_json(selection: RuleSelection, out: IO[str]) -> None:
    """A JSON array of rule objects; a measure that is not finite (the conviction of a rule of
    confidence 1) is null, as JSON has no infinity."""
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items()} for record in records(selection)]
    out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return CSV_ITEM_SEPARATOR.join("" if v is None else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_csv(selection: RuleSelection, out: IO[str]) -> None:
    """A header and one line per rule; items joined by ``" | "``; ``inf`` for an infinite
    measure."""
    writer = csv.writer(out, lineterminator="\n")
    header_written = False
    for record in records(selection):
        if not header_written:
            writer.writerow(record.keys())
            header_written = True
        writer.writerow(_csv_cell(v) for v in record.values())
    if not header_written:  # no rule: the header alone
        names = ["antecedent", "consequent"]
        if selection.labels is not None:
            names += ["antecedent_labels", "consequent_labels"]
        writer.writerow([*names, *COUNT_COLUMNS, *MEASURE_COLUMNS])
