"""The service's errors as the API states them, independent of the web framework.

An :class:`ApiError` becomes an ``ErrorResponse`` problem document with its status on both
paths (the framework's exception handlers, :mod:`basketry.serving.error_handlers`; the fast
path, :mod:`basketry.serving.fast_routes`), written by :func:`basketry.serving.encoding.problem`.
"""

from __future__ import annotations

#: The media type of every error answer (RFC 9457).
PROBLEM_JSON = "application/problem+json"

#: (field, message) of one invalid field; field None: the body as a whole.
FieldErrors = list[tuple[str | None, str]]


class ApiError(Exception):
    """An error answered as an :class:`ErrorResponse` with a status code; ``errors`` lists every
    invalid field when several were found (default: ``field`` and ``message`` alone)."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None,
                 errors: FieldErrors | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field
        self.errors = errors


def no_model() -> ApiError:
    return ApiError(503, "no_model", "no model is loaded; see /readyz")
