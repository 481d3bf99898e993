"""How many of a window's orders contain each of many itemsets (rules' antecedents, their
antecedent and consequent together), with numpy alone: a serving install has no numba.

Orders come as CSR of model item ids (``-1``, an item the model does not know, is dropped;
an item repeated in an order counts once). One item: a count of the window's (order, item)
codes. Two items or more: every pair of items of each order (of the items any itemset holds)
is enumerated and sorted, so the orders holding an itemset's two rarest items are one range
(its count, for a pair); for a longer itemset those orders are expanded and each of its other
items looked up in the window's sorted ``order * n_items + item`` codes. An order of n items has
n(n-1)/2 pairs, so orders of more than ``MAX_PAIR_ORDER`` such items (and whole windows past
``MAX_PAIRS`` pairs) go by item postings instead: the orders holding the itemset's rarest item,
the other items checked, a cost of the rarest items' counts whatever the orders' sizes (an
order of 1,000 items has 166M triples: enumerating them would explode). Expansions are done in
chunks of at most ``budget`` (order, itemset) rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: (order, itemset) rows expanded at once: bounds the memory of one chunk (about 40 bytes a
#: row across the temporaries, so ~160 MB at the default)
DEFAULT_BUDGET = 4_000_000
#: orders with more of the itemsets' items than this are counted by item postings, not pairs
#: (an order of n items has n(n-1)/2 pairs)
MAX_PAIR_ORDER = 64
#: at most this many pairs are enumerated for a window (8 bytes each); beyond, item postings
MAX_PAIRS = 20_000_000


class OrderIndex:
    """A window's orders indexed for membership and posting-list look-ups."""

    def __init__(self, orders_indptr: np.ndarray, orders_ids: np.ndarray, n_items: int) -> None:
        indptr = np.asarray(orders_indptr, dtype=np.int64)
        ids = np.asarray(orders_ids, dtype=np.int64)
        if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr[0] != 0 \
                or indptr[-1] != ids.shape[0] or np.any(np.diff(indptr) < 0):
            raise ValueError("orders_indptr must start at 0, not decrease and end at "
                             "len(orders_ids)")
        if ids.size and ids.max(initial=-1) >= n_items:
            raise ValueError(f"orders_ids holds an item id >= n_items ({n_items})")
        self.n_items = int(n_items)
        self.n_orders = int(indptr.shape[0] - 1)
        order = np.repeat(np.arange(self.n_orders, dtype=np.int64), np.diff(indptr))
        known = ids >= 0
        # distinct (order, item) codes, sorted: order-major
        self.codes = np.unique(order[known] * self.n_items + ids[known])
        items = self.codes % self.n_items
        #: window orders holding each item
        self.item_counts = np.bincount(items, minlength=self.n_items).astype(np.int64)
        # posting lists: orders of each item, item-major
        by_item = np.argsort(items, kind="stable")
        self.posting = (self.codes[by_item] // self.n_items).astype(np.int64)
        self.posting_ptr = np.zeros(self.n_items + 1, dtype=np.int64)
        np.cumsum(self.item_counts, out=self.posting_ptr[1:])

    def contains(self, order: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Whether each ``order[i]`` holds ``item[i]``."""
        key = order * self.n_items + item
        pos = np.searchsorted(self.codes, key)
        pos[pos == self.codes.shape[0]] = 0
        return self.codes[pos] == key if self.codes.shape[0] else np.zeros(key.shape, bool)


def _check_itemsets(offsets: np.ndarray, values: np.ndarray, n_items: int) -> None:
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 \
            or offsets[-1] != values.shape[0] or np.any(np.diff(offsets) < 0):
        raise ValueError("itemsets_offsets must start at 0, not decrease and end at "
                         "len(itemsets_values)")
    if values.size and (values.min() < 0 or values.max() >= n_items):
        raise ValueError(f"itemsets_values must be item ids in [0, {n_items})")


def count_itemsets(orders_indptr: np.ndarray, orders_ids: np.ndarray,
                   itemsets_offsets: np.ndarray, itemsets_values: np.ndarray, n_items: int,
                   *, budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """How many orders contain each itemset (int64, one per itemset; the empty itemset is in
    every order). Itemset ``s`` is ``itemsets_values[itemsets_offsets[s]:itemsets_offsets[s +
    1]]`` (item ids; a repeated id is the same item)."""
    index = OrderIndex(orders_indptr, orders_ids, n_items)
    return count_in_index(index, itemsets_offsets, itemsets_values, budget=budget)


def count_in_index(index: OrderIndex, itemsets_offsets: np.ndarray,
                   itemsets_values: np.ndarray, *, budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """``count_itemsets`` on an already indexed window (several itemset lists, one index)."""
    _check_itemsets(np.asarray(itemsets_offsets, dtype=np.int64),
                    np.asarray(itemsets_values, dtype=np.int64), index.n_items)
    # each distinct itemset counted once (items sorted, a repeated item once)
    offsets, values, inverse = unique_itemsets(itemsets_offsets, itemsets_values, index.n_items)
    n_sets = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    out = np.zeros(n_sets, dtype=np.int64)
    out[lengths == 0] = index.n_orders
    single = np.flatnonzero(lengths == 1)
    out[single] = index.item_counts[values[offsets[single]]]
    multi = np.flatnonzero(lengths > 1)
    if multi.shape[0] and index.n_orders:
        out[multi] = _count_multi(index, offsets, values, multi, budget)
    return out[inverse]


def _by_item_postings(index: OrderIndex, offsets: np.ndarray, values: np.ndarray,
                      multi: np.ndarray, budget: int) -> np.ndarray:
    counts = np.zeros(offsets.shape[0] - 1, dtype=np.int64)
    for sets, _ in _containing(index, offsets, values, multi, budget):
        counts += np.bincount(sets, minlength=counts.shape[0])
    return counts[multi]


def _count_multi(index: OrderIndex, offsets: np.ndarray, values: np.ndarray, multi: np.ndarray,
                 budget: int) -> np.ndarray:
    """Counts of the itemsets ``multi`` (two items or more). Orders of at most
    ``MAX_PAIR_ORDER`` of the itemsets' items are counted through pair postings (the orders
    holding each pair of items: far fewer than those holding the rarer item of the pair),
    larger orders through item postings."""
    n, n_orders = index.n_items, index.n_orders
    lengths = np.diff(offsets)
    relevant = np.zeros(n, dtype=bool)
    relevant[values[np.repeat(lengths > 1, lengths)]] = True
    order_of, item_of = index.codes // n, index.codes % n
    keep = relevant[item_of]
    sizes = np.bincount(order_of[keep], minlength=n_orders)
    big = sizes > MAX_PAIR_ORDER
    small_sizes = np.where(big, 0, sizes)
    if int((small_sizes * (small_sizes - 1) // 2).sum()) > MAX_PAIRS \
            or float(n) ** 2 * n_orders >= 2.0**62:
        return _by_item_postings(index, offsets, values, multi, budget)
    counts = np.zeros(multi.shape[0], dtype=np.int64)
    if big.any():  # the large orders alone, by item postings
        chosen = keep & big[order_of]
        b_orders, b_items = order_of[chosen], item_of[chosen]
        b_ptr = np.zeros(n_orders + 1, dtype=np.int64)
        np.cumsum(np.bincount(b_orders, minlength=n_orders), out=b_ptr[1:])
        counts += _by_item_postings(OrderIndex(b_ptr, b_items, n), offsets, values, multi,
                                    budget)
    chosen = keep & ~big[order_of]
    pairs = _pair_postings(order_of[chosen], item_of[chosen], small_sizes, n, n_orders)
    # each itemset's two rarest items (in the whole window) make its pair; the rest are checked
    owner = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    by_count = values[np.lexsort((values, index.item_counts[values], owner))]
    first, second = by_count[offsets[multi]], by_count[offsets[multi] + 1]
    key = (np.minimum(first, second) * n + np.maximum(first, second)) * n_orders
    lo = np.searchsorted(pairs, key)
    work = np.searchsorted(pairs, key + n_orders) - lo
    two = lengths[multi] == 2
    counts[two] += work[two]
    longer = np.flatnonzero(~two & (work > 0))
    cum = np.cumsum(work[longer])
    start = 0
    while start < longer.shape[0]:
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + budget, side="right")), start + 1)
        sets = longer[start:stop]
        w = work[sets]
        row_set = np.repeat(np.arange(sets.shape[0], dtype=np.int64), w)
        within = np.arange(row_set.shape[0], dtype=np.int64) - np.repeat(np.cumsum(w) - w, w)
        order = pairs[np.repeat(lo[sets], w) + within] % n_orders
        set_start, set_len = offsets[multi[sets]], lengths[multi[sets]]
        rows = np.arange(row_set.shape[0], dtype=np.int64)
        for position in range(2, int(set_len.max())):
            checked = set_len[row_set[rows]] > position
            test = rows[checked]
            if test.shape[0] == 0:
                break
            item = by_count[set_start[row_set[test]] + position]
            rows = np.concatenate((rows[~checked], test[index.contains(order[test], item)]))
        counts[sets] += np.bincount(row_set[rows], minlength=sets.shape[0])
        start = stop
    return counts


def _pair_postings(order: np.ndarray, item: np.ndarray, sizes: np.ndarray, n_items: int,
                   n_orders: int) -> np.ndarray:
    """Every pair of items of every order as ``(a * n_items + b) * n_orders + order`` (a < b),
    sorted: the orders holding a pair are one range. ``order``/``item``: the orders' items,
    order-major and ascending within an order; ``sizes``: items per order (0 to leave out)."""
    starts = np.zeros(n_orders + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    parts = []
    for size in np.unique(sizes[sizes > 1]).tolist():
        orders = np.flatnonzero(sizes == size)
        matrix = item[starts[orders][:, None] + np.arange(size)]
        a, b = np.triu_indices(size, 1)
        parts.append(((matrix[:, a] * n_items + matrix[:, b]) * n_orders
                      + orders[:, None]).reshape(-1))
    if not parts:
        return np.empty(0, dtype=np.int64)
    out = np.concatenate(parts)
    out.sort()
    return out


def containing_pairs(index: OrderIndex, itemsets_offsets: np.ndarray,
                     itemsets_values: np.ndarray, *, budget: int = DEFAULT_BUDGET,
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (itemset, order) with the order holding the itemset, in chunks of at most about
    ``budget`` candidate rows: ``(itemset indices, order indices)`` per chunk (non-empty
    itemsets only)."""
    offsets = np.asarray(itemsets_offsets, dtype=np.int64)
    values = np.asarray(itemsets_values, dtype=np.int64)
    _check_itemsets(offsets, values, index.n_items)
    return _containing(index, offsets, values, np.flatnonzero(np.diff(offsets) > 0), budget)


def _containing(index: OrderIndex, offsets: np.ndarray, values: np.ndarray, chosen: np.ndarray,
                budget: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if chosen.shape[0] == 0 or index.n_orders == 0:
        return
    n_sets = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    # each itemset's items from the rarest in the window to the most frequent: the rarest's
    # posting list is expanded, the next ones checked in turn (the rarest first: it kills most)
    counts = index.item_counts[values]
    owner = np.repeat(np.arange(n_sets, dtype=np.int64), lengths)
    by_count = values[np.lexsort((values, counts, owner))]
    work = index.item_counts[by_count[offsets[chosen]]]
    live = work > 0  # an item absent from the window: no order holds the itemset
    chosen, work = chosen[live], work[live]
    cum = np.cumsum(work)
    start = 0
    while start < chosen.shape[0]:
        # the next chunk: as many itemsets as fit the budget (at least one)
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + budget, side="right")), start + 1)
        sets, orders = _chunk(index, offsets, by_count, chosen[start:stop], work[start:stop])
        yield chosen[start:stop][sets], orders
        start = stop


def _chunk(index: OrderIndex, offsets: np.ndarray, by_count: np.ndarray,
           sets: np.ndarray, work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (position in ``sets``, order) pairs of ``sets`` (their items in ``by_count``, each
    itemset's rarest first): the rarest item's posting list expanded, the others checked,
    rarer first."""
    start = offsets[sets]
    lengths = offsets[sets + 1] - start
    row_set = np.repeat(np.arange(sets.shape[0], dtype=np.int64), work)
    within = np.arange(row_set.shape[0], dtype=np.int64) - np.repeat(np.cumsum(work) - work, work)
    order = index.posting[np.repeat(index.posting_ptr[by_count[start]], work) + within]
    rows = np.arange(row_set.shape[0], dtype=np.int64)  # the rows still alive
    for position in range(1, int(lengths.max())):
        # rows of itemsets with an item at this position must hold it; others stay alive
        checked = lengths[row_set[rows]] > position
        test = rows[checked]
        if test.shape[0] == 0:
            break
        item = by_count[start[row_set[test]] + position]
        rows = np.concatenate((rows[~checked], test[index.contains(order[test], item)]))
    return row_set[rows], order[rows]


def unique_itemsets(offsets: np.ndarray, values: np.ndarray, n_items: int,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct itemsets (as sets: order and repeats ignored) of a CSR list:
    ``(unique_offsets, unique_values, inverse)``, ``inverse[s]`` the unique index of ``s``;
    each unique itemset's items ascending."""
    offsets = np.asarray(offsets, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    n_sets = offsets.shape[0] - 1
    owner = np.repeat(np.arange(n_sets, dtype=np.int64), np.diff(offsets))
    order = np.lexsort((values, owner))
    owner, values = owner[order], values[order]
    keep = np.ones(values.shape[0], dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | (values[1:] != values[:-1])
    owner, values = owner[keep], values[keep]
    lengths = np.bincount(owner, minlength=n_sets)
    starts = np.zeros(n_sets + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    inverse = np.empty(n_sets, dtype=np.int64)
    parts: list[np.ndarray] = []
    part_lengths: list[np.ndarray] = []
    n_unique = 0
    for length in np.unique(lengths).tolist():
        sets = np.flatnonzero(lengths == length)
        matrix = values[starts[sets][:, None] + np.arange(length)]
        if length == 0:
            unique, inv = np.zeros((1, 0), np.int64), np.zeros(sets.shape[0], np.int64)
        elif float(n_items) ** length < 2.0**62:  # one integer code per itemset
            code = np.zeros(sets.shape[0], dtype=np.int64)
            for j in range(length):
                code = code * n_items + matrix[:, j]
            _, first, inv = np.unique(code, return_index=True, return_inverse=True)
            unique = matrix[first]
        else:
            unique, inv = np.unique(matrix, axis=0, return_inverse=True)
        inverse[sets] = n_unique + inv.reshape(-1)
        parts.append(unique.reshape(-1))
        part_lengths.append(np.full(unique.shape[0], length, dtype=np.int64))
        n_unique += unique.shape[0]
    u_offsets = np.zeros(n_unique + 1, dtype=np.int64)
    if part_lengths:
        np.cumsum(np.concatenate(part_lengths), out=u_offsets[1:])
    u_values = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return u_offsets, u_values, inverse
