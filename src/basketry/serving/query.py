"""Query parameters as strict as bodies: a ``/v1`` endpoint refuses a parameter it does not
take (422 ``invalid_request`` naming it), as it refuses an unknown body field, instead of
ignoring it silently (``?K=3`` or ``?limit=3`` for ``?k=3``; ``?k=3`` on ``POST
/v1/recommendations``, where ``k`` belongs in the body).

What an endpoint takes is what its handler declares (its signature's parameters, less the path's
and the framework's own), so a new parameter needs nothing here. ``/v1/monitoring/`` checks
its own parameters (422 ``invalid_parameter``); the operations endpoints (``/healthz``,
``/readyz``, ``/metrics``) and the pages are left alone: probes and scrapers add their own.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from basketry.serving.errors import ApiError

#: Handler parameters that are the framework's, never the query's.
_FRAMEWORK = frozenset({"request", "data", "scope", "state", "headers", "cookies", "query",
                        "socket", "body"})

#: The key of the parameters a handler takes, in its ``opt``.
_TAKEN = "basketry.query_taken"


def known_query_only(connection: ASGIConnection[Any, Any, Any, Any],
                     handler: BaseRouteHandler) -> None:
    """Litestar guard (application-wide): the ``/v1`` endpoints refuse unknown parameters.

    The fast path answers no request with a query string: such a request goes to the
    framework, where this refuses it with the same document.
    """
    path: str = connection.scope["path"]
    if not path.startswith("/v1/") or path.startswith("/v1/monitoring/"):
        return
    query = connection.query_params
    if not query:
        return
    taken = handler.opt.get(_TAKEN)
    if taken is None:  # worked out once per handler, kept with it
        taken = handler.opt[_TAKEN] = frozenset(
            handler.parsed_fn_signature.parameters) - _FRAMEWORK
    taken -= connection.path_params.keys()
    unknown = [name for name in dict.fromkeys(query) if name not in taken]
    if unknown:
        known = f"known: {', '.join(sorted(taken))}" if taken else "this endpoint takes none"
        errors: list[tuple[str | None, str]] = [
            (name, f"unknown query parameter `{name}`; {known}") for name in unknown]
        raise ApiError(422, "invalid_request", errors[0][1], unknown[0], errors)
