"""Dataset profile (sizes, item frequencies, time span) and content fingerprint of baskets."""

from __future__ import annotations

import hashlib

import numpy as np

from basketry.data._compiled import kernels
from basketry.data._lazy import LazyModule
from basketry.data.baskets import Baskets

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")

__all__ = ["FINGERPRINT_VERSION", "SIZE_BIN_EDGES", "fingerprint", "profile"]

FINGERPRINT_VERSION = 1
_HEADER = b"basketry-fingerprint/1\n"
_NAT = np.iinfo(np.int64).min

# Basket-size histogram bins are [edges[i], edges[i + 1]); the list is cut after the first
# edge above the largest basket (and starts at 0 only when there are empty baskets).
SIZE_BIN_EDGES: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 31, 51, 101, 201, 501, 1_001, 2_001, 5_001,
    10_001, 100_001, 1_000_001,
)


def fingerprint(baskets: Baskets) -> str:
    """``"sha256:<hex>"`` of the canonical form of the baskets' content (format version 1).

    The fingerprint depends only on which sets of item strings the baskets hold (and on their
    timestamps, when the baskets have timestamps). It does not depend on the order of baskets
    or of rows in the source file, on how item ids were assigned, on duplicate rows (a basket
    is a set), on items of the vocabulary that no basket contains, nor on basket ids,
    customers, labels, source or report. Any change of content changes it: an item added,
    removed or renamed in a basket, a basket added or removed, a timestamp changed.

    Definition (all integers little-endian):

    1. ``V``: the distinct item strings that occur in at least one basket, sorted by their
       UTF-8 bytes. The rank of an item is its position in ``V`` (0-based).
    2. Each basket is the ascending sequence of the ranks of its items (no repeats).
    3. ``T`` (only if the baskets have timestamps): per basket, int64 nanoseconds since
       1970-01-01T00:00:00 (naive, i.e. UTC); a missing timestamp (NaT) is -2**63.
    4. Canonical order of the baskets: ascending by ``T`` (if present), then by size, then
       lexicographically by the rank sequence. Identical baskets are interchangeable.
    5. The SHA-256 digest of the concatenation of:

       - the 23 ASCII bytes ``basketry-fingerprint/1\\n``;
       - one byte: ``T`` if timestamps are present, ``-`` otherwise;
       - uint64 ``len(V)``; then ``len(V)`` uint64: the UTF-8 byte length of each string of
         ``V``, in order; then the UTF-8 bytes of the strings of ``V``, in order, concatenated;
       - uint64 number of baskets;
       - if timestamps are present: int64 ``T`` of each basket, in canonical order;
       - uint64 size of each basket, in canonical order;
       - uint32 ranks of the items of each basket, basket after basket in canonical order.

    The result is ``"sha256:"`` followed by the 64 lowercase hexadecimal digits.
    Computed with numpy and numba kernels (no Python loop per basket or item).
    """
    indptr = np.ascontiguousarray(baskets.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(baskets.indices)
    n_baskets = indptr.shape[0] - 1
    items = baskets.items
    used = np.flatnonzero(np.bincount(indices, minlength=len(items)) > 0)
    order, lengths, data = _sorted_vocabulary([str(x) for x in items[used]])
    if used.shape[0] == len(items) and np.array_equal(order, np.arange(order.shape[0])):
        # ids are already the ranks
        ranks = indices.view(np.uint32) if indices.dtype == np.int32 else indices.astype(
            np.uint32
        )
    else:
        rank_of_id = np.zeros(len(items), dtype=np.uint32)
        rank_of_id[used[order]] = np.arange(used.shape[0], dtype=np.uint32)
        ranks = rank_of_id[indices]
    if not kernels.ranks_sorted(indptr, ranks):
        if np.shares_memory(ranks, indices):
            ranks = ranks.copy()  # never modify the caller's baskets
        kernels.sort_segments(indptr, ranks)

    if baskets.timestamps is not None:
        ts = np.asarray(baskets.timestamps).astype("datetime64[ns]", copy=False)
        ts = np.ascontiguousarray(ts.view(np.int64))
    else:
        ts = None
    perm = _canonical_order(indptr, ranks, ts)
    sizes = np.diff(indptr)[perm].astype("<u8")
    flat = kernels.gather(indptr, ranks, perm, int(indptr[-1]))

    h = hashlib.sha256()
    h.update(_HEADER)
    h.update(b"T" if ts is not None else b"-")
    h.update(np.array([lengths.shape[0]], dtype="<u8"))
    h.update(lengths)
    h.update(data)
    h.update(np.array([n_baskets], dtype="<u8"))
    if ts is not None:
        h.update(np.ascontiguousarray(ts[perm], dtype="<i8"))
    h.update(np.ascontiguousarray(sizes))
    h.update(np.ascontiguousarray(flat, dtype="<u4"))
    return "sha256:" + h.hexdigest()


def _canonical_order(
    indptr: np.ndarray, ranks: np.ndarray, ts: np.ndarray | None
) -> np.ndarray:
    """Permutation of the baskets into canonical order (ts, size, ranks lexicographically).

    An MSD radix-style sort: first by (ts, size and the first few ranks packed into one
    uint64), then rounds that pack the next ranks of the baskets still tied with a neighbour
    and sort each tied run by them. A run is settled when it has one basket or its baskets
    are exhausted (they are then identical).
    """
    n = indptr.shape[0] - 1
    sizes = np.diff(indptr)
    n_ranks = int(ranks.max()) + 1 if ranks.size else 1
    bits = max(int(n_ranks).bit_length(), 1)  # ranks + 1 in 1 .. n_ranks, 0 = past the end
    slots = max(64 // bits, 1)
    size_bits = max(int(sizes.max() if n else 0).bit_length(), 1)
    slots0 = (64 - size_bits) // bits if size_bits < 64 else 0
    key = kernels.pack(indptr, ranks, np.arange(n, dtype=np.int64), 0, slots0, bits)
    if slots0:
        key |= sizes.astype(np.uint64) << np.uint64(64 - size_bits)
    else:
        key = sizes.astype(np.uint64)
    if ts is None:
        perm = np.argsort(key)
        kp = key[perm]
        tie = np.zeros(n, dtype=bool)
        tie[1:] = kp[1:] == kp[:-1]
        del kp
        key0 = None
    else:  # by timestamp, then the tied runs (usually short) by key
        perm = np.argsort(ts)
        tp = ts[perm]
        tie = np.zeros(n, dtype=bool)
        tie[1:] = tp[1:] == tp[:-1]
        del tp
        key0 = key
    act = np.arange(n, dtype=np.int64)  # positions of perm still in tied runs
    start = slots0 if key0 is None else -1
    while act.size:
        in_run = tie.copy()
        in_run[:-1] |= tie[1:]
        keep = in_run & (sizes[perm[act]] > max(start, 0))  # whole runs kept or dropped
        act, tie = act[keep], tie[keep]
        if act.size == 0:
            break
        first = ~tie
        bounds = np.append(np.flatnonzero(first), act.shape[0])
        sub = perm[act]
        # the first round after the timestamp sort uses (size, first ranks)
        key = key0[sub] if start < 0 else kernels.pack(indptr, ranks, sub, start, slots, bits)
        kernels.sort_runs(sub, key, bounds)
        perm[act] = sub
        tie = np.zeros(act.shape[0], dtype=bool)
        tie[1:] = key[1:] == key[:-1]
        tie &= ~first
        start = slots0 if start < 0 else start + slots
    return perm


def _size_edges(max_size: int, min_size: int) -> list[int]:
    edges = [0] if min_size == 0 else []
    for e in SIZE_BIN_EDGES:
        edges.append(e)
        if e > max_size:
            break
    else:
        edges.append(max_size + 1)
    return edges


def _iso(value: np.datetime64) -> str | None:
    if np.isnat(value):
        return None
    return str(np.datetime_as_string(value, unit="s"))


#: Above this many items the vocabulary is sorted by Arrow: faster, once pyarrow.compute
#: (0.04 s) and, through pa.array, pandas (0.15 s, where installed) are imported.
_ARROW_SORT_FROM = 100_000


def _sorted_vocabulary(strings: list[str]) -> tuple[np.ndarray, np.ndarray, bytes]:
    """The order that sorts ``strings`` by their UTF-8 bytes, and the sorted strings' UTF-8
    byte lengths (uint64, little-endian) and bytes concatenated."""
    if len(strings) >= _ARROW_SORT_FROM:
        vocab = pa.array(strings, type=pa.large_string())
        order = pc.array_sort_indices(vocab).to_numpy(zero_copy_only=False)
        vocab = vocab.take(pa.array(order))
        offsets = np.frombuffer(vocab.buffers()[1], dtype=np.int64)[: len(vocab) + 1]
        data = memoryview(vocab.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
        return order, np.diff(offsets).astype("<u8"), bytes(data)
    # Python compares bytes as unsigned bytes: the order Arrow sorts UTF-8 strings in
    encoded = [s.encode("utf-8") for s in strings]
    order = np.array(sorted(range(len(encoded)), key=encoded.__getitem__), dtype=np.int64)
    ordered = [encoded[i] for i in order.tolist()]
    lengths = np.fromiter(map(len, ordered), dtype="<u8", count=len(ordered))
    return order, lengths, b"".join(ordered)


def profile(baskets: Baskets, *, top: int = 50) -> dict:
    """A JSON-serialisable summary of the baskets.

    Keys: ``source``, ``n_baskets``, ``n_items`` (vocabulary size), ``n_items_used`` (items in
    at least one basket), ``n_entries`` (basket-item pairs), ``basket_size`` (min, max, mean,
    median, p90, p99 and a ``histogram`` with ``edges`` and ``counts``, bins
    ``[edges[i], edges[i+1])``), ``top_items`` (the ``top`` most frequent items: item, label,
    count = number of baskets, support; ties by item string), ``time_span`` (``first`` and
    ``last`` basket timestamps in ISO 8601 to the second, ``days``; null without timestamps),
    ``n_customers`` (distinct customers, null when unknown), ``report`` (the reader's counts)
    and ``fingerprint`` (see :func:`fingerprint`).
    """
    sizes = baskets.sizes
    n = baskets.n_baskets
    counts = baskets.item_counts()
    out: dict = {
        "source": baskets.source,
        "n_baskets": n,
        "n_items": baskets.n_items,
        "n_items_used": int(np.count_nonzero(counts)),
        "n_entries": int(baskets.indptr[-1]),
    }
    if n:
        edges = _size_edges(int(sizes.max()), int(sizes.min()))
        hist, _ = np.histogram(sizes, bins=np.asarray(edges))
        p50, p90, p99 = np.percentile(sizes, [50, 90, 99])
        out["basket_size"] = {
            "min": int(sizes.min()),
            "max": int(sizes.max()),
            "mean": float(sizes.mean()),
            "median": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "histogram": {"edges": edges, "counts": [int(c) for c in hist]},
        }
    else:
        out["basket_size"] = None

    # top items: by count descending, ties by item string
    k = min(top, int(np.count_nonzero(counts)))
    if k:
        cand = np.argpartition(-counts, k - 1)[:k] if k < counts.shape[0] else np.arange(
            counts.shape[0]
        )
        threshold = counts[cand].min()
        cand = np.flatnonzero(counts >= threshold)
        names = np.array([str(x) for x in baskets.items[cand]], dtype=object)
        order = sorted(range(cand.shape[0]), key=lambda i: (-int(counts[cand[i]]), names[i]))
        chosen = [int(cand[i]) for i in order[:k]]
    else:
        chosen = []
    labels = baskets.labels
    out["top_items"] = [
        {
            "item": str(baskets.items[i]),
            "label": None if labels is None or labels[i] is None else str(labels[i]),
            "count": int(counts[i]),
            "support": float(counts[i] / n) if n else 0.0,
        }
        for i in chosen
    ]

    span = None
    if baskets.timestamps is not None and n:
        ts = np.asarray(baskets.timestamps).astype("datetime64[ns]")
        valid = ts[~np.isnat(ts)]
        if valid.size:
            first, last = valid.min(), valid.max()
            span = {
                "first": _iso(first),
                "last": _iso(last),
                "days": float((last - first) / np.timedelta64(1, "D")),
                "missing": int(ts.shape[0] - valid.shape[0]),
            }
    out["time_span"] = span

    if baskets.customers is not None:
        known = pa.array(baskets.customers, type=pa.string(), from_pandas=True)
        out["n_customers"] = int(pc.count_distinct(known, mode="only_valid").as_py())
    else:
        out["n_customers"] = None
    out["report"] = _jsonable(baskets.report)
    out["fingerprint"] = fingerprint(baskets)
    return out


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.datetime64):
        return _iso(value)
    return value
