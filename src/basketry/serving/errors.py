"""The service's errors as the API states them, independent of the web framework.

An :class:`ApiError` becomes an ``ErrorResponse`` document with its status on both paths (the
framework's exception handlers, :mod:`basketry.serving.error_handlers`; the fast path,
:mod:`basketry.serving.fast_routes`).
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as an :class:`ErrorResponse` with a status code."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def no_model() -> ApiError:
    return ApiError(503, "no_model", "no model is loaded; see /readyz")
