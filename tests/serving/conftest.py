"""Fixtures of the serving tests: small hand-made models whose answers are known."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from basketry.model import items_table, write_model
from basketry.serving import Settings, create_app
from tests.model.conftest import make_rules

ITEMS = ["a", "b", "c", "d", "e", "f", "g"]
COUNTS = [50, 40, 30, 20, 60, 10, 5]
ADMIN = "test-admin-token"


def write_version(path: Path, tag: str, *, overwrite: bool = True,
                  scoring: str = "confidence") -> str:
    """A model whose labels carry ``tag`` (so an answer shows which model produced it);
    returns its version. Different tags give different rules and so different versions."""
    labels = [f"{tag}:{item}" for item in ITEMS]
    rows = [
        ([0], [1], 30, 50, 40),  # a -> b  conf 0.6
        ([0], [2], 30, 50, 30),  # a -> c  conf 0.6, higher lift
        ([1], [0], 30, 40, 50),  # b -> a  conf 0.75
        ([0, 1], [2], 20, 30, 30),  # a b -> c
        ([0, 1], [3], 27, 30, 30),  # a b -> d  conf 0.9
        ([4], [0], 25, 60, 50),  # e -> a
    ]
    if tag != "v1":
        rows.append(([4], [5], 9, 60, 10))  # e -> f, only in later versions
    write_model(path, items=items_table(np.array(ITEMS, dtype=object), np.array(COUNTS),
                                        np.array(labels, dtype=object)),
                rules=make_rules(rows, n=100), n_baskets=100,
                parameters={"min_support": 0.05, "tag": tag},
                # the answers below are known for ranking by confidence, whatever the default
                scoring={"method": scoring},
                dataset={"fingerprint": f"fp-{tag}"}, metrics={"hit_rate@10": 0.5},
                overwrite=overwrite)
    import json

    return str(json.loads((path / "manifest.json").read_text())["model_version"])


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    write_version(path, "v1")
    return path


def client_for(settings: Settings) -> TestClient:
    return TestClient(app=create_app(settings), raise_server_exceptions=False)


@pytest.fixture(params=[True, False], ids=["fast", "framework"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def client(model_dir: Path, fast_path: bool) -> Iterator[TestClient]:
    with client_for(Settings(model=str(model_dir), admin_token=ADMIN,
                             fast_path=fast_path)) as c:
        yield c
