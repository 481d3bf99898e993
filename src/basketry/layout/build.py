"""The one entry point: ``plan_layout(pairs, params, ...) -> LayoutPlan``.

A full layout: affinity graph -> aisles (communities under the constraints) -> a refinement by
moves and swaps on the ``excess_count`` weights -> aisle order -> shelf order. With a current
layout: the moves that gain the most within the budget, applied to it. Evaluation on held-out
baskets when given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from basketry.layout.affinity import DEFAULT_WEIGHTING, Affinity, PairCounts, build_affinity
from basketry.layout.aisles import Problem, assign_aisles
from basketry.layout.constraints import (
    Anchor,
    Categories,
    Current,
    check_known,
    resolve_capacities,
)
from basketry.layout.evaluate import category_layout, evaluate, held_out_pairs
from basketry.layout.moves import BETA, MoveRecord, MoveSearch, objective, parse_budget
from basketry.layout.ordering import aisle_links, order_groups, order_within
from basketry.layout.refine import refine_aisles
from basketry.model.layout import Aisle, AisleLink, Edge, LayoutError, LayoutPlan, Move, Slot

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LayoutParams:
    """Every parameter of a plan, declared once (the command's options map onto these)."""

    aisles: int | None = None
    capacity: int | None = None
    capacities: tuple[int, ...] | None = None
    weighting: str = DEFAULT_WEIGHTING
    seed: int = 0
    resolution: float = 1.0  # Louvain's: higher gives smaller communities
    beta: float = BETA  # weight of adjacent aisles in the objective
    max_moves: str | int | None = None  # incremental: a number or a share ("10%")
    refine_moves: int = 1_000_000  # full layout: moves and swaps of the refinement, at most
    # the refinement's objective (None: ``weighting``): the excess plus a share of the
    # occurrences, which the evaluation counts; it starts from the communities of
    # ``weighting``, which keep the product groups whole
    refine_weighting: str | None = "excess_count"
    max_edges: int = 2000  # item-item edges kept in the plan for the pictures
    max_links: int = 200  # aisle-aisle links kept
    draws: int = 10  # random layouts of the evaluation

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["capacities"] = list(self.capacities) if self.capacities is not None else None
        return d


def _problem(pairs: PairCounts, caps: tuple[int, ...], categories: Categories | None,
             fixed: dict[str, Anchor] | None, index: dict[str, int]) -> tuple[Problem, np.ndarray]:
    n = pairs.n_items
    names = [str(x) for x in pairs.items]
    category = np.full(n, -1, dtype=np.int64)
    cat_names: list[str] = []
    together: set[int] = set()
    conflicts = np.zeros((0, 0), dtype=bool)
    if categories is not None and categories.of:
        cat_names = sorted(set(categories.of.values()))
        cid = {c: k for k, c in enumerate(cat_names)}
        for item, c in categories.of.items():
            category[index[item]] = cid[c]
        together = {cid[c] for c in categories.together}
        conflicts = np.zeros((len(cat_names), len(cat_names)), dtype=bool)
        for group in categories.apart:
            ids = [cid[c] for c in group]
            for x in ids:
                for y in ids:
                    if x != y:
                        conflicts[x, y] = True
    pinned = np.full(n, -1, dtype=np.int64)
    position = np.zeros(n, dtype=np.int64)
    for item, anchor in (fixed or {}).items():
        if anchor.aisle > len(caps):
            raise LayoutError(f"fixed product {item!r} is in aisle {anchor.aisle}, but the store "
                              f"has {len(caps)} aisles")
        pinned[index[item]] = anchor.aisle - 1
        position[index[item]] = anchor.position or 0
    problem = Problem(names=names, capacities=np.asarray(caps, dtype=np.int64),
                      category=category, category_names=cat_names,
                      together=frozenset(together), conflicts=conflicts, pinned=pinned)
    return problem, position


def plan_layout(pairs: PairCounts, params: LayoutParams = LayoutParams(), *,
                categories: Categories | None = None, fixed: dict[str, Anchor] | None = None,
                current: Current | None = None, test_baskets: object | None = None,
                source_name: str = "", progress: Progress | None = None) -> LayoutPlan:
    """The shelf plan of the products of ``pairs`` (a full layout, or the moves from
    ``current``), checked against the constraints; evaluated on ``test_baskets`` when given."""
    say = progress or (lambda _message: None)
    names = [str(x) for x in pairs.items]
    index = {name: k for k, name in enumerate(names)}
    known = set(index)
    if categories is not None:
        check_known(list(categories.of), known, "categories file", "it")
    if fixed:
        check_known(list(fixed), known, "fixed products file", "it")
    if current is not None:
        check_known(list(current.aisle), known, current.path or "current layout", "it")
    say(f"weighting {pairs.i.shape[0]:,} pairs ({params.weighting})")
    affinity = build_affinity(pairs, params.weighting)
    if current is None:
        caps = resolve_capacities(pairs.n_items, aisles=params.aisles, capacity=params.capacity,
                                  capacities=params.capacities)
        problem, position = _problem(pairs, caps, categories, fixed, index)
        aisle, moves, info = _full(affinity, problem, params, say)
    else:
        aisle, caps, problem, position, moves, info = _incremental(
            affinity, current, categories, fixed, index, params, say)
    evaluation = None
    if test_baskets is not None:
        say("evaluating on the held-out baskets")
        held = held_out_pairs(test_baskets, index)
        cur = None
        if current is not None:
            cur = np.full(pairs.n_items, -1, dtype=np.int64)
            for item, a in current.aisle.items():
                cur[index[item]] = a - 1
        cat_only = (category_layout(problem.category, pairs.counts.astype(np.float64), caps)
                    if categories is not None and categories.of else None)
        placed = np.where(aisle >= 0, aisle, -1)
        evaluation = evaluate(held, placed, seed=params.seed, draws=params.draws, current=cur,
                              category_only=cat_only)
    say("writing the plan")
    return _plan(pairs, affinity, problem, position, aisle, caps, moves, params, info,
                 evaluation, source_name, order=current is None, current=current)


def _movable(problem: Problem) -> np.ndarray:
    movable = problem.pinned < 0
    for c in problem.together:  # a category kept together moves as a whole, never one item
        movable &= problem.category != c
    return movable


def _full(affinity: Affinity, problem: Problem, params: LayoutParams,
          say: Progress) -> tuple[np.ndarray, list[MoveRecord], dict[str, Any]]:
    w = affinity.weights
    popularity = affinity.pairs.counts
    aisle = assign_aisles(w, popularity, problem, seed=params.seed,
                          resolution=params.resolution, progress=say)
    packed = objective(w, aisle, beta=0.0)
    steps = 0
    target = w
    if params.refine_moves > 0 and params.refine_weighting not in (None, params.weighting):
        target = build_affinity(affinity.pairs, params.refine_weighting).weights
    if params.refine_moves > 0 and target.nnz:
        say("refining aisles by moves and swaps")
        refined_aisles = refine_aisles(target, aisle, problem.capacities, _movable(problem),
                                       category=problem.category, conflicts=problem.conflicts,
                                       max_steps=params.refine_moves)
        aisle, steps = refined_aisles.aisle, refined_aisles.steps
    refined = objective(w, aisle, beta=0.0)
    say("ordering the aisles")
    n_aisles = problem.capacities.shape[0]
    links = aisle_links(w, aisle, n_aisles)
    sizes = np.bincount(aisle, minlength=n_aisles)
    pinned_groups = np.zeros(n_aisles, dtype=bool)
    pinned_groups[problem.pinned[problem.pinned >= 0]] = True
    slot_of = order_groups(links, sizes, problem.capacities, pinned_groups)
    aisle = slot_of[aisle]
    info = {"same_aisle_weight_packed": packed, "same_aisle_weight": refined,
            "refine_steps": steps,
            "objective": objective(w, aisle, beta=params.beta)}
    return aisle, [], info


def _incremental(affinity: Affinity, current: Current, categories: Categories | None,
                 fixed: dict[str, Anchor] | None, index: dict[str, int], params: LayoutParams,
                 say: Progress):  # -> (aisle, caps, problem, position, moves, info)
    n = affinity.n_items
    where = current.path or "current layout"
    aisle = np.full(n, -1, dtype=np.int64)
    for item, a in current.aisle.items():
        aisle[index[item]] = a - 1
    counts = np.bincount(aisle[aisle >= 0])
    if params.capacities is None and params.aisles is None and params.capacity is None:
        caps = tuple(int(c) for c in counts)
    else:
        caps = resolve_capacities(int((aisle >= 0).sum()), aisles=params.aisles,
                                  capacity=params.capacity, capacities=params.capacities)
    if counts.shape[0] > len(caps):
        raise LayoutError(f"{where}: products stand in aisle {counts.shape[0]}, but the store "
                          f"has {len(caps)} aisles")
    over = np.flatnonzero(counts > np.asarray(caps[:counts.shape[0]]))
    if over.size:
        a = int(over[0])
        raise LayoutError(f"{where}: aisle {a + 1} holds {counts[a]} products, over its "
                          f"capacity {caps[a]}")
    problem, position = _problem(affinity.pairs, caps, categories, fixed, index)
    moved_anchor = [problem.names[i] for i in np.flatnonzero(problem.pinned >= 0)
                    if aisle[i] != problem.pinned[i]]
    if moved_anchor:
        raise LayoutError(f"{where}: fixed products stand elsewhere than their fixed aisle: "
                          f"{', '.join(repr(x) for x in moved_anchor[:5])}")
    budget = parse_budget(params.max_moves, int((aisle >= 0).sum()))
    say(f"choosing up to {budget:,} moves")
    # the moves serve the objective a full layout is refined on, so that moving towards a
    # fresh plan never undoes what the plan gained
    goal = params.refine_weighting or params.weighting
    target = (affinity.weights if goal == params.weighting
              else build_affinity(affinity.pairs, goal).weights)
    before = objective(target, aisle, params.beta)
    search = MoveSearch(target, aisle, np.asarray(caps), _movable(problem),
                        beta=params.beta, category=problem.category,
                        conflicts=problem.conflicts)
    moves = search.run(budget)
    info = {"budget": budget, "objective_weighting": goal, "objective_before": before,
            "objective_after": objective(target, search.aisle, params.beta),
            "products_not_in_current": int((aisle < 0).sum())}
    return search.aisle, caps, problem, position, moves, info


def _plan(pairs: PairCounts, affinity: Affinity, problem: Problem, position: np.ndarray,
          aisle: np.ndarray, caps: tuple[int, ...], moves: list[MoveRecord],
          params: LayoutParams, info: dict[str, Any], evaluation: dict[str, Any] | None,
          source_name: str, *, order: bool, current: Current | None) -> LayoutPlan:
    n_aisles = len(caps)
    popularity = pairs.counts.astype(np.float64)
    shelves: list[list[int]] = []
    for a in range(n_aisles):
        members = np.flatnonzero(aisle == a)
        if order:
            shelves.append(order_within(affinity.weights, members, position, popularity)
                           .tolist())
        else:
            shelves.append(_keep_positions(members, current, pairs, moves, a))
    labels, cat_names = pairs.labels, problem.category_names
    aisles = []
    for a, items in enumerate(shelves):
        slots = tuple(Slot(item=problem.names[i], label=labels[i], aisle=a + 1, position=p + 1,
                           fixed=bool(problem.pinned[i] >= 0),
                           category=cat_names[problem.category[i]]
                           if problem.category[i] >= 0 else None)
                      for p, i in enumerate(items))
        aisles.append(Aisle(aisle=a + 1, capacity=int(caps[a]), items=slots))
    links_m = aisle_links(affinity.weights, aisle, n_aisles)
    ia, ib = np.triu_indices(n_aisles, k=1)
    lw = links_m[ia, ib]
    top = np.argsort(-lw, kind="stable")[:params.max_links]
    links = tuple(AisleLink(int(ia[k]) + 1, int(ib[k]) + 1, float(lw[k])) for k in top
                  if lw[k] > 0)
    edges = tuple(Edge(problem.names[i], problem.names[j], w)
                  for i, j, w in affinity.strongest_edges(params.max_edges)
                  if aisle[i] >= 0 and aisle[j] >= 0)
    final_pos = {s.item: s.position for a in aisles for s in a.items}
    plan_moves = tuple(Move(problem.names[m.item], labels[m.item], m.from_aisle + 1,
                            m.to_aisle + 1, final_pos[problem.names[m.item]], m.gain)
                       for m in moves)
    doc_params = params.to_json() | {"n_items": pairs.n_items, "n_pairs": int(pairs.i.shape[0]),
                                     "n_edges": int(affinity.weights.nnz // 2),
                                     "capacities": list(caps), "source_name": source_name}
    doc_params |= {k: v for k, v in info.items()}
    return LayoutPlan(aisles=tuple(aisles), links=links, edges=edges, moves=plan_moves,
                      model_version=pairs.model_version, source=pairs.source,
                      weighting=affinity.weighting, params=doc_params, evaluation=evaluation)


def _keep_positions(members: np.ndarray, current: Current | None, pairs: PairCounts,
                    moves: list[MoveRecord], a: int) -> list[int]:
    """Shelf order of aisle ``a`` after the moves: the current order, a product moved in taking
    the place of the one it swapped with, else the end of the aisle."""
    assert current is not None
    names = [str(x) for x in pairs.items]
    moved = {m.item for m in moves}
    shelf = sorted((int(i) for i in members if int(i) not in moved),
                   key=lambda i: (current.position.get(names[i], 1 << 30), names[i]))
    slot_of_partner = {m.partner: m.item for m in moves if m.to_aisle == a}
    # swapped-in products take their partner's former place
    order = sorted((current.position.get(names[p], 1 << 30), names[p], i)
                   for p, i in slot_of_partner.items() if p >= 0)
    for pos, _name, i in order:
        shelf.insert(min(max(pos - 1, 0), len(shelf)), i)
    shelf += [m.item for m in moves if m.to_aisle == a and m.partner < 0]
    return shelf
