"""The training side: split the data, mine the training part, evaluate on the test part with
the model contract's own scoring, save the model with its metrics; the train and tune
workflows (read, train or sweep, save, report, track, register: ``workflow.py``).

Imports the data and mining packages and the model contract; never the serving application.
"""

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
