"""The model version: a hash of what a model is, so that editing any of it is detected.

``model_version`` is the first 16 hex digits of the SHA-256 of the canonical JSON of
``{files, parameters, scoring, fingerprint}``. The files entry carries each data file's
SHA-256, so the version covers the tables too; the scoring object is covered because it
changes every answer. The writer derives it and the reader derives it again from the manifest
and refuses a manifest whose ``model_version`` differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def to_json_value(value: Any) -> Any:
    """``value`` as it reads back from the manifest's JSON (numpy scalars as numbers, other
    objects as strings), so the version the writer hashes is the one a reader recomputes."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    # numpy is imported lazily by what passes numpy values; duck-typing keeps this module light
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    return str(value)


def content_version(files: Any, parameters: Any, scoring: Any, fingerprint: Any) -> str:
    """The model version of a manifest with these fields (already JSON values)."""
    content = json.dumps(
        {"files": files, "parameters": parameters, "scoring": scoring or {},
         "fingerprint": fingerprint},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def manifest_version(manifest: dict[str, Any]) -> str:
    """The model version a manifest's content gives (compare with its ``model_version``)."""
    dataset = manifest.get("dataset")
    fingerprint = dataset.get("fingerprint") if isinstance(dataset, dict) else None
    return content_version(manifest.get("files"), manifest.get("parameters"),
                           manifest.get("scoring"), fingerprint)
