"""The training side: split the data, mine the training part, evaluate on the test part with
the model contract's own scoring, save the model with its metrics; the train and tune
workflows (read, train or sweep, save, report, track, register: ``workflow.py``).

Imports the data and mining packages and the model contract; never the serving application.

The names below are loaded on first use (PEP 562), so that a caller needing one part, e.g.
``basketry mine`` saving a model with :func:`save_model`, does not pay for the evaluation
kernels, the report or the tracking code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Each public name and the module that defines it.
_EXPORTS = {
    "miner_parameters": "artifact",
    "save_model": "artifact",
    "Queries": "evaluate",
    "evaluate": "evaluate",
    "make_queries": "evaluate",
    "metrics_from_ranks": "evaluate",
    "TrainResult": "pipeline",
    "save_trained": "pipeline",
    "train_and_evaluate": "pipeline",
    "write_report": "report",
    "Split": "split",
    "random_split": "split",
    "split_baskets": "split",
    "time_split": "split",
    "TrainOutcome": "workflow",
    "TuneOutcome": "workflow",
    "WorkflowEvents": "workflow",
    "train_workflow": "workflow",
    "tune_workflow": "workflow",
}

__all__ = [
    "Queries",
    "Split",
    "TrainOutcome",
    "TrainResult",
    "TuneOutcome",
    "WorkflowEvents",
    "evaluate",
    "make_queries",
    "metrics_from_ranks",
    "miner_parameters",
    "random_split",
    "save_model",
    "save_trained",
    "split_baskets",
    "time_split",
    "train_and_evaluate",
    "train_workflow",
    "tune_workflow",
    "write_report",
]

if TYPE_CHECKING:
    from basketry.training.artifact import miner_parameters, save_model
    from basketry.training.evaluate import Queries, evaluate, make_queries, metrics_from_ranks
    from basketry.training.pipeline import TrainResult, save_trained, train_and_evaluate
    from basketry.training.report import write_report
    from basketry.training.split import Split, random_split, split_baskets, time_split
    from basketry.training.workflow import (
        TrainOutcome,
        TuneOutcome,
        WorkflowEvents,
        train_workflow,
        tune_workflow,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
