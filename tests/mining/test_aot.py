"""The kernels compiled ahead of time (setup.py, numba's pycc) against numba's JIT kernels.

Every kernel of ``basketry.data`` and ``basketry.mining`` is called, with the very arguments
real work passes it (recorded while reading and mining real and random data in all the modes:
FP-Growth and Apriori, rule constraints, multi-item consequents, p-values, long files, the
fingerprint), once compiled ahead of time and once by the JIT: results, and arrays written in
place, must be identical to the bit. Also: stale modules and other argument types fall back to
the JIT, and a basket file is mined without importing numba or pyarrow.

Without the ahead-of-time modules (no C compiler at install, or ``BASKETRY_KERNELS=jit``) these
tests skip, except under CI, where ``pip install -e .`` must have built them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from basketry._kernels import MODE_ENV, Kernels, parse_code
from basketry.data import Baskets, fingerprint, read_baskets
from basketry.data._compiled import DATA_SPEC
from basketry.data._compiled import kernels as data_kernels
from basketry.mining import AssociationMiner, association_rules, frequent_itemsets
from basketry.mining._compiled import MINING_SPEC
from basketry.mining._compiled import kernels as mining_kernels
from tests.shared_data import shared_file

ALL = (data_kernels, mining_kernels)


def _require_aot() -> None:
    for k in ALL:
        if k.status == "aot":
            continue
        message = f"{k.package}: {k.status}"
        forced = os.environ.get(MODE_ENV, "").strip().lower() == "jit"
        if os.environ.get("CI") and not forced:
            pytest.fail(f"{message}; CI installs with pip install -e ., which must build it",
                        pytrace=False)
        pytest.skip(message)


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _identical(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(
            _identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())
    if isinstance(a, float):
        return isinstance(b, float) and np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def _defined(name: str, result):
    """The part of a kernel's result that it defines: build_tree returns its arrays with
    uninitialised room after the tree (scratch for ``mine``)."""
    if name == "build_tree":
        parent, item, count, n, hstart, hnodes, weight = result
        return parent[:n], item[:n], count[:n], n, hstart, hnodes[:n], weight
    return result


@pytest.fixture
def recorded(monkeypatch):
    """Every kernel call made through the two ``Kernels`` objects: (kernels, name, args)."""
    _require_aot()
    calls: list[tuple[Kernels, str, tuple]] = []
    for k in ALL:
        for name in k.names():
            original = getattr(k, name)

            def record(*args, _k=k, _name=name, _fn=original):
                calls.append((_k, _name, tuple(_copy(a) for a in args)))
                return _fn(*args)

            monkeypatch.setattr(k, name, record)
    return calls


def _random_lists(seed: int, n: int, n_items: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (np.arange(n_items) + 2.0)
    popularity /= popularity.sum()
    rows = []
    for _ in range(n):
        size = int(rng.integers(1, 8))
        row = set(rng.choice(n_items, size=size, p=popularity).tolist())
        if 0 in row and rng.random() < 0.7:  # a planted pair
            row.add(1)
        rows.append([f"i{x:02d}" for x in sorted(row)])
    return rows


def _work(tmp_path) -> None:
    """Reading, fingerprinting and mining in every mode the kernels serve."""
    rows = _random_lists(0, 400, 14)
    # basket lines (both separators), a long CSV with integer transaction ids and timestamps
    (tmp_path / "b.dat").write_text("".join(" ".join(r) + "\n" for r in rows))
    (tmp_path / "b.csv").write_text("".join(",".join(r) + "\n" for r in rows))
    lines = ["transaction_id,item,timestamp"]
    for t, r in enumerate(rows):
        lines += [f"T{1000 + t},{x},2024-01-{1 + t % 5:02d}T10:00:00" for x in r]
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({  # integer transaction ids
        "transaction": np.repeat(np.arange(len(rows), dtype=np.int64) * 7, [len(r) for r in rows]),
        "item": [x for r in rows for x in r],
    }), tmp_path / "long.parquet")
    baskets = read_baskets(tmp_path / "b.dat")
    read_baskets(tmp_path / "b.csv")
    read_baskets(tmp_path / "long.parquet")
    long = read_baskets(tmp_path / "long.csv")
    fingerprint(baskets)
    fingerprint(long)  # timestamps: tied runs sorted by the packed ranks
    vocab = sorted({x for r in rows for x in r}, reverse=True)  # ids not in string order
    fingerprint(Baskets.from_lists(rows, items=vocab))

    for algorithm in ("fpgrowth", "apriori"):
        for kw in ({}, {"consequents": ["i01", "i03"]}, {"antecedents": ["i00", "i02", "i04"]},
                   {"multi_consequent": True}, {"max_len": 3, "exclude": ["i05"]}):
            fi = frequent_itemsets(baskets, 0.01, algorithm=algorithm, **kw)
            rules = association_rules(fi, min_confidence=0.2, max_p_value=0.5)
            rules.measures["lift"], rules.measures["p_value"]
    retail = read_baskets(shared_file("retail.dat"))
    miner = AssociationMiner(min_support=0.002, min_confidence=0.1).fit(retail)
    miner.rules_arrays_.measures["conviction"], miner.rules_arrays_.measures["p_value"]
    AssociationMiner(min_support=0.01, min_confidence=0.1, algorithm="apriori").fit(retail)


def test_aot_and_jit_kernels_give_identical_results(recorded, tmp_path):
    _work(tmp_path)
    seen = {(k.package, name) for k, name, _ in recorded}
    every = {(k.package, name) for k in ALL for name in k.names()}
    assert every <= seen, f"kernels not exercised: {sorted(every - seen)}"
    for k, name, args in recorded:
        aot_args = tuple(_copy(a) for a in args)
        jit_args = tuple(_copy(a) for a in args)
        aot = k.aot_kernel(name)(*aot_args)
        jit = k.jit_kernel(name)(*jit_args)
        assert _identical(_defined(name, aot), _defined(name, jit)), \
            f"{k.package}.{name}: results differ"
        assert _identical(aot_args, jit_args), f"{k.package}.{name}: arguments written differ"
    # the recorded work went to the ahead-of-time kernels, none to the JIT
    assert data_kernels.jit_calls == {} and mining_kernels.jit_calls == {}


def test_other_argument_types_go_to_the_jit():
    _require_aot()
    k = Kernels("basketry.mining", MINING_SPEC, mining_kernels.sources()[0].parent)
    indptr = np.array([0, 2, 3, 5], dtype=np.int64)
    indices = np.array([4, 7, 1, 2, 9], dtype=np.int32)
    rows = np.array([2, 0], dtype=np.int64)
    want = k.gather_rows(indptr, indices, rows)
    assert k.jit_calls == {}
    for args in ((indptr, indices.astype(np.int64), rows),  # another dtype
                 (indptr, np.repeat(indices, 2)[::2], rows)):  # not contiguous
        got = k.gather_rows(*args)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert k.jit_calls == {"gather_rows": 2}
    # a scalar of another type, and a read-only array where the kernel writes
    radix = k.radix_order(indptr, indices, np.int32(10), True)
    assert np.array_equal(radix, k.radix_order(indptr, indices, 10, True))
    counts = np.zeros(1, dtype=np.int64)
    counts.flags.writeable = False
    with pytest.raises(Exception):  # noqa: B017 - numba refuses to write into it
        k.count_trie(indptr, indices, *k.build_trie(np.array([0, 1], dtype=np.int64),
                                                    np.array([2], dtype=np.int32)), counts)
    assert k.jit_calls == {"gather_rows": 2, "radix_order": 1, "count_trie": 1}


def test_stale_module_falls_back_to_the_jit(tmp_path, monkeypatch):
    _require_aot()
    directory = mining_kernels.sources()[0].parent
    for path in mining_kernels.sources():
        shutil.copy(path, tmp_path / path.name)
    assert Kernels("basketry.mining", MINING_SPEC, tmp_path).status == "aot"
    with open(tmp_path / "_fisher.py", "a") as f:
        f.write("\n# edited after the build\n")
    stale = Kernels("basketry.mining", MINING_SPEC, tmp_path)
    assert stale.status.startswith("jit: the ahead-of-time module is stale")
    assert stale.gather_rows is stale.jit_kernel("gather_rows")
    # another signature is another module too
    spec = {m: dict(v) for m, v in MINING_SPEC.items()}
    spec["_fisher"]["fisher_upper"] = ("i8[:]", "i8[:]", "i8[:]", "f8")
    assert Kernels("basketry.mining", spec, directory).status.startswith("jit: ")
    monkeypatch.setenv(MODE_ENV, "aot")
    with pytest.raises(RuntimeError, match="stale"):
        Kernels("basketry.mining", MINING_SPEC, tmp_path).status  # noqa: B018


def test_forced_jit_and_bad_mode(monkeypatch):
    monkeypatch.setenv(MODE_ENV, "jit")
    k = Kernels("basketry.data", DATA_SPEC, data_kernels.sources()[0].parent)
    assert k.status == f"jit: {MODE_ENV}=jit"
    from basketry.data import _lines

    assert k.tokenize is _lines.tokenize
    monkeypatch.setenv(MODE_ENV, "fast")
    with pytest.raises(RuntimeError, match=MODE_ENV):
        Kernels("basketry.data", DATA_SPEC, data_kernels.sources()[0].parent).status  # noqa: B018


def test_signature_codes():
    assert parse_code("i8") == ("i8", 0, False)
    assert parse_code("u4[:]!") == ("u4", 1, True)
    assert parse_code("i4[:,:]") == ("i4", 2, False)
    for bad in ("i8!", "x9[:]", "i8[:"):
        with pytest.raises((ValueError, TypeError)):
            parse_code(bad)
    with pytest.raises(ValueError, match="underscore"):
        Kernels("basketry.data", {"_lines": {"_grow": ("i8",)}}, data_kernels.sources()[0].parent)


def test_mining_a_basket_file_imports_neither_numba_nor_pyarrow(tmp_path):
    _require_aot()
    path = tmp_path / "b.dat"
    path.write_text("".join(" ".join(r) + "\n" for r in _random_lists(1, 200, 10)))
    code = textwrap.dedent(f"""
        import sys
        from basketry.data import read_baskets
        from basketry.mining import AssociationMiner
        baskets = read_baskets({str(path)!r})
        miner = AssociationMiner(min_support=0.02, min_confidence=0.1).fit(baskets)
        assert len(miner.rules_arrays_) > 0
        miner.rules_arrays_.measures["p_value"], miner.rules_arrays_.measures["lift"]
        heavy = [m for m in ("numba", "llvmlite", "pyarrow", "pandas", "scipy") if m in sys.modules]
        print(",".join(heavy) or "none")
    """)
    env = {k: v for k, v in os.environ.items() if k != MODE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "none"
