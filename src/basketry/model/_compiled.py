"""The scoring kernels by name, ahead of time or JIT (see ``basketry._kernels``): a process
that scores with the ahead-of-time module (a serving worker) never imports numba."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from basketry._kernels import Kernels

# the trie and the per-item arrays of a RuleScorer, in the order of RuleScorer._trie(), then
# combine, popular, item_support, floor and the two scratch arrays (written, restored on return)
_TRIE = ("i8[:,:]", "i4[:]", "i8[:]", "i8[:]", "i4[:]", "f8[:]", "i4[:]", "f8[:]")
_TAIL = ("f8", "i8[:]", "f8[:]", "f8[:]", "i8[:]!", "f8[:]!")

# kernel module -> kernel -> signature codes (see basketry._kernels.signatures)
MODEL_SPEC: dict[str, dict[str, tuple[str, ...]]] = {
    "_fire": {
        # ids, exclude, banned, k
        "answer_basket": ("i4[:]", "i4[:]", "i4[:]", "i8", *_TRIE, *_TAIL),
        # q_ptr, q_items, k, use_rules
        "batch_top_items": ("i8[:]", "i4[:]", "i8", "b1", *_TRIE, *_TAIL),
    },
}

#: the scratch value of an item no fired rule has reached (``_fire._FREE``; kept here so that
#: the scorer need not import the kernel module, which imports numba)
FREE = np.iinfo(np.int64).max

kernels = Kernels("basketry.model", MODEL_SPEC, Path(__file__).parent)
