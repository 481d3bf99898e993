"""`basketry rules` exports, read back as a user's program would: item lists, labels beside codes,
rounded measures; unknown output kinds and sort keys refused; the top-k choice equals a full
stable sort."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.cli.rules_export import CSV_ITEM_SEPARATOR, top_indices

runner = CliRunner()

LABELS = {"22804": "RED MUG", "21232": "BLUE, CUP", "X1": None}
BASKETS = [["22804", "21232"], ["22804", "21232", "X1"], ["X1", "22804"]] * 10


@pytest.fixture(scope="module")
def labelled_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    data = root / "sales.csv"
    rows = ["order,sku,name"]
    for n, basket in enumerate(BASKETS):
        rows += [f'{n},{item},"{LABELS[item] or ""}"' for item in basket]
    data.write_text("\n".join(rows) + "\n")
    out = root / "model"
    result = runner.invoke(app, ["mine", str(data), "--transaction-col", "order", "--item-col",
                                 "sku", "--label-col", "name", "--min-support", "0.1",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_json_export_has_item_lists_labels_and_rounded_measures(labelled_model):
    result = runner.invoke(app, ["rules", str(labelled_model), "--output", "JSON"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 9
    for row in rows:
        assert isinstance(row["antecedent"], list) and isinstance(row["consequent"], list)
        assert row["antecedent_labels"] == [LABELS[i] for i in row["antecedent"]]
        assert row["consequent_labels"] == [LABELS[i] for i in row["consequent"]]
        assert isinstance(row["count"], int)
        for name in ("support", "confidence", "lift"):
            assert row[name] == float(f"{row[name]:.6g}")
    first = rows[0]
    assert first["antecedent"] == ["21232"] and first["consequent"] == ["22804"]
    assert first["support"] == 0.666667
    assert first["conviction"] is None  # confidence 1: infinite, and JSON has no infinity
    assert any(len(row["antecedent"]) == 2 for row in rows)


def test_csv_export_joins_items_and_never_writes_tuples(labelled_model):
    result = runner.invoke(app, ["rules", str(labelled_model), "--output", "csv", "--sort",
                                 "confidence"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 9
    assert "(" not in result.stdout and "'" not in result.stdout
    pair = next(r for r in rows if CSV_ITEM_SEPARATOR in r["antecedent"])
    items = pair["antecedent"].split(CSV_ITEM_SEPARATOR)
    assert set(items) <= set(LABELS) and len(items) == 2
    assert pair["antecedent_labels"].split(CSV_ITEM_SEPARATOR) == [LABELS[i] or "" for i in items]
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert {r["conviction"] for r in rows if float(r["confidence"]) == 1.0} == {"inf"}


def test_item_filter_and_top(labelled_model):
    result = runner.invoke(app, ["rules", str(labelled_model), "--output", "json", "--item",
                                 "X1", "--top", "3"])
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and all("X1" in r["antecedent"] + r["consequent"] for r in rows)
    nothing = runner.invoke(app, ["rules", str(labelled_model), "--output", "csv", "--item",
                                  "nope"])
    assert nothing.exit_code == 0 and len(nothing.stdout.strip().splitlines()) == 1


def test_table_shows_labels_beside_codes(labelled_model):
    result = runner.invoke(app, ["rules", str(labelled_model)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "21232 (BLUE, CUP)" in result.output and "9 of 9 rules" in result.output


@pytest.mark.parametrize(("option", "value"), [("--output", "xlsx"), ("--sort", "liftt")])
def test_unknown_output_or_sort_is_refused(labelled_model, option, value):
    result = runner.invoke(app, ["rules", str(labelled_model), option, value])
    assert result.exit_code == 2 and value in result.output


def test_top_indices_equal_a_stable_descending_sort():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 5, 2_000).astype(float)
    key[::97] = math.nan
    count = rng.integers(0, 3, 2_000)
    full = sorted(range(2_000), key=lambda i: (-(-math.inf if math.isnan(key[i]) else key[i]),
                                               -count[i], i))
    for top in (1, 7, 300, 2_000, 5_000):
        assert top_indices(key, count, top).tolist() == full[:top]


def test_rows_and_mentions_across_row_groups(tmp_path):
    """Rules files of millions of rows have many row groups: the chosen rows are read from
    theirs, in the order asked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from basketry.cli.rules_export import _mentions, _read_rows

    n = 50
    table = pa.table({"antecedent": [[i % 7, 7 + i % 3] for i in range(n)],
                      "consequent": [[10 + i % 5] for i in range(n)],
                      "lift": [float(i) for i in range(n)]})
    path = tmp_path / "rules.parquet"
    pq.write_table(table, path, row_group_size=8)
    rules = pq.ParquetFile(path)
    assert rules.num_row_groups > 5
    wanted = np.array([49, 3, 17, 8, 40, 0])
    assert _read_rows(rules, wanted).column("lift").to_pylist() == [49.0, 3.0, 17.0, 8.0, 40.0,
                                                                     0.0]
    assert _mentions(rules, 8).tolist() == [i for i in range(n) if i % 3 == 1]
    assert _mentions(rules, 12).tolist() == [i for i in range(n) if i % 5 == 2]
