"""The compiled core of scoring: walk the antecedent trie over a basket, gather for every
candidate item its best-ranked fired rule and the evidence of all its fired rules, and rank
the candidates. ``batch_top_items`` runs the same kernel over many baskets (offline evaluation)."""

from __future__ import annotations

import numba
import numpy as np

_FREE = np.iinfo(np.int64).max  # scratch value of an item no fired rule has reached yet
_BLOCKED = -1  # scratch value of an item that must not be recommended


@numba.njit(cache=True, inline="always")
def _lower_bound(values: np.ndarray, lo: int, hi: int, target: int) -> int:
    """The first position in ``values[lo:hi]`` (ascending) whose value is >= ``target``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def top_candidates(
    ids: np.ndarray,  # int32, the basket's known item ids, sorted ascending, unique
    blocked: np.ndarray,  # int32, items never to recommend (basket, exclude)
    k: int,
    # int64 (n_nodes, 4): of trie node v, [v, 0]..[v, 1] is the range in group_ranks of the
    # rules whose antecedent ends at v and [v, 2]..[v, 3] the range of its child edges (one row,
    # one cache line, per node visited)
    nodes: np.ndarray,
    child_item: np.ndarray,  # int32, item of each child edge, ascending within a node
    child_node: np.ndarray,  # int64, node each child edge leads to
    group_ranks: np.ndarray,  # int64, ranks grouped by antecedent, ascending within a group
    # the consequent item and the evidence (added with weight ``combine``) of each entry of
    # group_ranks, stored beside it so that a fired group is read in one sequential pass
    group_item: np.ndarray,  # int32
    group_excess: np.ndarray,  # float64
    consequent: np.ndarray,  # int32, consequent item of each rank
    value: np.ndarray,  # float64, each rank's rule score (non-increasing with rank)
    combine: float,  # weight of the summed evidence; 0: the best rule alone decides
    # float64 (n_items,): an item whose score is at most its floor is no candidate (one scale:
    # the empty-antecedent rule, the item's base rate, explains it as well); -inf for methods
    # whose rules always come before popular items
    floor: np.ndarray,
    scratch: np.ndarray,  # int64 (n_items,), all _FREE on entry and on return
    evidence: np.ndarray,  # float64 (n_items,), all 0 on entry and on return
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the best rule of each of the top-``k`` candidate items and the candidates'
    scores, best first. An item's score is ``value[best rank] + combine * sum(evidence)`` over
    all its fired rules; ties go to the better (lower) best rank. Items whose score is
    ``<= floor[item]`` are left out."""
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
        v = stack_node[depth]
        j = stack_pos[depth]
        lo = nodes[v, 2]
        hi = nodes[v, 3]
        # intersect the node's sorted children with the rest of the (sorted) basket: step
        # through the shorter list and find each of its entries in the longer by binary
        # search (the root and popular items have thousands of children, deeper nodes a few;
        # a basket has a few items or, rarely, a hundred)
        scan_children = hi - lo < n - j
        while j < n and lo < hi:
            if scan_children:
                target = child_item[lo]
                j = _lower_bound(ids, j, n, target)
                if j == n:
                    break
                if ids[j] != target:
                    lo += 1
                    continue
            else:
                target = ids[j]
                lo = _lower_bound(child_item, lo, hi, target)
                if lo == hi:
                    break
                if child_item[lo] != target:
                    j += 1
                    continue
            # a match: the basket's item j is the node's child lo
            child = child_node[lo]
            for g in range(nodes[child, 0], nodes[child, 1]):
                item = group_item[g]
                current = scratch[item]
                if current == _BLOCKED:
                    continue
                if combine != 0.0:
                    evidence[item] += group_excess[g]
                rank = group_ranks[g]
                if current <= rank:
                    continue
                if current == _FREE:
                    if n_touched == touched.shape[0]:
                        grown = np.empty(2 * n_touched, dtype=np.int32)
                        grown[:n_touched] = touched
                        touched = grown
                    touched[n_touched] = item
                    n_touched += 1
                scratch[item] = rank
            if nodes[child, 3] > nodes[child, 2]:
                if depth == stack_node.shape[0]:
                    stack_node = np.concatenate((stack_node, np.empty_like(stack_node)))
                    stack_pos = np.concatenate((stack_pos, np.empty_like(stack_pos)))
                stack_node[depth] = child
                stack_pos[depth] = j + 1
                depth += 1
            lo += 1
            j += 1
    # the top k by score descending, then best rank ascending (a total order: ranks are
    # distinct), kept by insertion: k is small, the candidates a few dozen to a few hundred
    kk = min(k, n_touched)
    top_rank = np.empty(kk, dtype=np.int64)
    top_score = np.empty(kk, dtype=np.float64)
    m = 0
    for t in range(n_touched):
        item = touched[t]
        rank = scratch[item]
        score = value[rank] + combine * evidence[item]
        scratch[item] = _FREE
        evidence[item] = 0.0
        if score <= floor[item]:
            continue
        if kk == 0 or (m == kk and not _before(score, rank, top_score[m - 1],
                                                top_rank[m - 1])):
            continue
        p = m if m < kk else kk - 1
        while p > 0 and _before(score, rank, top_score[p - 1], top_rank[p - 1]):
            top_score[p] = top_score[p - 1]
            top_rank[p] = top_rank[p - 1]
            p -= 1
        top_score[p] = score
        top_rank[p] = rank
        if m < kk:
            m += 1
    for b in blocked:
        scratch[b] = _FREE
    return top_rank[:m], top_score[:m]


@numba.njit(cache=True, inline="always")
def _before(score: float, rank: int, other_score: float, other_rank: int) -> bool:
    """Whether a candidate ranks before another: higher score, then better (lower) rank."""
    return score > other_score or (score == other_score and rank < other_rank)


@numba.njit(cache=True)
def answer_basket(
    ids: np.ndarray,  # int32, the basket's known item ids, sorted ascending, unique
    exclude: np.ndarray,  # int32, further items never to recommend (request's exclude)
    banned: np.ndarray,  # int32, items never to recommend (the catalogue's unavailable items)
    k: int,
    nodes: np.ndarray,
    child_item: np.ndarray,
    child_node: np.ndarray,
    group_ranks: np.ndarray,
    group_item: np.ndarray,
    group_excess: np.ndarray,
    consequent: np.ndarray,
    value: np.ndarray,
    combine: float,
    popular: np.ndarray,  # int64, item ids by popularity (count desc, id asc)
    item_support: np.ndarray,  # float64, each item's support: a fallback's score
    floor: np.ndarray,  # float64, see top_candidates: item_support (one scale) or all -inf
    scratch: np.ndarray,
    evidence: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One basket's whole answer: up to ``k`` items, best first, with the rank of the rule that
    explains each (-1 for a popular item) and their scores, and how many came from rules.
    The items from rules are ``top_candidates``'; the popular items are the most popular ones
    not in the basket, not excluded, not banned and not from rules. The two lists are merged
    by score: a rule's item comes first unless a popular item's floor is higher (with a floor
    of -inf, all rule items come first and popular items only fill the answer)."""
    blocked = np.concatenate((ids, exclude, banned))
    ranks = np.empty(0, dtype=np.int64)
    scores = np.empty(0, dtype=np.float64)
    if k > 0 and ids.shape[0] > 0:
        ranks, scores = top_candidates(ids, blocked, k, nodes, child_item, child_node,
                                       group_ranks, group_item, group_excess,
                                       consequent, value, combine, floor, scratch, evidence)
    m = ranks.shape[0]
    items = np.empty(k, dtype=np.int64)
    out_ranks = np.full(k, -1, dtype=np.int64)
    out_scores = np.empty(k, dtype=np.float64)
    # mark what may not be recommended, merge the rule items (best first) with the popular
    # items (count desc, id asc) by score, rule items first on ties, then clear the marks
    for b in blocked:
        scratch[b] = _BLOCKED
    for r in range(m):
        scratch[consequent[ranks[r]]] = _BLOCKED
    n = 0
    t = 0
    p = 0
    n_popular = popular.shape[0]
    while n < k:
        while p < n_popular and scratch[popular[p]] == _BLOCKED:
            p += 1
        if t < m and (p == n_popular or scores[t] >= floor[popular[p]]):
            items[n] = consequent[ranks[t]]
            out_ranks[n] = ranks[t]
            out_scores[n] = scores[t]
            t += 1
        elif p < n_popular:
            items[n] = popular[p]
            out_scores[n] = item_support[popular[p]]
            p += 1
        else:
            break
        n += 1
    for b in blocked:
        scratch[b] = _FREE
    for r in range(m):
        scratch[consequent[ranks[r]]] = _FREE
    return items[:n], out_ranks[:n], out_scores[:n], t


@numba.njit(cache=True)
def batch_top_items(
    q_ptr: np.ndarray,  # int64 (n_queries + 1): query q's known items are q_items[q_ptr[q]..]
    q_items: np.ndarray,  # int32, sorted ascending and unique within each query
    k: int,
    use_rules: bool,
    nodes: np.ndarray,
    child_item: np.ndarray,
    child_node: np.ndarray,
    group_ranks: np.ndarray,
    group_item: np.ndarray,
    group_excess: np.ndarray,
    consequent: np.ndarray,
    value: np.ndarray,
    combine: float,
    popular: np.ndarray,  # int64, item ids by popularity (count desc, id asc)
    item_support: np.ndarray,
    floor: np.ndarray,
    scratch: np.ndarray,
    evidence: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``answer_basket`` for many baskets at once (the offline evaluation): (n_queries, k) item
    ids (-1 where fewer than ``k`` exist) and the number of them that came from rules.
    ``use_rules=False`` gives the popularity answers alone (the basket's items still blocked)."""
    n_q = q_ptr.shape[0] - 1
    out = np.full((n_q, k), -1, dtype=np.int64)
    from_rules = np.zeros(n_q, dtype=np.int64)
    none = np.empty(0, dtype=np.int32)
    for q in range(n_q):
        ids = q_items[q_ptr[q] : q_ptr[q + 1]]
        basket, exclude = (ids, none) if use_rules else (none, ids)
        items, _, _, m = answer_basket(basket, exclude, none, k, nodes, child_item,
                                       child_node, group_ranks, group_item, group_excess,
                                       consequent, value, combine, popular, item_support,
                                       floor, scratch, evidence)
        out[q, : items.shape[0]] = items
        from_rules[q] = m
    return out, from_rules
