"""Saving a fitted miner as a model artifact, with the profile of the data it was trained on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from basketry.data import Baskets, profile
from basketry.mining import AssociationMiner
from basketry.model import items_table, scoring_spec, write_model


def miner_parameters(miner: AssociationMiner) -> dict[str, Any]:
    """The fitted miner's parameters as plain JSON values, with the exact minimum count used."""
    params: dict[str, Any] = {}
    for name, value in miner.get_params().items():
        if name in ("n_jobs", "memory_budget"):  # how the fit ran, not what it found
            continue
        if isinstance(value, (set, frozenset, list, tuple)):
            value = sorted(str(v) for v in value)
        params[name] = value
    params["min_count"] = int(miner.min_count_)
    return params


def save_model(
    path: str | os.PathLike[str],
    miner: AssociationMiner,
    baskets: Baskets,
    *,
    metrics: dict[str, Any] | None = None,
    extra_parameters: dict[str, Any] | None = None,
    scoring: str | dict[str, Any] | None = None,
    overwrite: bool = False,
    sequential: Any = None,
) -> Path:
    """Write ``miner``'s rules, fitted on ``baskets``, as a model directory at ``path``, scored
    by ``scoring`` (a method name or scoring object; default: the model contract's default
    method with its default parameters, recorded in full in the manifest)."""
    items = items_table(baskets.items, miner.item_counts_, baskets.labels)
    parameters = {**miner_parameters(miner), **(extra_parameters or {})}
    return write_model(
        path,
        items=items,
        rules=miner.rules_table(),
        n_baskets=miner.n_baskets_,
        parameters=parameters,
        dataset=profile(baskets),
        metrics=metrics,
        scoring=scoring_spec(scoring),
        overwrite=overwrite,
        sequential=sequential,
    )
