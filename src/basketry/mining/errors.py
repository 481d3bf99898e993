"""Errors raised by the mining package."""

from __future__ import annotations


class MiningError(ValueError):
    """A mining parameter is invalid or mining cannot go on as asked."""


class BudgetExceeded(MiningError):
    """Mining stopped early because it found more itemsets or rules than its budget allows
    (``estimated``: before mining, from a lower bound that ``found`` gives), or because it ran
    out of memory (``what`` is "memory", ``limit`` the budget in bytes, 0 when none)."""

    def __init__(
        self, message: str, *, what: str, found: int, limit: int, estimated: bool = False
    ) -> None:
        super().__init__(message)
        self.what = what
        self.found = found
        self.limit = limit
        self.estimated = estimated
