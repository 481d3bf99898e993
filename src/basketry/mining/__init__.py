"""basketry.mining: exact frequent itemsets (FP-Growth, Apriori) and association rules."""

from basketry.mining.errors import BudgetExceeded, MiningError
from basketry.mining.estimator import AssociationMiner
from basketry.mining.itemsets import FrequentItemsets, frequent_itemsets
from basketry.mining.rules import MEASURES, Rules, association_rules, compute_measures

__all__ = [
    "MEASURES",
    "AssociationMiner",
    "BudgetExceeded",
    "FrequentItemsets",
    "MiningError",
    "Rules",
    "association_rules",
    "compute_measures",
    "frequent_itemsets",
]
