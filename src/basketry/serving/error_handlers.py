"""The framework's errors as ``ErrorResponse`` problem documents (RFC 9457): Litestar's
exception handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.utils.scope.state import ScopeState

from basketry.serving import schemas as S
from basketry.serving.contracts import CLIENT_CLOSED, CLIENT_LEFT, REQUEST_ID
from basketry.serving.decoding import decode_body, split_validation_message, undecodable_body
from basketry.serving.encoding import problem
from basketry.serving.errors import PROBLEM_JSON, ApiError, FieldErrors

log = logging.getLogger("basketry.serving")


def request_id(request: Request) -> str:
    return request.scope.get(REQUEST_ID, "")  # type: ignore[call-overload, no-any-return]


def error_response(request_id: str, status: int, error: str, message: str,
                   field: str | None = None, headers: dict[str, str] | None = None,
                   errors: FieldErrors | None = None) -> Response[S.ErrorResponse]:
    return Response(problem(request_id, status, error, message, field, errors),
                    status_code=status, headers=headers, media_type=PROBLEM_JSON)


def on_api_error(request: Request, exc: ApiError) -> Response[S.ErrorResponse]:
    return error_response(request_id(request), exc.status, exc.error, exc.message, exc.field,
                          errors=exc.errors)


def read_body(request: Request) -> bytes | None:
    """The request's body when the framework has read it (it keeps it in the scope)."""
    body = ScopeState.from_scope(request.scope).body
    return body if isinstance(body, bytes) else None


def refuse_as_basketry(request: Request, strict: Mapping[str, Callable[[bytes], Any]]
                       ) -> Response[S.ErrorResponse] | None:
    """The answer to a body the framework refused, as basketry's decoders refuse it: with
    ``strict`` (the strict body decoders by path, so that the framework refuses a body as the
    fast path does, byte for byte), else a body that is not JSON as such (the framework's
    decoder checks types before syntax); None when the body was not read or is JSON."""
    body = read_body(request)
    if body is None:
        return None
    decode = strict.get(request.scope["path"])
    if decode is not None:
        try:
            decode_body(decode, body)
        except ApiError as refused:
            return on_api_error(request, refused)
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as bad:
        return error_response(request_id(request), 400, "invalid_body",
                              undecodable_body(body, bad))
    return None


def on_validation_with(strict: Mapping[str, Callable[[bytes], Any]]
                       ) -> Callable[[Request, ValidationException], Response[S.ErrorResponse]]:
    """The handler of the framework's validation errors (``strict``: see
    :func:`refuse_as_basketry`)."""

    def on_validation(request: Request, exc: ValidationException) -> Response[S.ErrorResponse]:
        rid = request_id(request)
        refused = refuse_as_basketry(request, strict)
        if refused is not None:
            return refused
        detail = str(exc.detail)
        found: FieldErrors = []
        for entry in exc.extra if isinstance(exc.extra, list) else []:
            if isinstance(entry, dict):
                message, field = split_validation_message(str(entry.get("message") or detail))
                key = entry.get("key")
                if entry.get("source") in ("query", "path") or (
                        field is None and key and key != "data"):
                    field = str(key)
                found.append((field, message))
        field, message = found[0] if found else (None, detail)
        lowered = message.lower()
        if "utf-8" in lowered or "malformed" in lowered or "invalid json" in lowered or (
                "json" in lowered and "decode" in lowered) or "truncated" in lowered:
            return error_response(rid, 400, "invalid_body", f"the body is not valid UTF-8 "
                                  f"JSON: {message}")
        return error_response(rid, 422, "invalid_request", message, field,
                              errors=found or None)

    return on_validation


def on_undecodable(request: Request, exc: UnicodeDecodeError) -> Response[S.ErrorResponse]:
    return error_response(request_id(request), 400, "invalid_body",
                          f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}")


def on_internal(request: Request, exc: Exception) -> Response[S.ErrorResponse]:
    rid = request_id(request)
    log.exception("unhandled error", extra={"request_id": rid})
    return error_response(rid, 500, "server_error", "internal error")


def exception_handlers(max_body_bytes: int, strict: Mapping[str, Callable[[bytes], Any]]
                       ) -> dict[Any, Callable[..., Any]]:
    """Litestar's ``exception_handlers``: every error is an ``ErrorResponse`` problem document
    (``strict``: the strict body decoders by path, see :func:`on_validation_with`)."""

    def on_http(request: Request, exc: HTTPException) -> Response[S.ErrorResponse]:
        rid = request_id(request)
        status = exc.status_code
        if request.scope.get(CLIENT_LEFT):  # nobody to answer, and not the server's fault
            return error_response(rid, CLIENT_CLOSED, "client_closed", "the client left")
        if status == 413:
            return error_response(rid, 413, "body_too_large",
                                  f"the body is larger than {max_body_bytes} bytes")
        if status == 400:
            refused = refuse_as_basketry(request, strict)
            if refused is not None:
                return refused
            return error_response(rid, 400, "invalid_body",
                                  f"the body is not valid JSON: {exc.detail}")
        if status >= 500:
            log.error("server error", extra={"request_id": rid, "detail": str(exc.detail)})
            return error_response(rid, status, "server_error", "internal error")
        # e.g. the Allow header of a 405
        return error_response(rid, status, "http_error", str(exc.detail), headers=exc.headers)

    return {ApiError: on_api_error, ValidationException: on_validation_with(strict),
            UnicodeDecodeError: on_undecodable, HTTPException: on_http,
            404: on_http, 405: on_http, Exception: on_internal}
