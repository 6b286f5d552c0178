"""JSON and NDJSON bodies -> a list of decoded event objects, their source sizes, and the body's batch id.

msgspec decodes the whole body in one C call (it rejects NaN/Infinity, invalid UTF-8 and lone
surrogates, which is what we want: those bodies are not JSON we can store). Per-event source sizes
are measured only when the body is larger than one event may be, by a second, cheap `Raw` pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from api.body_errors import invalid_body
from storage.schema import MAX_EVENT_BYTES

__all__ = ["ParsedBody", "parse_json", "parse_ndjson"]

_EVENTS_KEYS = ("events", "Events")
_BATCH_ID_KEYS = ("batch_id", "batchId", "BatchId")
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)

_decode = msgspec.json.Decoder().decode
_decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """Decoded events (not yet checked to be objects), source bytes per event or None, body batch id."""

    events: list[Any]
    sizes: list[int] | None
    batch_id: object


def _error_text(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {exc.start}"
    return str(exc)


def parse_json(body: bytes) -> ParsedBody:
    """`{"events": [...], "batch_id": ...}` or a bare array of events."""
    try:
        top = _decode(body)
    except _DECODE_ERRORS as exc:
        raise invalid_body(f"body is not valid JSON: {_error_text(exc)}") from None
    if isinstance(top, list):
        sizes = _raw_sizes(body, None) if len(body) > MAX_EVENT_BYTES else None
        return ParsedBody(top, sizes, None)
    if not isinstance(top, dict):
        raise invalid_body('expected {"events": [...]} or an array of events')
    events_key = next((k for k in _EVENTS_KEYS if k in top), None)
    if events_key is None or not isinstance(top[events_key], list):
        raise invalid_body('expected {"events": [...]} or an array of events')
    batch_id = next((top[k] for k in _BATCH_ID_KEYS if k in top), None)
    sizes = _raw_sizes(body, events_key) if len(body) > MAX_EVENT_BYTES else None
    return ParsedBody(top[events_key], sizes, batch_id)


def _raw_sizes(body: bytes, events_key: str | None) -> list[int]:
    """Source size of each event in bytes (the body is already known to be valid JSON)."""
    raws = (
        _decode_raw_list(body)
        if events_key is None
        else _decode_raw_list(_decode_raw_object(body)[events_key])
    )
    return [len(raw) for raw in raws]


def parse_ndjson(body: bytes) -> ParsedBody:
    """One JSON value per line; blank lines ignored; a bad line fails the body with its line number."""
    events: list[Any] = []
    sizes: list[int] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            events.append(_decode(line))
        except _DECODE_ERRORS as exc:
            message = f"line {number} is not valid JSON: {_error_text(exc)}"
            raise invalid_body(message, [{"line": number, "message": _error_text(exc)}]) from None
        sizes.append(len(line))
    return ParsedBody(events, sizes, None)
