"""The model version: a hash of what a model is, so that editing any of it is detected.

``model_version`` is the first 16 hex digits of the SHA-256 of the canonical JSON of
``{counts, files, parameters, scoring, fingerprint}``: the fields the manifest's ``version_of``
lists (without it, as models were written before it existed, the same without ``counts``).
The files entry carries each data file's SHA-256, so the version covers the tables too; the
scoring object and ``n_baskets`` are covered because they change answers. The writer derives
it and the reader derives it again from the manifest and refuses a manifest whose
``model_version`` differs.
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


#: What the version of a model written before ``version_of`` existed covers.
LEGACY_VERSION_OF = ("files", "fingerprint", "parameters", "scoring")
#: What the version of a model written now covers: ``counts`` too (``n_baskets`` changes the
#: fallback scores). Listed in the manifest's ``version_of``, so older models keep verifying
#: with the recipe they were written with, and older readers ignore the field.
VERSION_OF = ("counts", "files", "fingerprint", "parameters", "scoring")


def _covered(manifest: dict[str, Any], key: str) -> Any:
    if key == "fingerprint":
        dataset = manifest.get("dataset")
        return dataset.get("fingerprint") if isinstance(dataset, dict) else None
    if key == "scoring":
        return manifest.get("scoring") or {}
    return manifest.get(key)


def content_version(manifest: dict[str, Any], version_of: tuple[str, ...] | list[str]) -> str:
    """The model version of a manifest's fields named by ``version_of`` (JSON values)."""
    content = json.dumps({key: _covered(manifest, key) for key in version_of},
                         sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def version_of(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The fields a manifest's version covers (``ValueError`` if its ``version_of`` is not a
    list of known fields holding at least the legacy ones)."""
    listed = manifest.get("version_of")
    if listed is None:
        return LEGACY_VERSION_OF
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed) \
            or not set(LEGACY_VERSION_OF) <= set(listed) <= set(VERSION_OF) \
            or len(set(listed)) != len(listed):
        raise ValueError(f"field 'version_of' must list {list(VERSION_OF)} or "
                         f"{list(LEGACY_VERSION_OF)}, got {listed!r}")
    return tuple(listed)


def manifest_version(manifest: dict[str, Any]) -> str:
    """The model version a manifest's content gives (compare with its ``model_version``)."""
    return content_version(manifest, version_of(manifest))
