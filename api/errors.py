"""One domain error family for the HTTP face, and the one module that maps errors to responses.

Every 4xx/5xx body has the contract's shape:
`{"error": {"code", "message", "details"}, "request_id"}`, and carries the `X-Request-ID` header.

Validation of the request by FastAPI: a bad query-string or path parameter is the caller asking
for something impossible, answered 400 `invalid_query` (the same code a store's InvalidQueryError
gets); a bad JSON body or header is 422 `validation_error`. Details are `[{"loc", "message"}]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import REQUEST_ID_HEADER, get_logger, request_id_of
from storage.errors import InvalidQueryError, StoreError, TransientStoreError

__all__ = ["ApiError", "error_response", "install_error_handlers", "unhandled_error_response"]

log = get_logger("govtrack.errors")

_HTTP_CODES: Final[dict[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}
DEFAULT_RETRY_AFTER_S: Final = 5


class ApiError(Exception):
    """An error with its HTTP status, a stable machine `code`, and optional per-item `details`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_response(
    request_id: str,
    status: int,
    code: str,
    message: str,
    *,
    details: Sequence[Any] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one place an error body is built."""
    body = {"error": {"code": code, "message": message, "details": list(details)}, "request_id": request_id}
    all_headers = dict(headers or {})
    if request_id:
        all_headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(body, status_code=status, headers=all_headers)


def unhandled_error_response(exc: BaseException, request_id: str) -> JSONResponse:
    """500 for anything unexpected; the traceback goes to the log, never to the client."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return error_response(request_id, 500, "internal_error", "internal server error")


def _retry_after(request: Request) -> str:
    state = getattr(request.app.state, "govtrack", None)
    settings = getattr(state, "settings", None)
    return str(getattr(settings, "retry_after_s", DEFAULT_RETRY_AFTER_S))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return error_response(
        request_id_of(request.scope),
        exc.status,
        exc.code,
        exc.message,
        details=exc.details,
        headers=exc.headers,
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(err.get("loc", ())), "message": str(err.get("msg", ""))} for err in exc.errors()]


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    details = _validation_details(exc)
    in_query = bool(details) and all(d["loc"][:1] in (["query"], ["path"]) for d in details)
    status, code = (400, "invalid_query") if in_query else (422, "validation_error")
    return error_response(request_id_of(request.scope), status, code, "request is invalid", details=details)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(
        request_id_of(request.scope), exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request_id_of(request.scope)
    if isinstance(exc, InvalidQueryError):
        return error_response(request_id, 400, "invalid_query", str(exc))
    if isinstance(exc, TransientStoreError):
        log.warning("store_unavailable", error=str(exc))
        headers = {"Retry-After": _retry_after(request)}
        return error_response(
            request_id, 503, "store_unavailable", "event store is unavailable", headers=headers
        )
    log.error("store_error", error=str(exc), exc_info=exc)
    return error_response(request_id, 500, "store_error", "event store failed")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error family to the contract's error body.

    Exceptions nobody handles are answered by `RequestContextMiddleware` via
    `unhandled_error_response`, inside the request-id middleware, so they carry the id as well.
    """
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(StoreError, _store_error)
