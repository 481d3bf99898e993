"""Small shelf plans built by hand for the pictures' and the API's tests: aisles of products
whose edges are strong within an aisle and weak across, some products fixed, long labels."""

from __future__ import annotations

import random
from collections import defaultdict

from basketry.model.layout import Aisle, AisleLink, Edge, LayoutPlan, Move, Slot

LONG = "EXTRA LONG DESCRIPTION OF A PRODUCT THAT NEVER FITS ON A SHELF LABEL"


def item_code(aisle: int, position: int) -> str:
    return f"{aisle:02d}{position:03d}"


def item_label(aisle: int, position: int) -> str:
    if position == 2:
        return f"{LONG} {aisle}"
    return f"PRODUCT {position} OF AISLE {aisle}"


def make_plan(n_aisles: int, per_aisle: int = 8, *, labels: bool = True, seed: int = 0,
              model_version: str | None = "abcdef0123456789", evaluation: bool = True
              ) -> LayoutPlan:
    """``n_aisles`` aisles of ``per_aisle`` products (capacity two more); in each aisle the
    first product is the best linked, the third is fixed; aisles i and i+1 share a few edges."""
    rng = random.Random(seed)
    aisles = []
    for a in range(1, n_aisles + 1):
        slots = tuple(Slot(item=item_code(a, p), label=item_label(a, p) if labels else None,
                           aisle=a, position=p, fixed=p == 3,
                           category=f"cat{a % 3}" if p % 2 else None)
                      for p in range(1, per_aisle + 1))
        aisles.append(Aisle(aisle=a, capacity=per_aisle + 2, items=slots))
    edges = []
    for a in range(1, n_aisles + 1):
        for p in range(2, per_aisle + 1):  # the first product is linked to every other
            edges.append(Edge(item_code(a, 1), item_code(a, p), 5.0 + rng.random()))
        for p in range(2, per_aisle):
            edges.append(Edge(item_code(a, p), item_code(a, p + 1), 1.0 + rng.random()))
        if a < n_aisles:
            edges.append(Edge(item_code(a, per_aisle), item_code(a + 1, per_aisle),
                              0.5 + rng.random()))
    if n_aisles >= 3:
        edges.append(Edge(item_code(1, 4), item_code(3, 4), 0.3))
    links: dict[tuple[int, int], float] = defaultdict(float)
    for e in edges:
        a, b = int(e.a[:2]), int(e.b[:2])
        if a != b:
            links[(min(a, b), max(a, b))] += e.weight
    moves = (Move(item_code(1, 4), item_label(1, 4) if labels else None, 1,
                  min(2, n_aisles), 1, 0.0012),)
    return LayoutPlan(
        aisles=tuple(aisles),
        links=tuple(AisleLink(a, b, round(w, 4)) for (a, b), w in sorted(links.items())),
        edges=tuple(edges), moves=moves, model_version=model_version, source="model",
        weighting="lift", params={"aisles": n_aisles, "capacity": per_aisle + 2},
        evaluation={"layout": {"same_aisle": 0.42, "same_or_adjacent": 0.61},
                    "random": {"same_aisle": 0.05, "same_or_adjacent": 0.14}}
        if evaluation else None,
        created_at="2026-12-05T01:00:00Z")
