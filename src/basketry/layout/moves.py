"""Moves that improve a layout, greedy by gain: the incremental re-layout a store can afford
(a budget of moved products). A full layout is refined by ``refine.py`` instead (no budget, so
a pass per pair of aisles is cheaper than the global best step).

The objective is the affinity-weighted share of pairs standing close: a pair in the same aisle
counts 1, in adjacent aisles ``beta`` (0.5), farther 0, over the total weight. A move puts one
product into free space of another aisle; a swap exchanges two products of two aisles and is
reported as two moves in a row (the first may leave the second aisle one over its capacity
until the second is applied). Each reported gain is the change of the objective that applying
that move, after the ones before it, makes. Anchors never move; no product moves twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from basketry.model.layout import LayoutError

BETA = 0.5
#: how many of the most eager products are tried as swap partners per step
SWAP_CANDIDATES = 32
#: and for each of them, how many of its best aisles
SWAP_AISLES = 3
_EPS = 1e-12


@dataclass(frozen=True)
class MoveRecord:
    item: int  # index into the affinity's items
    from_aisle: int  # 0-based
    to_aisle: int  # 0-based
    gain: float  # change of the objective (a share, 0..1)
    partner: int = -1  # the item it swaps places with, -1 for a move into free space


def objective(weights: sp.csr_matrix, aisle: np.ndarray, beta: float = BETA) -> float:
    """The share of affinity weight standing in the same aisle (1) or adjacent aisles (beta).
    Products without an aisle (-1) count as far from everything."""
    upper = sp.triu(weights, k=1).tocoo()
    total = float(upper.data.sum())
    if total <= 0:
        return 0.0
    ai, aj = aisle[upper.row], aisle[upper.col]
    placed = (ai >= 0) & (aj >= 0)
    d = np.abs(ai - aj)
    near = np.where(placed & (d == 0), 1.0, np.where(placed & (d == 1), beta, 0.0))
    return float(upper.data @ near) / total


class MoveSearch:
    """Greedy moves and swaps on an assignment ``aisle`` (0-based per item, -1: not placed).

    Keeps ``m[i, a]``, the affinity of item i with aisle a, and each item's best destination,
    updating only the rows of the moved items' neighbours after each step.
    """

    def __init__(self, weights: sp.csr_matrix, aisle: np.ndarray, capacities: np.ndarray,
                 movable: np.ndarray, *, beta: float = BETA,
                 category: np.ndarray | None = None, conflicts: np.ndarray | None = None) -> None:
        self.w = weights.tocsr()
        self.n = self.w.shape[0]
        self.aisle = aisle.astype(np.int64).copy()
        self.caps = np.asarray(capacities, dtype=np.int64)
        self.n_aisles = int(self.caps.shape[0])
        self.beta = beta
        placed = self.aisle >= 0
        self.movable = movable & placed
        self.size = np.bincount(self.aisle[placed], minlength=self.n_aisles).astype(np.int64)
        upper_total = float(sp.triu(self.w, k=1).sum())
        self.total = upper_total if upper_total > 0 else 1.0
        # categories kept apart: conflicts[c, d] is True when c and d may not share an aisle
        self.category = category if category is not None else np.full(self.n, -1, np.int64)
        self.conflicts = conflicts
        if conflicts is not None and conflicts.any():
            n_cat = conflicts.shape[0]
            self.cat_count = np.zeros((self.n_aisles, n_cat), dtype=np.int64)
            has = placed & (self.category >= 0)
            np.add.at(self.cat_count, (self.aisle[has], self.category[has]), 1)
        else:
            self.conflicts = None
        z = sp.csr_matrix((np.ones(int(placed.sum())), (np.flatnonzero(placed),
                                                         self.aisle[placed])),
                          shape=(self.n, self.n_aisles))
        self.m = np.asarray((self.w @ z).todense(), dtype=np.float64)
        self.s = self._closeness(self.m)
        self._row = np.zeros(self.n)  # one item's weights, dense, while its swaps are tried
        self._refresh_all()

    # --- the score of each item in each aisle -------------------------------------------
    def _closeness(self, m: np.ndarray) -> np.ndarray:
        s = m.copy()
        if self.beta and self.n_aisles > 1:
            s[:, 1:] += self.beta * m[:, :-1]
            s[:, :-1] += self.beta * m[:, 1:]
        return s

    def _allowed(self, rows: np.ndarray) -> np.ndarray:
        """allowed[r, a]: item rows[r] may stand in aisle a (categories kept apart)."""
        allowed = np.ones((rows.shape[0], self.n_aisles), dtype=bool)
        if self.conflicts is None:
            return allowed
        cats = self.category[rows]
        has = cats >= 0
        if has.any():
            clash = self.cat_count @ self.conflicts[cats[has]].T.astype(np.int64)  # A x r
            allowed[has] = clash.T == 0
        return allowed

    def _refresh(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        s = self.s[rows]
        here = s[np.arange(rows.shape[0]), self.aisle[rows]]
        allowed = self._allowed(rows)
        allowed[np.arange(rows.shape[0]), self.aisle[rows]] = False
        into_free = np.where(allowed & (self.size < self.caps)[None, :], s, -np.inf)
        self.best_free[rows] = np.argmax(into_free, axis=1)
        self.gain_free[rows] = into_free.max(axis=1) - here
        anywhere = np.where(allowed, s, -np.inf)
        self.best_any[rows] = np.argmax(anywhere, axis=1)
        self.desire[rows] = anywhere.max(axis=1) - here
        still = ~self.movable[rows]
        self.gain_free[rows[still]] = -np.inf
        self.desire[rows[still]] = -np.inf

    def _refresh_all(self) -> None:
        self.best_free = np.zeros(self.n, dtype=np.int64)
        self.gain_free = np.full(self.n, -np.inf)
        self.best_any = np.zeros(self.n, dtype=np.int64)
        self.desire = np.full(self.n, -np.inf)
        rows = np.flatnonzero(self.movable)
        for start in range(0, rows.shape[0], 4096):  # bounded temporary arrays
            self._refresh(rows[start:start + 4096])
        self._free_mask = self.size < self.caps

    # --- applying ---------------------------------------------------------------------------
    def _apply(self, i: int, b: int) -> float:
        """Move item i to aisle b; returns the objective's change (a share)."""
        a = int(self.aisle[i])
        gain = (self.s[i, b] - self.s[i, a]) / self.total
        lo, hi = self.w.indptr[i], self.w.indptr[i + 1]
        nb, vals = self.w.indices[lo:hi], self.w.data[lo:hi]
        self.m[nb, a] -= vals
        self.m[nb, b] += vals
        self.s[nb] = self._closeness(self.m[nb])
        self.aisle[i] = b
        self.size[a] -= 1
        self.size[b] += 1
        self.movable[i] = False
        if self.conflicts is not None and self.category[i] >= 0:
            self.cat_count[a, self.category[i]] -= 1
            self.cat_count[b, self.category[i]] += 1
        return float(gain)

    def _after(self, touched: list[int]) -> None:
        free = self.size < self.caps
        if self.conflicts is not None or not np.array_equal(free, self._free_mask):
            self._refresh_all()
            return
        rows = [np.asarray(touched, dtype=np.int64)]
        for i in touched:
            rows.append(self.w.indices[self.w.indptr[i]:self.w.indptr[i + 1]].astype(np.int64))
        self._refresh(np.unique(np.concatenate(rows)))

    def _best_swap(self) -> tuple[float, int, int]:
        """(gain, i, k): swap i into k's aisle and k into i's, the best of the most eager
        products and, for each, its few best aisles."""
        best = (-np.inf, -1, -1)
        eager = np.argsort(-self.desire)[:SWAP_CANDIDATES]
        for i in eager.tolist():
            if not np.isfinite(self.desire[i]) or self.desire[i] <= _EPS:
                break
            a = int(self.aisle[i])
            gains_i = self.s[i] - self.s[i, a]
            allowed = self._allowed(np.array([i]))[0]
            targets = np.argsort(-np.where(allowed, gains_i, -np.inf))[:SWAP_AISLES]
            lo, hi = self.w.indptr[i], self.w.indptr[i + 1]
            self._row[self.w.indices[lo:hi]] = self.w.data[lo:hi]
            for b in targets.tolist():
                if b == a or not allowed[b] or gains_i[b] <= _EPS:
                    continue
                there = np.flatnonzero((self.aisle == b) & self.movable)
                # conservative: i still counts in aisle a when the partner's category is checked
                there = there[self._allowed(there)[:, a]] if self.conflicts is not None else there
                if there.size == 0:
                    continue
                w_ik = self._row[there]
                near = self.beta if abs(a - b) == 1 else 0.0
                back = self.s[there, a] - self.s[there, b] - 2.0 * w_ik * (1.0 - near)
                r = int(np.argmax(back))
                gain = gains_i[b] + back[r]
                if gain > best[0]:
                    best = (float(gain), i, int(there[r]))
            self._row[self.w.indices[lo:hi]] = 0.0
        return best

    def run(self, budget: int, progress: Callable[[float], None] | None = None,
            swaps: bool = True) -> list[MoveRecord]:
        """Apply the best move or swap while it gains and the budget (moved items) lasts."""
        done: list[MoveRecord] = []
        while len(done) < budget:
            i = int(np.argmax(self.gain_free)) if self.n else 0
            move_gain = float(self.gain_free[i]) if self.n else -np.inf
            swap_gain, si, sk = (self._best_swap() if swaps and budget - len(done) >= 2
                                 else (-np.inf, -1, -1))
            if max(move_gain, swap_gain) <= _EPS:
                break
            if swap_gain > move_gain:
                a, b = int(self.aisle[si]), int(self.aisle[sk])
                g1 = self._apply(si, b)
                g2 = self._apply(sk, a)
                done += [MoveRecord(si, a, b, g1, sk), MoveRecord(sk, b, a, g2, si)]
                self._after([si, sk])
            else:
                a, b = int(self.aisle[i]), int(self.best_free[i])
                done.append(MoveRecord(i, a, b, self._apply(i, b)))
                self._after([i])
            if progress is not None:
                progress(len(done) / max(budget, 1))
        return done


def parse_budget(text: str | int | None, n_items: int) -> int:
    """``--max-moves``: a number of products, or a share of them written ``10%``."""
    if text is None:
        return max(1, n_items // 10)
    if isinstance(text, int):
        value = text
    else:
        t = text.strip()
        try:
            if t.endswith("%"):
                share = float(t[:-1])
                if not 0 <= share <= 100:
                    raise ValueError
                return round(n_items * share / 100)
            value = int(t)
        except ValueError:
            raise LayoutError(f"--max-moves {text!r}: expected a number of products (50) or a "
                             f"share of them (10%)") from None
    if value < 0:
        raise LayoutError(f"--max-moves {text!r}: must be >= 0")
    return value
