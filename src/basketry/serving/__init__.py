"""basketry.serving: the recommendation API the shop calls (the application side).

It imports the ``model`` contract only, never the training side (an import-linter contract).

    from basketry.serving import Settings, create_app, serve
    app = create_app(Settings(model="models/retail"))   # an ASGI application
    serve(model="models/retail", port=8000)              # uvicorn, blocking

The names are imported on first use: ``from basketry.serving import Settings`` (the CLI) or
``import basketry.serving.service`` loads neither the web framework nor uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from basketry.serving.app import create_app
    from basketry.serving.server import serve
    from basketry.serving.settings import Settings, SettingsError
    from basketry.serving.state import ModelHolder, ModelRefError, resolve_model_ref

#: Each public name and the module that defines it.
_HOMES = {
    "ModelHolder": "basketry.serving.state",
    "ModelRefError": "basketry.serving.state",
    "Settings": "basketry.serving.settings",
    "SettingsError": "basketry.serving.settings",
    "create_app": "basketry.serving.app",
    "resolve_model_ref": "basketry.serving.state",
    "serve": "basketry.serving.server",
}

__all__ = ["ModelHolder", "ModelRefError", "Settings", "SettingsError", "create_app",
           "resolve_model_ref", "serve"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once
    return value
