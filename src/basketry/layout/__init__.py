"""Shelf layout: products likely to be bought together placed close to each other.

From a model's rules or from baskets, an item affinity graph is grouped into aisles (Louvain
communities under the store's constraints), the aisles put in a walking order, and the products
in a shelf order; or, from the store's current layout, the moves that gain the most within a
budget. The plan's format is :mod:`basketry.model.layout`. See docs/layout.md.

    from basketry.layout import LayoutParams, pairs_from_model, plan_layout
    plan = plan_layout(pairs_from_model("models/retail"), LayoutParams(aisles=20))
"""

from __future__ import annotations

from basketry.layout.affinity import (
    DEFAULT_WEIGHTING,
    WEIGHTINGS,
    Affinity,
    PairCounts,
    build_affinity,
    pairs_from_baskets,
    pairs_from_model,
)
from basketry.layout.build import LayoutParams, plan_layout
from basketry.layout.constraints import (
    Anchor,
    Categories,
    Current,
    read_capacities,
    read_categories,
    read_current,
    read_fixed,
)

__all__ = ["DEFAULT_WEIGHTING", "WEIGHTINGS", "Affinity", "Anchor", "Categories", "Current",
           "LayoutParams", "PairCounts", "build_affinity", "pairs_from_baskets",
           "pairs_from_model", "plan_layout", "read_capacities", "read_categories",
           "read_current", "read_fixed"]
