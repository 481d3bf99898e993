"""Regenerate the bundled sample src/basketry/data/sample/online_retail_sample.parquet.

The sample is every line of the UCI "Online Retail" data set (Chen, Sain, Guo 2012; CC BY 4.0)
whose InvoiceDate falls in the last ``--months`` calendar months of the data (default 4: from
2011-08-09 00:00 to the last invoice on 2011-12-09), all columns and values unchanged, rows in
their original order. Cancellations (InvoiceNo "C...") and non-positive quantities are kept, so
the reader's filters have something to do.

    python scripts/make_sample.py [--source ../shared/data/online_retail.parquet]
                                  [--out src/basketry/data/sample/online_retail_sample.parquet]
                                  [--months 4]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / ".." / "shared" / "data" / "online_retail.parquet"
OUT = ROOT / "src" / "basketry" / "data" / "sample" / "online_retail_sample.parquet"
SOURCE_MD5 = "97aa5089c05532c27d6b789a5f1db74e"
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"]


def make_sample(source: Path, out: Path, months: int) -> pa.Table:
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    if digest != SOURCE_MD5:
        print(f"warning: {source} has md5 {digest}, expected {SOURCE_MD5}")
    table = pq.read_table(source, columns=COLUMNS)
    when = pc.strptime(table["InvoiceDate"], format="%Y-%m-%d %H:%M:%S", unit="s")
    last = pd.Timestamp(pc.max(when).as_py())
    start = (last.normalize() - pd.DateOffset(months=months)).to_pydatetime()
    sample = table.filter(pc.greater_equal(when, pa.scalar(start, pa.timestamp("s"))))
    sample = sample.replace_schema_metadata(None)  # drop the pandas index of the full file
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        sample, out, compression="zstd", compression_level=19, use_dictionary=True,
        row_group_size=1 << 20,
    )
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--months", type=int, default=4)
    args = parser.parse_args()
    sample = make_sample(args.source.resolve(), args.out, args.months)
    invoices = pc.count_distinct(sample["InvoiceNo"]).as_py()
    cancelled = pc.sum(pc.starts_with(sample["InvoiceNo"], "C")).as_py()
    dates = sample["InvoiceDate"]
    print(
        f"wrote {args.out}: {sample.num_rows} lines, {invoices} invoices, "
        f"{cancelled} cancellation lines, {pc.min(dates).as_py()} .. {pc.max(dates).as_py()}, "
        f"{args.out.stat().st_size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
