"""The scoring kernel compiled ahead of time (``basketry/model/_kernels_aot``) against numba's JIT.

A process that loads a model and answers from it (a script, a serving worker) must not import
numba when the compiled kernel is present; with ``BASKETRY_KERNELS=jit`` the answers must be
identical to the bit; without either (no compiled module, no numba), loading a model fails with
one line saying what to install.

Without the ahead-of-time module (no C compiler at install, or ``BASKETRY_KERNELS=jit``) the
tests that need it skip, except under CI, where ``pip install -e .`` must have built it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from basketry._kernels import MODE_ENV, KernelsUnavailable
from basketry.model import items_table, load_model, write_model
from basketry.model._compiled import FREE, kernels
from tests.model.conftest import make_rules

ROOT = Path(__file__).resolve().parents[2]


def _require_aot() -> None:
    if kernels.status == "aot":
        return
    forced = os.environ.get(MODE_ENV, "").strip().lower() == "jit"
    if os.environ.get("CI") and not forced:
        pytest.fail(f"basketry.model: {kernels.status}; CI installs with pip install -e ., which "
                    "must build it", pytrace=False)
    pytest.skip(f"basketry.model: {kernels.status}")


def _random_model(path: Path, seed: int = 0, n_items: int = 60, n_rules: int = 900,
                  scoring: dict | None = None) -> Path:
    """A model with many overlapping rules (antecedents of 1-3 items), ties included."""
    rng = np.random.default_rng(seed)
    n = 1000
    counts = rng.integers(5, 400, size=n_items)
    rows = []
    for _ in range(n_rules):
        size = int(rng.integers(1, 4))
        items = rng.choice(n_items, size=size + 1, replace=False)
        ante, cons = sorted(items[:-1].tolist()), [int(items[-1])]
        nx = int(counts[ante[0]]) if size == 1 else int(rng.integers(5, 200))
        ny = int(counts[cons[0]])
        nxy = max(int(rng.integers(1, min(nx, ny) + 1)) // 5 * 5, 1)  # round: tied scores
        rows.append((ante, cons, nxy, nx, ny))
    labels = np.array([f"label {i}" for i in range(n_items)], dtype=object)
    write_model(path, items=items_table(np.array([f"i{i:02d}" for i in range(n_items)],
                                                 dtype=object), counts, labels),
                rules=make_rules(rows, n=n), n_baskets=n, parameters={"min_support": 0.01},
                scoring=scoring)
    return path


def _baskets(seed: int, n_items: int, n: int = 300) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[f"i{x:02d}" for x in rng.choice(n_items, size=int(rng.integers(0, 9)),
                                             replace=False)] + (["unknown"] if i % 7 == 0 else [])
            for i in range(n)]


def test_the_scratch_value_is_the_kernels():
    from basketry.model import _fire  # imports numba: only here, never when scoring

    assert FREE == _fire._FREE


@pytest.mark.parametrize("scoring", [None, {"method": "one_scale", "prior_weight": 5},
                                     {"method": "lift_product", "combine": 0.5}])
def test_aot_and_jit_scoring_kernels_give_identical_results(tmp_path, scoring):
    _require_aot()
    model = load_model(_random_model(tmp_path / "m", scoring=scoring))
    answer_aot = kernels.aot_kernel("answer_basket")
    answer_jit = kernels.jit_kernel("answer_basket")
    banned = model.ids_of(["i03", "i17"])
    for i, basket in enumerate(_baskets(1, 60)):
        ids = model.ids_of(basket)
        exclude = model.ids_of(["i05"]) if i % 3 == 0 else np.empty(0, dtype=np.int32)
        for k in (1, 5, 60):
            args = [ids, exclude, banned if i % 2 else np.empty(0, dtype=np.int32), k,
                    *model._trie(), *model._tail()]
            aot = answer_aot(*args, *model._scratch())
            jit = answer_jit(*args, *model._scratch())
            for a, b in zip(aot, jit, strict=True):
                assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (basket, k)
            scratch, evidence = model._scratch()  # restored on return, either way
            assert (scratch == FREE).all() and not evidence.any()
    ptr = np.array([0, 2, 2, 5], dtype=np.int64)
    items = np.array([1, 4, 0, 2, 9], dtype=np.int32)
    for use_rules in (True, False):
        args = (ptr, items, 7, use_rules, *model._trie(), *model._tail())
        aot = kernels.aot_kernel("batch_top_items")(*args, *model._scratch())
        jit = kernels.jit_kernel("batch_top_items")(*args, *model._scratch())
        assert all(a.tobytes() == b.tobytes() for a, b in zip(aot, jit, strict=True))


_RECOMMEND = """
import json, sys
from basketry.model import load_model
model = load_model(sys.argv[1])
answers = [[(r.item, r.score.hex(), r.fallback, r.rule and r.rule.antecedent)
            for r in model.recommend(basket, k=k).items]
           for basket in json.loads(sys.argv[2]) for k in (1, 4, 70)]
top, from_rules = model.top_items([0, 2, 3], [4, 7, 11], 5)
print(json.dumps({"answers": answers, "top": top.tolist(), "from_rules": from_rules.tolist(),
                  "numba": "numba" in sys.modules, "llvmlite": "llvmlite" in sys.modules}))
"""


def _run(code: str, *args: str, kernels_mode: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != MODE_ENV}
    if kernels_mode:
        env[MODE_ENV] = kernels_mode
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_scoring_imports_no_numba_and_answers_as_the_jit(tmp_path):
    _require_aot()
    path = str(_random_model(tmp_path / "m", seed=3))
    baskets = json.dumps(_baskets(4, 60, n=60))
    aot = _run(_RECOMMEND, path, baskets)
    jit = _run(_RECOMMEND, path, baskets, kernels_mode="jit")
    assert aot.returncode == 0, aot.stderr
    assert jit.returncode == 0, jit.stderr
    aot_out, jit_out = json.loads(aot.stdout), json.loads(jit.stdout)
    assert not aot_out.pop("numba") and not aot_out.pop("llvmlite")
    assert jit_out.pop("numba")
    jit_out.pop("llvmlite")
    assert aot_out == jit_out


def test_a_serving_app_answers_without_numba(tmp_path):
    _require_aot()
    pytest.importorskip("litestar")
    path = _random_model(tmp_path / "m", seed=5)
    code = textwrap.dedent(f"""
        import json, sys
        from litestar.testing import TestClient
        from basketry.serving import Settings, create_app
        with TestClient(app=create_app(Settings(model={str(path)!r}))) as client:
            r = client.post("/v1/recommendations", json={{"basket": ["i01", "i02"], "k": 3}})
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) == 3, r.text
        print(json.dumps(sorted(m for m in ("numba", "llvmlite") if m in sys.modules)))
    """)
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_without_compiled_kernels_or_numba_loading_says_what_to_install(tmp_path, tiny_model):
    # the JIT forced stands for a missing or stale module; numba made unimportable
    code = textwrap.dedent(f"""
        import sys
        sys.modules["numba"] = None
        from basketry.model import load_model
        load_model({str(tiny_model)!r})
    """)
    out = _run(code, kernels_mode="jit")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("basketry._kernels.loader.KernelsUnavailable: basketry.model: ")
    assert "numba is not installed: install basketry[train]" in last
    assert "rebuild" in last
    assert KernelsUnavailable.__module__ == "basketry._kernels.loader"
