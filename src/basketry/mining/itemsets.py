"""Frequent itemset mining (FP-Growth or Apriori) on CSR baskets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from basketry.data.baskets import Baskets
from basketry.mining._compiled import kernels
from basketry.mining._explosion import Explosion, stop_if_certain
from basketry.mining._memory import memory_headroom
from basketry.mining._params import (
    Limit,
    MemoryBudget,
    as_item_set,
    check_algorithm,
    check_max,
    check_n_jobs,
    min_count_from_support,
    resolve_memory_budget,
)
from basketry.mining.errors import BudgetExceeded, MiningError

Progress = Callable[[float], None]

_CHUNKS = 100


@dataclass(frozen=True)
class FrequentItemsets:
    """Frequent itemsets as CSR arrays over the original item ids.

    Row ``r`` is the itemset ``indices[indptr[r]:indptr[r + 1]]`` (ids sorted ascending) with
    support count ``counts[r]``. Rows are sorted by length, then lexicographically by ids.
    ``antecedent_mask``/``consequent_mask`` (bool per item id, or None for all items) record the
    rule constraints the itemsets were mined for, and ``multi_consequent`` whether the
    itemsets serve rules with several consequent items.
    """

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    n_baskets: int
    min_count: int
    items: np.ndarray
    item_counts: np.ndarray
    antecedent_mask: np.ndarray | None = None
    consequent_mask: np.ndarray | None = None
    multi_consequent: bool = False
    max_len: int | None = None

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def itemset(self, r: int) -> tuple[int, ...]:
        return tuple(int(x) for x in self.indices[self.indptr[r] : self.indptr[r + 1]])

    def to_dict(self) -> dict[tuple[int, ...], int]:
        """{itemset ids: count} (for tests and small results)."""
        return {self.itemset(r): int(self.counts[r]) for r in range(len(self))}


def as_baskets(data: Baskets | Iterable[Iterable[str]]) -> Baskets:
    """``Baskets`` as given, or built from an iterable of iterables of item strings."""
    if isinstance(data, Baskets):
        return data
    if isinstance(data, str | bytes) or not isinstance(data, Iterable):
        raise MiningError(
            "baskets must be a Baskets or an iterable of iterables of item strings, "
            f"got {type(data).__name__}"
        )
    rows = []
    for basket in data:
        if isinstance(basket, str | bytes) or not isinstance(basket, Iterable):
            raise MiningError(
                "baskets must be an iterable of iterables of item strings; "
                f"found a basket of type {type(basket).__name__}"
            )
        rows.append(list(basket))
    return Baskets.from_lists(rows)


def item_mask(name: str, value: Iterable | None, items: np.ndarray) -> np.ndarray | None:
    """Boolean mask over the vocabulary for a user-given set of item strings (None: None)."""
    wanted = as_item_set(name, value)
    if wanted is None:
        return None
    index = {str(x): i for i, x in enumerate(items)}
    mask = np.zeros(items.shape[0], dtype=bool)
    unknown = []
    for x in wanted:
        i = index.get(str(x))
        if i is None:
            unknown.append(x)
        else:
            mask[i] = True
    if unknown:
        shown = ", ".join(repr(x) for x in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise MiningError(f"{name}: {len(unknown)} item(s) not in the baskets: {shown}{more}")
    return mask


def _budget_error(
    counts: np.ndarray, limit: Limit, n_baskets: int, max_len: int | None
) -> None:
    assert limit.value is not None
    found = int(counts.shape[0])
    # the count that keeps at most ``limit`` of the itemsets found (found in place: no copy of
    # what may be most of the memory)
    counts.partition(found - 1 - limit.value)
    suggest_count = int(counts[found - 1 - limit.value]) + 1
    suggest = suggest_count / n_baskets if n_baskets else 1.0
    len_hint = "" if max_len is not None else ", or set max_len (e.g. max_len=3)"
    raise BudgetExceeded(
        f"mining stopped after finding {found:,} frequent itemsets, more than "
        f"{limit.describe('max_itemsets')}; raise min_support to about {suggest:.3g} "
        f"(count {suggest_count:,}) or more{len_hint}, or raise max_itemsets",
        what="itemsets",
        found=found,
        limit=limit.value,
    )


def frequent_itemsets(
    baskets: Baskets | Iterable[Iterable[str]],
    min_support: float | int,
    *,
    algorithm: str = "fpgrowth",
    max_len: int | None = None,
    exclude: Iterable[str] | None = None,
    antecedents: Iterable[str] | None = None,
    consequents: Iterable[str] | None = None,
    multi_consequent: bool = False,
    max_itemsets: int | None = None,
    progress: Progress | None = None,
    n_jobs: int | None = None,
    memory_budget: MemoryBudget | int | str | None = None,
) -> FrequentItemsets:
    """Mine the frequent itemsets of ``baskets``, exactly.

    ``min_support``: a fraction in (0, 1] (``ceil(Fraction(repr(s)) * n_baskets)`` baskets) or
    an absolute count >= 1 (int). ``max_len``: longest itemset. ``exclude``: items never used.

    ``antecedents``/``consequents`` (sets of items, None for all) are pushed into the mining:
    only items in their union are used; with single-item consequents
    (``multi_consequent=False``) an itemset holds at most one item outside ``antecedents``;
    with ``consequents`` given, the result is the itemsets that contain a consequent item
    plus the itemsets ``Z - consequents`` of those (the antecedent counts rules need).

    Raises ``BudgetExceeded`` once more than ``max_itemsets`` itemsets are found, or before
    mining when more are certain to be frequent. Without ``max_itemsets``, the limit is what
    ``memory_budget`` holds (bytes, a size such as ``"4G"``, ``"off"``; None: the environment
    variable ``BASKETRY_MEMORY_BUDGET``, else half the memory this process may still take).
    ``progress`` is called with the fraction of the work done. ``n_jobs``: threads that share
    FP-Growth's work (None or -1: one per core this process may use, fewer when the copies of
    the FP-tree each extra thread mines on would take more than a quarter of the available
    memory); the result does not depend on it.
    """
    b = as_baskets(baskets)
    algorithm = check_algorithm(algorithm)
    max_len = check_max("max_len", max_len)
    budget = resolve_memory_budget(memory_budget)
    limit = budget.max_itemsets(check_max("max_itemsets", max_itemsets))
    max_itemsets = limit.value
    threads = check_n_jobs(n_jobs)
    auto_threads = n_jobs is None or n_jobs == -1
    n = b.n_baskets
    min_count = min_count_from_support(min_support, n)
    items = b.items
    n_all = b.n_items
    excl = item_mask("exclude", exclude, items)
    a_mask = item_mask("antecedents", antecedents, items)
    c_mask = item_mask("consequents", consequents, items)

    item_counts = b.item_counts()
    use = item_counts >= min_count
    if excl is not None:
        use &= ~excl
    if a_mask is not None and c_mask is not None:
        use &= a_mask | c_mask
    # recode: descending count (ties by id); with consequents, the consequent items go last so
    # that the itemsets containing one are exactly those whose largest recoded id is one of them
    ids = np.flatnonzero(use)
    is_c_old = np.zeros(n_all, dtype=bool) if c_mask is None else c_mask
    order = np.lexsort((ids, -item_counts[ids], is_c_old[ids]))
    old_of_new = ids[order].astype(np.int32)
    m = old_of_new.shape[0]
    new_of_old = np.full(n_all, -1, dtype=np.int32)
    new_of_old[old_of_new] = np.arange(m, dtype=np.int32)
    counts_new = item_counts[old_of_new]
    is_c = is_c_old[old_of_new]
    first_c = int(np.argmax(is_c)) if c_mask is not None and is_c.any() else m
    if c_mask is None:
        first_c = 0
    is_non_a = (
        np.zeros(m, dtype=np.uint8)
        if a_mask is None
        else (~a_mask[old_of_new]).astype(np.uint8)
    )
    limit_non_a = a_mask is not None and not multi_consequent

    if a_mask is None and c_mask is None and m:
        # the constraints change which itemsets are kept: the bounds are for all of them
        allowed = np.ones(n_all, dtype=bool) if excl is None else ~excl
        stop_if_certain(Explosion(b.indptr, b.indices, item_counts, allowed, n, max_len),
                        min_count, limit)

    t_ptr, t_idx = kernels.recode_baskets(b.indptr, b.indices, new_of_old)
    if progress is not None:
        progress(0.0)

    if m == 0 or first_c >= m:
        r_len = np.zeros(0, dtype=np.int32)
        r_items = np.zeros(0, dtype=np.int32)
        r_cnt = np.zeros(0, dtype=np.int64)
    elif algorithm == "fpgrowth":
        r_len, r_items, r_cnt = _mine_fpgrowth(
            t_ptr, t_idx, counts_new, first_c, min_count, max_len, is_non_a, limit_non_a,
            limit, progress, n, threads, auto_threads,
        )
    else:
        r_len, r_items, r_cnt = _mine_apriori(
            t_ptr, t_idx, counts_new, min_count, max_len, is_non_a, limit_non_a, limit,
            progress, n,
        )
    r_ptr = np.zeros(r_len.shape[0] + 1, dtype=np.int64)
    np.cumsum(r_len, out=r_ptr[1:])
    if c_mask is not None and r_cnt.shape[0]:
        # rows in recoded ids sorted ascending within each row
        r_items = kernels.map_sort_rows(r_ptr, r_items, np.arange(max(m, 1), dtype=np.int32))
        drop = is_c.astype(np.bool_)
        has_c = np.add.reduceat(drop[r_items].astype(np.int64), r_ptr[:-1]) > 0
        has_c[r_len == 0] = False
        x_ptr, x_idx = kernels.strip_rows(r_ptr, r_items, drop)
        if algorithm == "fpgrowth":
            x_cnt = np.zeros(x_ptr.shape[0] - 1, dtype=np.int64)
            if x_cnt.shape[0]:
                fc, ns, it, rw, md = kernels.build_trie(x_ptr, x_idx)
                kernels.count_trie(t_ptr, t_idx, fc, ns, it, rw, md, x_cnt)
            keep_ptr, keep_idx, keep_cnt = r_ptr, r_items, r_cnt
        else:
            # Apriori mined everything over the allowed items: keep what rules need
            pos = kernels.lookup_rows(r_ptr, r_items, x_ptr, x_idx)
            if (pos < 0).any():  # cannot happen: subsets of frequent itemsets are frequent
                raise AssertionError("antecedent itemset missing from Apriori result")
            x_cnt = r_cnt[pos]
            sel = np.flatnonzero(has_c)
            keep_ptr, keep_idx = kernels.gather_rows(r_ptr, r_items, sel)
            keep_cnt = r_cnt[sel]
        r_ptr = np.concatenate([keep_ptr, x_ptr[1:] + keep_ptr[-1]])
        r_items = np.concatenate([keep_idx, x_idx])
        r_cnt = np.concatenate([keep_cnt, x_cnt])
        if max_itemsets is not None and r_cnt.shape[0] > max_itemsets:
            _budget_error(r_cnt, limit, n, max_len)

    # back to original ids, sorted by (length, ids)
    orig = kernels.map_sort_rows(r_ptr, r_items, old_of_new if m else np.zeros(1, dtype=np.int32))
    final = kernels.radix_order(r_ptr, orig, n_all, True)
    f_ptr, f_idx = kernels.gather_rows(r_ptr, orig, final)
    if progress is not None:
        progress(1.0)
    return FrequentItemsets(
        indptr=f_ptr,
        indices=f_idx,
        counts=r_cnt[final].astype(np.int64),
        n_baskets=n,
        min_count=min_count,
        items=items,
        item_counts=item_counts,
        antecedent_mask=a_mask,
        consequent_mask=c_mask,
        multi_consequent=bool(multi_consequent),
        max_len=max_len,
    )


def _mine_fpgrowth(
    t_ptr, t_idx, counts_new, first_c, min_count, max_len, is_non_a, limit_non_a,
    limit, progress, n_baskets, n_jobs=1, auto_threads=False,
):
    max_itemsets = limit.value
    m = counts_new.shape[0]
    parent, item, count, n0, hstart, hnodes, weight = kernels.build_tree(t_ptr, t_idx, m)
    # chunks of top-level items, from the least frequent, of about equal work (the summed
    # depths of their nodes): ~100 when a bar shows progress or threads share them, else one
    tops = np.arange(m - 1, first_c - 1, -1)
    w = weight[tops]
    total = float(w.sum()) or 1.0
    threads = min(n_jobs, tops.shape[0])
    if auto_threads:
        threads = threads_for_memory(
            threads, sum(a.nbytes for a in (parent, item, count, hnodes)), _available_memory())
    if progress is None and threads <= 1:
        bounds = [(first_c, m)]
    else:
        cum = np.cumsum(w) / total
        step = np.minimum((cum * _CHUNKS).astype(np.int64), _CHUNKS - 1)
        bounds = []
        hi = m
        start = 0
        for s in range(1, tops.shape[0] + 1):
            if s == tops.shape[0] or step[s] != step[start]:
                lo = int(tops[s - 1])
                bounds.append((lo, hi))
                hi = lo
                start = s
    ml = -1 if max_len is None else max_len
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(bounds)
    tree = (parent, item, count, hnodes)

    def mine(i: int, arena: tuple[np.ndarray, ...], found: int) -> int:
        """Mine chunk ``i`` (``found`` itemsets so far); the number found in it, -1 when
        that went past the budget."""
        lo, hi = bounds[i]
        max_out = -1 if max_itemsets is None else max(0, max_itemsets - found)
        o_len, o_items, o_cnt, stopped = kernels.mine(
            arena[0], arena[1], arena[2], n0, hstart, arena[3], counts_new, lo, hi, min_count,
            ml, is_non_a, limit_non_a, max_out,
        )
        results[i] = (o_len, o_items, o_cnt)
        return -1 if stopped else int(o_len.shape[0])

    if threads <= 1:
        found = 0
        done = 0.0
        for i, (lo, hi) in enumerate(bounds):
            n = mine(i, tree, found)
            if n < 0:
                _budget_error(_done(results, 2), limit, n_baskets, max_len)
            found += n
            if progress is not None:
                done += float(weight[lo:hi].sum())
                progress(min(done / total, 1.0) * 0.99)
    else:
        def forget(i: int) -> None:
            results[i] = None

        if _mine_threads(mine, forget, tree, n0, threads, bounds, weight, total, progress,
                         max_itemsets):
            _budget_error(_done(results, 2), limit, n_baskets, max_len)
    return (_done(results, 0), _done(results, 1), _done(results, 2))


def threads_for_memory(threads: int, tree_bytes: int, available: int | None) -> int:
    """How many of ``threads`` to use when the thread count was not given: each thread past
    the first mines on its own copy of the FP-tree (``tree_bytes``), and those copies may take
    at most a quarter of the memory ``available`` (unknown: all threads)."""
    if available is None or tree_bytes <= 0:
        return threads
    return max(1, min(threads, 1 + (available // 4) // tree_bytes))


def _available_memory() -> int | None:
    """Bytes of memory this process may still take (MemAvailable, cgroup, rlimits), or None."""
    room = memory_headroom()
    return None if room is None else room[0]


def _done(results: list, k: int) -> np.ndarray:
    """The ``k``-th arrays of the chunks mined so far, in chunk order, joined."""
    return np.concatenate([r[k] for r in results if r is not None])


def _mine_threads(mine, forget, tree, used, threads, bounds, weight, total, progress,
                  budget) -> bool:
    """Mine the chunks ``bounds`` with ``threads`` threads (the compiled kernel releases the
    GIL), each on its own copy of the tree: a conditional tree is built in the arrays after
    the tree, so threads cannot share them (only the tree's ``used`` entries are copied: the
    room after them is written before it is read). Chunks are taken in order, so the results
    are the single thread's, chunk by chunk; progress is reported from the calling thread.
    True: the itemsets found went past the budget (no more chunks were started)."""
    import queue
    import threading

    chunks = iter(range(len(bounds)))
    lock = threading.Lock()
    state = {"found": 0, "reserved": 0, "stop": False, "over": False}
    reports: queue.Queue = queue.Queue()
    #: chunks stopped at their share of the budget, mined again alone once the others are done
    again: list[int] = []

    def work(t: int) -> None:
        try:
            arena = tree if t == 0 else _copy_used(tree, used)
            while True:
                with lock:
                    i = next(chunks, None)
                    if i is None or state["stop"]:
                        break
                    # a chunk may take half of what the others have not found or reserved:
                    # the itemsets held never pass the budget however the threads interleave
                    # (each chunk given all that was left, two threads held twice the budget's
                    # itemsets before the check: the memory it is meant to bound)
                    cap = None
                    if budget is not None:
                        cap = max(0, budget - state["found"] - state["reserved"]) // 2
                        state["reserved"] += cap
                n = mine(i, arena, 0 if cap is None else budget - cap)
                lo, hi = bounds[i]
                with lock:
                    if cap is not None:
                        state["reserved"] -= cap
                    if n >= 0:
                        state["found"] += n
                    elif cap is not None:
                        again.append(i)  # past its share only: alone, it may fit
                        forget(i)  # what it found so far is not kept meanwhile
                    else:
                        state["stop"] = state["over"] = True
                reports.put(float(weight[lo:hi].sum()))
        except BaseException as exc:  # re-raised in the calling thread
            with lock:
                state["stop"] = True
            reports.put(exc)
        finally:
            reports.put(None)

    workers = [threading.Thread(target=work, args=(t,), name=f"basketry-fpgrowth-{t}",
                                daemon=True) for t in range(threads)]
    for thread in workers:
        thread.start()
    done = 0.0
    running = threads
    error: BaseException | None = None
    while running:
        report = reports.get()
        if report is None:
            running -= 1
        elif isinstance(report, BaseException):
            error = error or report
        elif progress is not None:
            done += report
            progress(min(done / total, 1.0) * 0.99)
    for thread in workers:
        thread.join()
    if error is not None:
        raise error
    for i in sorted(again):  # one at a time, with all that is left of the budget
        if state["over"]:
            break
        n = mine(i, tree, int(state["found"]))
        if n < 0:
            state["over"] = True
        else:
            state["found"] += n
    return bool(state["over"])


def _copy_used(arrays: tuple[np.ndarray, ...], used: int) -> tuple[np.ndarray, ...]:
    """Copies of ``arrays`` of the same size with only their first ``used`` entries copied: the
    rest is never touched here, so its pages cost no memory until the mining writes them."""
    out = []
    for a in arrays:
        b = np.empty_like(a)
        b[:used] = a[:used]
        out.append(b)
    return tuple(out)


def _count_candidates(indptr: np.ndarray, indices: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Support counts of fixed-length candidate itemsets (lexicographically sorted rows)."""
    n, k = cands.shape
    c_indptr = np.arange(n + 1, dtype=np.int64) * k
    first_child, next_sib, item, row, maxdepth = kernels.build_trie(
        c_indptr, np.ascontiguousarray(cands.reshape(-1))
    )
    counts = np.zeros(n, dtype=np.int64)
    return kernels.count_trie(indptr, indices, first_child, next_sib, item, row, maxdepth, counts)


def _mine_apriori(
    t_ptr, t_idx, counts_new, min_count, max_len, is_non_a, limit_non_a, limit,
    progress, n_baskets,
):
    max_itemsets = limit.value
    m = counts_new.shape[0]
    lens = [np.ones(m, dtype=np.int32)]
    itms = [np.arange(m, dtype=np.int32)]
    cnts = [counts_new.astype(np.int64)]
    found = m

    def check() -> None:
        if max_itemsets is not None and found > max_itemsets:
            _budget_error(np.concatenate(cnts), limit, n_baskets, max_len)

    check()
    if max_len is not None and max_len < 2:
        return np.concatenate(lens), np.concatenate(itms), np.concatenate(cnts)
    if m * (m - 1) // 2 <= 25_000_000:  # int32 triangle, at most 100 MB
        pair_counts = kernels.count_pairs(t_ptr, t_idx, m)
        level, level_cnt = kernels.frequent_pairs(
            pair_counts, m, min_count, is_non_a, limit_non_a
        )
        del pair_counts
    else:
        a, bb = np.triu_indices(m, 1)
        cands = np.stack([a, bb], axis=1).astype(np.int32)
        if limit_non_a:
            non_a = is_non_a.astype(bool)
            cands = cands[~(non_a[cands[:, 0]] & non_a[cands[:, 1]])]
        c = _count_candidates(t_ptr, t_idx, cands)
        keep = c >= min_count
        level, level_cnt = cands[keep], c[keep]
    k = 2
    while level.shape[0]:
        lens.append(np.full(level.shape[0], k, dtype=np.int32))
        itms.append(level.reshape(-1))
        cnts.append(level_cnt)
        found += level.shape[0]
        check()
        if progress is not None:
            progress(0.99 * k / (k + 1))
        if max_len is not None and k >= max_len:
            break
        cands = kernels.generate_candidates(level)
        if cands.shape[0] == 0:
            break
        c = _count_candidates(t_ptr, t_idx, cands)
        keep = c >= min_count
        level, level_cnt = cands[keep], c[keep]
        k += 1
    return np.concatenate(lens), np.concatenate(itms), np.concatenate(cnts)
