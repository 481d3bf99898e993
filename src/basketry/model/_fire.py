"""The compiled core of scoring: walk the antecedent trie over a basket and keep, for every
candidate item, the best-ranked rule that fires for it."""

from __future__ import annotations

import numba
import numpy as np

_FREE = np.iinfo(np.int64).max  # scratch value of an item no fired rule has reached yet
_BLOCKED = -1  # scratch value of an item that must not be recommended


@numba.njit(cache=True)
def best_ranks(
    ids: np.ndarray,  # int32, the basket's known item ids, sorted ascending, unique
    blocked: np.ndarray,  # int32, items never to recommend (basket, exclude)
    k: int,
    child_ptr: np.ndarray,  # int64 (n_nodes + 1): children of trie node v are child_ptr[v]..
    child_item: np.ndarray,  # int32, item of each child edge, ascending within a node
    child_node: np.ndarray,  # int64, node each child edge leads to
    node_lo: np.ndarray,  # int64, rank range of the rules whose antecedent ends at the node
    node_hi: np.ndarray,
    group_ranks: np.ndarray,  # int64, ranks grouped by antecedent, ascending within a group
    consequent: np.ndarray,  # int32, consequent item of each rank
    scratch: np.ndarray,  # int64 (n_items,), all _FREE on entry and on return
) -> np.ndarray:
    """Ranks of the best rule of each of the top-``k`` candidate items, best first."""
    for b in blocked:
        scratch[b] = _BLOCKED
    touched = np.empty(64, dtype=np.int32)
    n_touched = 0
    # depth-first walk: (node, first basket position that may extend it)
    stack_node = np.empty(64, dtype=np.int64)
    stack_pos = np.empty(64, dtype=np.int64)
    stack_node[0] = 0
    stack_pos[0] = 0
    depth = 1
    n = ids.shape[0]
    while depth:
        depth -= 1
        node = stack_node[depth]
        j = stack_pos[depth]
        lo = child_ptr[node]
        hi = child_ptr[node + 1]
        # find each remaining basket item among the node's sorted children by binary search
        # (the root and popular items have thousands of children; a basket has a few items)
        while j < n and lo < hi:
            target = ids[j]
            a, z = lo, hi
            while a < z:
                mid = (a + z) >> 1
                if child_item[mid] < target:
                    a = mid + 1
                else:
                    z = mid
            lo = a
            if lo < hi and child_item[lo] == target:
                child = child_node[lo]
                for g in range(node_lo[child], node_hi[child]):
                    rank = group_ranks[g]
                    item = consequent[rank]
                    current = scratch[item]
                    if current == _BLOCKED or current <= rank:
                        continue
                    if current == _FREE:
                        if n_touched == touched.shape[0]:
                            grown = np.empty(2 * n_touched, dtype=np.int32)
                            grown[:n_touched] = touched
                            touched = grown
                        touched[n_touched] = item
                        n_touched += 1
                    scratch[item] = rank
                if child_ptr[child + 1] > child_ptr[child]:
                    if depth == stack_node.shape[0]:
                        stack_node = np.concatenate((stack_node, np.empty_like(stack_node)))
                        stack_pos = np.concatenate((stack_pos, np.empty_like(stack_pos)))
                    stack_node[depth] = child
                    stack_pos[depth] = j + 1
                    depth += 1
                lo += 1
            j += 1
    found = np.empty(n_touched, dtype=np.int64)
    for t in range(n_touched):
        found[t] = scratch[touched[t]]
        scratch[touched[t]] = _FREE
    for b in blocked:
        scratch[b] = _FREE
    found.sort()
    return found[:k]
