"""The model contract: the artifact format, loading with verification, and scoring a basket.

This package is what the training side and the serving application share. It imports nothing
else of basketry (an import-linter contract checks it), so either side can change freely as
long as the artifact format holds.

    from basketry.model import load_model
    model = load_model("models/retail")
    model.recommend(["85123A", "71053"], k=5)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from basketry.model.artifact import (
    Artifact,
    check_model_target,
    is_model_directory,
    items_table,
    read_artifact,
    read_manifest,
    validate_content,
    verify_files,
    write_model,
)
from basketry.model.errors import (
    ModelContentError,
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
    ScoringArgumentError,
)
from basketry.model.format import FORMAT_VERSION, RULES_SCHEMA
from basketry.model.scoring import (
    DEFAULT_SCORING,
    SCORING_METHODS,
    FiredRule,
    Ranked,
    Recommendation,
    Recommendations,
    RuleScorer,
    scoring_spec,
)


class Model(RuleScorer):
    """A verified model artifact, ready to score baskets."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.manifest: dict[str, Any] = artifact.manifest
        self.path: Path = artifact.path
        super().__init__(
            artifact.items,
            artifact.rules,
            n_baskets=int(self.manifest["counts"]["n_baskets"]),
            model_version=artifact.version,
            scoring=self.manifest.get("scoring") or None,
        )

    @property
    def version(self) -> str:
        return self.model_version


def load_model(path: str | os.PathLike[str], *, verify: bool = True) -> Model:
    """Load a model directory, verifying format version, checksums (``verify``) and content
    (always: ids, counts, measures, scoring, ``model_version``); ``ModelError`` if not."""
    return Model(read_artifact(path, verify=verify))


__all__ = [
    "DEFAULT_SCORING",
    "FORMAT_VERSION",
    "RULES_SCHEMA",
    "SCORING_METHODS",
    "Artifact",
    "FiredRule",
    "Model",
    "ModelContentError",
    "ModelError",
    "ModelFormatError",
    "ModelIntegrityError",
    "Ranked",
    "Recommendation",
    "Recommendations",
    "RuleScorer",
    "ScoringArgumentError",
    "check_model_target",
    "is_model_directory",
    "items_table",
    "load_model",
    "read_artifact",
    "read_manifest",
    "scoring_spec",
    "validate_content",
    "verify_files",
    "write_model",
]
