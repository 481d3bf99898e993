"""fingerprint (against a plain-Python reference of its definition) and profile."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from basketry.data import fingerprint, profile, read_baskets
from basketry.data.baskets import Baskets


def reference_fingerprint(b: Baskets) -> str:
    """The definition in fingerprint's docstring, written the slow, obvious way."""
    baskets = [set(b.basket(i)) for i in range(b.n_baskets)]
    vocab = sorted({x for s in baskets for x in s}, key=lambda x: x.encode("utf-8"))
    rank = {x: i for i, x in enumerate(vocab)}
    rows = [sorted(rank[x] for x in s) for s in baskets]
    has_ts = b.timestamps is not None
    ts = (
        [int(t) for t in b.timestamps.astype("datetime64[ns]").view(np.int64)]
        if has_ts else [0] * len(rows)
    )
    order = sorted(range(len(rows)), key=lambda i: (ts[i], len(rows[i]), rows[i]))
    out = bytearray(b"basketry-fingerprint/1\n")
    out += b"T" if has_ts else b"-"
    out += struct.pack("<Q", len(vocab))
    for x in vocab:
        out += struct.pack("<Q", len(x.encode("utf-8")))
    for x in vocab:
        out += x.encode("utf-8")
    out += struct.pack("<Q", len(rows))
    if has_ts:
        for i in order:
            out += struct.pack("<q", ts[i])
    for i in order:
        out += struct.pack("<Q", len(rows[i]))
    for i in order:
        out += struct.pack(f"<{len(rows[i])}I", *rows[i])
    return "sha256:" + hashlib.sha256(bytes(out)).hexdigest()


def relabel(b: Baskets, seed: int) -> Baskets:
    """Same content: baskets shuffled, item ids permuted, an unused item added."""
    rng = np.random.default_rng(seed)
    s = b.subset(rng.permutation(b.n_baskets))
    items = np.append(b.items, "zz-unused")
    new_id = rng.permutation(items.shape[0])
    inv = np.empty_like(new_id)
    inv[new_id] = np.arange(new_id.shape[0])
    indices = new_id[s.indices]
    for i in range(s.n_baskets):  # keep ids ascending within baskets, as Baskets requires
        lo, hi = s.indptr[i], s.indptr[i + 1]
        indices[lo:hi] = np.sort(indices[lo:hi])
    return Baskets(indptr=s.indptr, indices=indices.astype(np.int32), items=items[inv],
                   timestamps=s.timestamps, basket_ids=s.basket_ids, source="elsewhere")


@pytest.fixture
def small() -> Baskets:
    return Baskets.from_lists(
        [["b", "a"], ["c"], ["a", "b"], ["é", "a", "c", "d"], ["b"], ["a", "b", "c"], ["c"]]
    )


def test_matches_reference(small):
    assert fingerprint(small) == reference_fingerprint(small)
    assert fingerprint(small).startswith("sha256:") and len(fingerprint(small)) == 71


def test_matches_reference_with_timestamps(small):
    ts = np.array(["2024-01-02", "2024-01-01", "2024-01-02", "NaT", "2024-01-01",
                   "2024-01-02", "2024-01-02"], dtype="datetime64[ns]")
    b = Baskets(indptr=small.indptr, indices=small.indices, items=small.items, timestamps=ts)
    assert fingerprint(b) == reference_fingerprint(b)
    assert fingerprint(b) != fingerprint(small)


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_random(seed):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 3000))  # some runs need several packing rounds
    rows = [
        [f"i{x}" for x in rng.integers(0, n_items, rng.integers(1, 40))]
        for _ in range(300)
    ]
    rows += rows[:50]  # identical baskets
    rows += [[*r[:-1], "i0"] for r in rows[:50]]  # long shared prefixes
    b = Baskets.from_lists(rows)
    assert fingerprint(b) == reference_fingerprint(b)
    assert fingerprint(relabel(b, seed)) == fingerprint(b)


def test_invariance(small):
    assert fingerprint(relabel(small, 1)) == fingerprint(small)
    assert fingerprint(relabel(small, 2)) == reference_fingerprint(relabel(small, 2))


def test_sensitivity(small):
    base = fingerprint(small)
    rows = [small.basket(i) for i in range(small.n_baskets)]
    changed = [list(r) for r in rows]
    changed[3][0] = "f"  # one item changed
    assert fingerprint(Baskets.from_lists(changed)) != base
    assert fingerprint(Baskets.from_lists(rows[:-1])) != base  # a basket removed
    assert fingerprint(Baskets.from_lists([*rows, ["c"]])) != base  # a duplicate basket
    moved = [list(r) for r in rows]
    moved[0].append("c")
    moved[1] = ["a", "b"]  # same items overall, different baskets
    assert fingerprint(Baskets.from_lists(moved)) != base


def test_file_level_invariance(tmp_path, small):
    rows = [(str(i), x) for i in range(small.n_baskets) for x in small.basket(i)]
    a = tmp_path / "a.csv"
    a.write_text("transaction,item\n" + "".join(f"{t},{x}\n" for t, x in rows))
    rng = np.random.default_rng(0)
    shuffled = [rows[i] for i in rng.permutation(len(rows))] + rows[:5]  # + duplicates
    b = tmp_path / "b.csv"
    b.write_text("transaction,item\n" + "".join(f"{t},{x}\n" for t, x in shuffled))
    c = tmp_path / "c.dat"
    c.write_text("".join(" ".join(small.basket(i)) + "\n" for i in range(small.n_baskets)))
    fa, fb, fc = (fingerprint(read_baskets(p)) for p in (a, b, c))
    assert fa == fb == fc == fingerprint(small)
    changed = tmp_path / "d.csv"
    changed.write_text(a.read_text().replace("0,b", "0,z", 1))
    assert fingerprint(read_baskets(changed)) != fa


def test_real_data_fingerprint_invariance(shared_data):
    b = read_baskets(shared_data / "online_retail.parquet")
    fp = fingerprint(b)
    assert fingerprint(relabel(b, 0)) == fp
    assert fingerprint(b.subset(np.arange(b.n_baskets - 1))) != fp
    r = read_baskets(shared_data / "retail.dat")
    assert fingerprint(relabel(r, 0)) == fingerprint(r)


def test_profile(small):
    p = profile(small, top=2)
    json.dumps(p)  # plain types only
    assert p["n_baskets"] == 7 and p["n_items"] == 5 and p["n_entries"] == 14
    bs = p["basket_size"]
    assert (bs["min"], bs["max"], bs["mean"], bs["median"]) == (1, 4, 2.0, 2.0)
    assert bs["histogram"] == {"edges": [1, 2, 3, 4, 5], "counts": [3, 2, 1, 1]}
    assert [(t["item"], t["count"]) for t in p["top_items"]] == [("a", 4), ("b", 4)]
    assert p["top_items"][0]["support"] == pytest.approx(4 / 7)
    assert p["time_span"] is None and p["n_customers"] is None
    assert p["fingerprint"] == fingerprint(small)


def test_profile_online_retail(shared_data):
    b = read_baskets(shared_data / "online_retail.parquet")
    p = profile(b)
    text = json.dumps(p)
    assert json.loads(text) == p
    assert len(p["top_items"]) == 50
    assert p["top_items"][0]["item"] == "85123A"
    assert p["top_items"][0]["label"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    counts = [t["count"] for t in p["top_items"]]
    assert counts == sorted(counts, reverse=True)
    assert p["time_span"]["first"] == "2010-12-01T08:26:00"
    assert p["time_span"]["last"] == "2011-12-09T12:50:00"
    # 4,339 customers with the non-product lines: 4 had nothing else (a lone "BANK CHARGES" or
    # "M" line)
    assert p["n_customers"] == 4_335
    h = p["basket_size"]["histogram"]
    assert sum(h["counts"]) == b.n_baskets and len(h["edges"]) == len(h["counts"]) + 1
    assert h["edges"][-1] > p["basket_size"]["max"]
    assert p["report"]["dropped_cancelled"] == 9_288
    assert p["report"]["dropped_non_product_rows"] == 2_408
