"""The model artifact format: names, versions and table schemas shared by writer and reader.

See docs/model-format.md for the specification written for other languages.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT_NAME = "basketry-model"
#: Bumped when a reader of the previous version could misread a new artifact.
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ITEMS_FILE = "items.parquet"
RULES_FILE = "rules.parquet"

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=True),
        pa.field("count", pa.int64(), nullable=False),
    ]
)

MEASURE_COLUMNS = (
    "support",
    "antecedent_support",
    "consequent_support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "zhang",
    "jaccard",
    "certainty",
    "kulczynski",
    "p_value",
)
COUNT_COLUMNS = ("count", "antecedent_count", "consequent_count")

RULES_SCHEMA = pa.schema(
    [
        pa.field("antecedent", pa.list_(pa.int32()), nullable=False),
        pa.field("consequent", pa.list_(pa.int32()), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in COUNT_COLUMNS),
        *(pa.field(name, pa.float64(), nullable=False) for name in MEASURE_COLUMNS),
    ]
)

# The optional sequential part ("after the purchase", docs/model-format.md): listed in the
# manifest's ``files`` like the other tables (so checksummed and covered by ``model_version``)
# and described by the manifest's ``counts.sequential`` and ``parameters.sequential``.
SEQUENTIAL_RULES_FILE = "sequential_rules.parquet"
REPEAT_FILE = "repeat_items.parquet"
SEQUENTIAL_COUNT_COLUMNS = ("count", "antecedent_count", "consequent_count")
SEQUENTIAL_RULES_SCHEMA = pa.schema(
    [
        pa.field("antecedent", pa.list_(pa.int32()), nullable=False),
        pa.field("consequent", pa.int32(), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in SEQUENTIAL_COUNT_COLUMNS),
        *(pa.field(name, pa.float64(), nullable=False)
          for name in ("support", "confidence", "lift")),
    ]
)
REPEAT_SCHEMA = pa.schema(
    [
        pa.field("item", pa.int32(), nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in SEQUENTIAL_COUNT_COLUMNS),
        *(pa.field(name, pa.float64(), nullable=False) for name in ("confidence", "lift")),
    ]
)
