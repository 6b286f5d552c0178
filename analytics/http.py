"""The HTTP plumbing of the analysts' client: the API's error as an exception, and bounded retries.

An answer of 429 (overloaded, too many large reads) or 503 (store unavailable, shutting down) is
the server asking to be called again later, and it says when in `Retry-After`. `RetryPolicy`
waits that long (capped, so a misbehaving proxy cannot park a notebook for an hour), a bounded
number of times, then gives up with the last answer as a `GovtrackError`. Every other 4xx/5xx is
raised at once: retrying a bad request cannot make it good.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

__all__ = ["RETRYABLE", "GovtrackError", "RetryPolicy", "error_from", "retry_after_s"]

#: Statuses the server answers when the request may succeed later, unchanged.
RETRYABLE: Final = frozenset({429, 503})


class GovtrackError(RuntimeError):
    """An error answer of the API in the contract's shape.

    Attributes:
        status: the HTTP status (400 invalid query, 401/403 key, 404, 429 overloaded, ...).
        code: the contract's machine code (`invalid_query`, `not_found`, `too_many_large_reads`, ...).
        message: the server's human-readable message.
        details: per-field or per-item details (a list, often empty).
        request_id: the `X-Request-ID` of the request, to find it in the server's log.
        retry_after_s: the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[Any] | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        suffix = f" (request {request_id})" if request_id else ""
        super().__init__(f"{status} {code}: {message}{suffix}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.request_id = request_id
        self.retry_after_s = retry_after_s


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def error_from(response: httpx.Response) -> GovtrackError:
    """The exception for an error answer (the body must have been read)."""
    request_id = response.headers.get("x-request-id")
    code, message, details = "http_error", response.text[:200], None
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
        details = list(error.get("details") or [])
        request_id = str(body.get("request_id") or request_id or "") or None
    except (ValueError, KeyError, TypeError):
        pass
    return GovtrackError(
        response.status_code,
        code,
        message,
        details=details,
        request_id=request_id,
        retry_after_s=retry_after_s(response),
    )


#: Called before each wait with the error that caused it and the seconds about to be slept.
RetryHook = Callable[[GovtrackError, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How 429/503 answers are retried.

    Attributes:
        max_retries: retries after the first attempt (0: never retry).
        max_wait_s: cap on one wait, whatever Retry-After says.
        backoff_s: the first wait when the server sent no Retry-After (doubling per retry).
        on_retry: called before each wait (for logging, or a test's hand on the server).
        sleep: how to wait (time.sleep).
    """

    max_retries: int = 5
    max_wait_s: float = 30.0
    backoff_s: float = 0.5
    on_retry: RetryHook | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def wait_for(self, error: GovtrackError, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): Retry-After, else backoff, capped."""
        wanted = error.retry_after_s if error.retry_after_s is not None else self.backoff_s * 2**attempt
        return min(wanted, self.max_wait_s)

    def call(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """`send()` until it is not a retryable error or retries run out; raises on any error answer.

        `send` returns a response whose body has been read.
        """
        attempt = 0
        while True:
            response = send()
            if response.status_code < 400:
                return response
            error = error_from(response)
            if response.status_code not in RETRYABLE or attempt >= self.max_retries:
                raise error
            self.pause(error, attempt)
            attempt += 1

    def pause(self, error: GovtrackError, attempt: int) -> None:
        """Tell the hook, then wait before retry number `attempt`."""
        wait = self.wait_for(error, attempt)
        if self.on_retry is not None:
            self.on_retry(error, wait)
        self.sleep(wait)
