"""basketry.serving: the recommendation API the shop calls (the application side).

It imports the ``model`` contract only, never the training side (an import-linter contract).

    from basketry.serving import Settings, create_app, serve
    app = create_app(Settings(model="models/retail"))   # an ASGI application
    serve(model="models/retail", port=8000)              # uvicorn, blocking
"""

from basketry.serving.app import create_app
from basketry.serving.server import serve
from basketry.serving.settings import Settings, SettingsError
from basketry.serving.state import ModelHolder, ModelRefError, resolve_model_ref

__all__ = [
    "ModelHolder",
    "ModelRefError",
    "Settings",
    "SettingsError",
    "create_app",
    "resolve_model_ref",
    "serve",
]
