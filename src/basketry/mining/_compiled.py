"""The mining kernels by name, ahead of time or JIT (see ``basketry._kernels``)."""

from __future__ import annotations

from pathlib import Path

from basketry._kernels import Kernels

# kernel module -> kernel -> signature codes (see basketry._kernels.signatures)
MINING_SPEC: dict[str, dict[str, tuple[str, ...]]] = {
    "_kernels": {
        "recode_baskets": ("i8[:]", "i4[:]", "i4[:]"),
        "map_sort_rows": ("i8[:]", "i4[:]", "i4[:]"),
        "build_trie": ("i8[:]", "i4[:]"),
        "count_trie": ("i8[:]", "i4[:]", "i8[:]", "i8[:]", "i4[:]", "i8[:]", "i8", "i8[:]!"),
        "strip_rows": ("i8[:]", "i4[:]", "b1[:]"),
        "lookup_rows": ("i8[:]", "i4[:]", "i8[:]", "i4[:]"),
        "gather_rows": ("i8[:]", "i4[:]", "i8[:]"),
        "rule_measures": ("i8[:]", "i8[:]", "i8[:]", "i8"),
        "radix_order": ("i8[:]", "i4[:]", "i8", "b1"),
        "order_by_two_keys": ("i8[:]", "i8[:]", "i8"),
    },
    "_fpgrowth": {
        "build_tree": ("i8[:]", "i4[:]", "i8"),
        # the tree's arrays are also the scratch arena of the conditional trees
        "mine": ("i4[:]!", "i4[:]!", "i4[:]!", "i8", "i8[:]", "i4[:]!", "i8[:]", "i8", "i8",
                 "i8", "i8", "u1[:]", "b1", "i8"),
    },
    "_apriori": {
        "count_pairs": ("i8[:]", "i4[:]", "i8"),
        "frequent_pairs": ("i4[:]", "i8", "i8", "u1[:]", "b1"),
        "generate_candidates": ("i4[:,:]",),
    },
    "_rules_kernel": {
        "generate_rules": ("i8[:]", "i4[:]", "i8[:]", "b1[:]", "b1[:]", "i8", "b1", "i8", "f8",
                           "f8", "i8"),
    },
    "_fisher": {
        "fisher_upper": ("i8[:]", "i8[:]", "i8[:]", "i8"),
    },
}

kernels = Kernels("basketry.mining", MINING_SPEC, Path(__file__).parent)
