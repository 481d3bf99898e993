"""The training side: turn mined rules into a model artifact (and, later, evaluate and register).

Imports the data and mining packages and the model contract; never the serving application.
"""

from basketry.training.artifact import miner_parameters, save_model

__all__ = ["miner_parameters", "save_model"]
