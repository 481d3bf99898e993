"""Models written before the ``one_scale`` method existed score exactly as they did: the
answers of the previous scoring code, as digests, for models with every former scoring object
(none at all, ``smoothed`` with its defaults and other parameters, ``confidence``, ``lift``).

The digests were computed with the scoring code of the commit before ``one_scale`` (the same
models, baskets and ``k``); a change of any item, order, score bit, fallback flag or rule of an
answer changes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from basketry.model import items_table, load_model, write_model
from tests.model.conftest import make_rules

#: scoring object written in the manifest -> sha256 of the answers of the former code
EXPECTED = {
    "none": "2ce45cbe6348c4b8bf4ed03dd94ab900a2540b743641fedefb0c64e9bf64dc2a",
    "smoothed": "2ce45cbe6348c4b8bf4ed03dd94ab900a2540b743641fedefb0c64e9bf64dc2a",
    "smoothed m=3 c=0.5": "07c2d1d035798c19a25bfbef589b9a23c7b4a60fff6a69d8637b469d4b622e86",
    "confidence": "ecc8515954d74ce4f1b12f212bd2d1bce1b8dcffe3a15d60c542c09f748892db",
    "lift": "ba6e582eddcdf44acf2135649a957ed90a8e319d6b9d1447a0780aef03706beb",
}
SCORINGS = {
    "none": None,
    "smoothed": {"method": "smoothed", "prior_weight": 10, "combine": 0.01},
    "smoothed m=3 c=0.5": {"method": "smoothed", "prior_weight": 3, "combine": 0.5},
    "confidence": {"method": "confidence"},
    "lift": {"method": "lift"},
}


def _model(path: Path, scoring: dict | None, seed: int = 7, n_items: int = 40,
           n_rules: int = 500) -> Path:
    """Overlapping rules (antecedents of 1-3 items) with rounded counts, so that scores tie."""
    rng = np.random.default_rng(seed)
    n = 1000
    counts = rng.integers(5, 600, size=n_items)
    rows = []
    for _ in range(n_rules):
        size = int(rng.integers(1, 4))
        items = rng.choice(n_items, size=size + 1, replace=False)
        ante, cons = sorted(items[:-1].tolist()), [int(items[-1])]
        nx = int(counts[ante[0]]) if size == 1 else int(rng.integers(5, 200))
        ny = int(counts[cons[0]])
        nxy = max(int(rng.integers(1, min(nx, ny) + 1)) // 5 * 5, 1)
        rows.append((ante, cons, nxy, nx, ny))
    write_model(path, items=items_table(np.array([f"i{i:02d}" for i in range(n_items)],
                                                 dtype=object), counts),
                rules=make_rules(rows, n=n), n_baskets=n, parameters={"min_support": 0.01},
                scoring=scoring)
    return path


def answers_digest(path: Path) -> str:
    model = load_model(path)
    rng = np.random.default_rng(11)
    out = []
    for _ in range(300):
        basket = [f"i{x:02d}" for x in rng.choice(40, size=int(rng.integers(0, 7)),
                                                  replace=False)]
        for k in (1, 5, 12):
            out.append([(r.item, r.score.hex(), r.fallback, r.rule and r.rule.antecedent)
                        for r in model.recommend(basket, k=k).items])
    return hashlib.sha256(json.dumps(out).encode()).hexdigest()


@pytest.mark.parametrize("name", list(SCORINGS))
def test_former_scorings_answer_as_the_former_code(tmp_path, name):
    path = _model(tmp_path / "m", SCORINGS[name])
    assert answers_digest(path) == EXPECTED[name]


if __name__ == "__main__":  # prints the digests of the code on the path (run with the former)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, scoring in SCORINGS.items():
            print(f"    {name!r}: {answers_digest(_model(Path(tmp) / name, scoring))!r},")
