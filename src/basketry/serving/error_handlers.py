"""The framework's errors as ``ErrorResponse`` documents: Litestar's exception handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from basketry.serving import schemas as S
from basketry.serving.contracts import CLIENT_CLOSED, CLIENT_LEFT, REQUEST_ID
from basketry.serving.decoding import split_validation_message
from basketry.serving.errors import ApiError

log = logging.getLogger("basketry.serving")


def request_id(request: Request) -> str:
    return request.scope.get(REQUEST_ID, "")  # type: ignore[call-overload, no-any-return]


def error_response(request_id: str, status: int, error: str, message: str,
                   field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response[S.ErrorResponse]:
    return Response(
        S.ErrorResponse(error=error, message=message, field=field, request_id=request_id),
        status_code=status, headers=headers,
    )


def on_api_error(request: Request, exc: ApiError) -> Response[S.ErrorResponse]:
    return error_response(request_id(request), exc.status, exc.error, exc.message, exc.field)


def on_validation(request: Request, exc: ValidationException) -> Response[S.ErrorResponse]:
    rid = request_id(request)
    detail = str(exc.detail)
    extra = exc.extra if isinstance(exc.extra, list) else []
    message = detail
    field = None
    for entry in extra:
        if isinstance(entry, dict):
            message, field = split_validation_message(str(entry.get("message") or detail))
            key = entry.get("key")
            if entry.get("source") in ("query", "path") or (
                    field is None and key and key != "data"):
                field = str(key)
            break
    lowered = message.lower()
    if "utf-8" in lowered or "malformed" in lowered or "invalid json" in lowered or (
            "json" in lowered and "decode" in lowered) or "truncated" in lowered:
        return error_response(rid, 400, "invalid_body", f"the body is not valid UTF-8 JSON: "
                              f"{message}")
    return error_response(rid, 422, "invalid_request", message, field)


def on_undecodable(request: Request, exc: UnicodeDecodeError) -> Response[S.ErrorResponse]:
    return error_response(request_id(request), 400, "invalid_body",
                          f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}")


def on_internal(request: Request, exc: Exception) -> Response[S.ErrorResponse]:
    rid = request_id(request)
    log.exception("unhandled error", extra={"request_id": rid})
    return error_response(rid, 500, "server_error", "internal error")


def exception_handlers(max_body_bytes: int) -> dict[Any, Callable[..., Any]]:
    """Litestar's ``exception_handlers``: every error is an ``ErrorResponse``."""

    def on_http(request: Request, exc: HTTPException) -> Response[S.ErrorResponse]:
        rid = request_id(request)
        status = exc.status_code
        if request.scope.get(CLIENT_LEFT):  # nobody to answer, and not the server's fault
            return error_response(rid, CLIENT_CLOSED, "client_closed", "the client left")
        if status == 413:
            return error_response(rid, 413, "body_too_large",
                                  f"the body is larger than {max_body_bytes} bytes")
        if status == 400:
            return error_response(rid, 400, "invalid_body",
                                  f"the body is not valid JSON: {exc.detail}")
        if status >= 500:
            log.error("server error", extra={"request_id": rid, "detail": str(exc.detail)})
            return error_response(rid, status, "server_error", "internal error")
        # e.g. the Allow header of a 405
        return error_response(rid, status, "http_error", str(exc.detail), headers=exc.headers)

    return {ApiError: on_api_error, ValidationException: on_validation,
            UnicodeDecodeError: on_undecodable, HTTPException: on_http,
            404: on_http, 405: on_http, Exception: on_internal}
