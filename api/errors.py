"""One domain error family for the HTTP face, and the one function that maps errors to responses.

Every 4xx/5xx body has the contract's shape:
`{"error": {"code", "message", "details"}, "request_id"}`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


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
