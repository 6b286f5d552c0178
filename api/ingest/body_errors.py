"""The decoder's body-level errors, phrased once: 400 `invalid_body` and the 413s of its caps."""

from __future__ import annotations

from typing import Any

from api.errors import ApiError

__all__ = ["check_decoded_bytes", "check_event_count", "check_extra_keys", "invalid_body"]


def invalid_body(message: str, details: list[Any] | None = None) -> ApiError:
    """The contract's 400 for a body that is not valid JSON / NDJSON / Arrow."""
    return ApiError(400, "invalid_body", message, details=details)


def check_event_count(count: int, max_events: int) -> None:
    """Raise the contract's 413 when a body holds more than `max_events` events."""
    if count > max_events:
        raise ApiError(413, "too_many_events", f"{count} events in the body; at most {max_events} allowed")


def check_extra_keys(count: int, max_keys: int) -> None:
    """413 `too_many_attribute_keys` when a batch uses more than `max_keys` distinct extra field names."""
    if count > max_keys:
        raise ApiError(
            413,
            "too_many_attribute_keys",
            f"the batch uses {count} distinct extra field names (kept as attributes); at most {max_keys}"
            " allowed: split the batch",
        )


def check_decoded_bytes(size: int, max_bytes: int) -> None:
    """413 `payload_too_large` when an Arrow body's buffers would decode to more than `max_bytes`."""
    if size > max_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"the Arrow stream's buffers decoded would take more than {max_bytes} bytes",
        )
