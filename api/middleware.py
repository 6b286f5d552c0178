"""Pure ASGI middleware: request id, one access log line per request, last-resort 500s.

Pure ASGI (not BaseHTTPMiddleware) so streamed responses pass through untouched: only the
`http.response.start` message is looked at, to add `X-Request-ID` and note the status.

The access log line says who (the key id the auth dependency recorded, never the key), what
(method, path) and the status. While the app shuts down (`AppState.draining`) every request but
/live is answered 503 `shutting_down` with Retry-After, before any route runs.
"""

from __future__ import annotations

import time
from typing import Final

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import DEFAULT_RETRY_AFTER_S, error_response, unhandled_error_response
from api.logging import REQUEST_ID_HEADER, get_logger, new_request_id, sanitize_request_id, set_request_id

__all__ = ["RequestContextMiddleware"]

access_log = get_logger("govtrack.access")
_QUIET_PATHS: Final = frozenset({"/live", "/ready"})
_OPEN_WHILE_DRAINING: Final = frozenset({"/live"})


def _draining_retry_after(scope: Scope) -> int | None:
    """Retry-After seconds when the app is shutting down, else None."""
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "govtrack", None)
    if state is None or not getattr(state, "draining", False):
        return None
    return int(getattr(state.settings, "retry_after_s", DEFAULT_RETRY_AFTER_S))


class RequestContextMiddleware:
    """Assign the request id, bind it for logging, echo it, log the request once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection; non-HTTP scopes pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = sanitize_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()
        set_request_id(scope, request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            retry_after = _draining_retry_after(scope)
            if retry_after is not None and scope.get("path") not in _OPEN_WHILE_DRAINING:
                refusal = error_response(
                    request_id,
                    503,
                    "shutting_down",
                    "the service is shutting down",
                    headers={"Retry-After": str(retry_after)},
                )
                await refusal(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the response has started: nothing sane can be sent any more
                raise
            await unhandled_error_response(exc, request_id)(scope, receive, send_with_id)
        finally:
            self._log(scope, status, started)
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        path = scope.get("path", "")
        emit = access_log.debug if path in _QUIET_PATHS and status == 200 else access_log.info
        principal = (scope.get("state") or {}).get("principal")
        emit(
            "request",
            method=scope.get("method"),
            path=path,
            status=status,
            principal=principal,
            duration_ms=duration_ms,
        )
