"""The mining side names its measures without importing the model contract (so `import
basketry.mining` stays light); this keeps the two lists from drifting apart."""

from basketry.mining import MEASURES
from basketry.mining.rules import COUNTS
from basketry.model.format import COUNT_COLUMNS, MEASURE_COLUMNS, RULES_SCHEMA


def test_mining_measures_are_the_artifact_columns():
    assert tuple(MEASURES) == MEASURE_COLUMNS
    assert tuple(COUNTS) == COUNT_COLUMNS
    assert RULES_SCHEMA.names == ["antecedent", "consequent", *COUNT_COLUMNS, *MEASURE_COLUMNS]
