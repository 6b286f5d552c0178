"""The decoder's body-level errors, phrased once: 400 `invalid_body` and 413 `too_many_events`."""

from __future__ import annotations

from typing import Any

from api.errors import ApiError

__all__ = ["check_event_count", "invalid_body"]


def invalid_body(message: str, details: list[Any] | None = None) -> ApiError:
    """The contract's 400 for a body that is not valid JSON / NDJSON / Arrow."""
    return ApiError(400, "invalid_body", message, details=details)


def check_event_count(count: int, max_events: int) -> None:
    """Raise the contract's 413 when a body holds more than `max_events` events."""
    if count > max_events:
        raise ApiError(413, "too_many_events", f"{count} events in the body; at most {max_events} allowed")
