"""Interactive API docs (Swagger UI at ``/docs``) that work on a closed network.

Litestar's Swagger UI page loads its JavaScript, CSS and favicon from a CDN by default, which an
intranet or this project's test machines cannot reach. The page here points at copies served by
the service itself, at ``/docs/assets/<file>``, taken from the ``swagger-ui-bundle-v2`` package
(Swagger UI 5.x, Apache-2.0, no dependencies; Swagger UI 4.x, as in the older
``swagger-ui-bundle`` package, cannot render the OpenAPI 3.1 document Litestar writes).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Annotated

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import Parameter

log = logging.getLogger("basketry.serving")

#: Where the assets are served; the page references them by these absolute paths.
ASSETS_PATH = "/docs/assets"

#: The files the page needs, with their media types (nothing else of the bundle is served).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def swagger_ui_dir() -> Path:
    """The folder of the packaged Swagger UI distribution."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def swagger_ui_version() -> tuple[int, ...]:
    """The packaged Swagger UI's version, from its folder name (``swagger-ui-5.31.0``).

    ``swagger-ui-bundle`` (a dependency of some other packages, Swagger UI 4) installs the same
    module as ``swagger-ui-bundle-v2``; whichever was installed last is the one found.
    """
    name = swagger_ui_dir().name.rpartition("-")[2]
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def check_swagger_ui() -> None:
    """Say so in the logs when the packaged Swagger UI cannot render OpenAPI 3.1."""
    try:
        version = swagger_ui_version()
    except ImportError:
        log.error("/docs cannot work: the swagger-ui-bundle-v2 package is not installed")
        return
    if version < (5,):
        log.error("/docs shows an error: the installed Swagger UI %s cannot render OpenAPI 3.1; "
                  "install swagger-ui-bundle-v2 (last)", ".".join(map(str, version)))


@cache
def _asset(name: str) -> bytes:
    return (swagger_ui_dir() / name).read_bytes()


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at the OpenAPI path's root, every asset from this service."""
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


def assets_route() -> HTTPRouteHandler:
    """``GET /docs/assets/{name}``: one of :data:`ASSETS`, read once and kept in memory."""

    @get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
    def docs_asset(name: Annotated[str, Parameter(description="An asset's file name.")]
                   ) -> Response[bytes]:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFoundException(f"no docs asset {name!r}")
        return Response(_asset(name), media_type=media_type,
                        headers={"cache-control": "public, max-age=86400"})

    return docs_asset
