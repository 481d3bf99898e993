"""The `basketry` command: the composition root that wires the data, mining, model and serving
packages together (the only package allowed to import both sides). One module per command
group (``mining``, ``train``, ``tune``, ``registry``, ``data``, ``pmml``, ``serve``, ``demo``),
the application in ``app``, and what they share: ``console``, ``errors`` (the failure funnel),
``options`` (declared once) and ``targets``. The workflows themselves live on the training side
(:mod:`basketry.training.workflow`): the CLI parses, calls and prints."""

from basketry.cli.app import app, main
from basketry.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INCONSISTENT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    KNOWN_ERRORS,
    describe_failure,
)
from basketry.cli.targets import check_target

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INCONSISTENT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "KNOWN_ERRORS",
    "app",
    "check_target",
    "describe_failure",
    "main",
]
