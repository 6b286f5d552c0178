"""JSON and NDJSON bodies -> a list of decoded event objects, their source sizes, and the body's batch id.

msgspec decodes the whole body in one C call (it rejects NaN/Infinity, invalid UTF-8 and lone
surrogates, which is what we want: those bodies are not JSON we can store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from api.ingest.body_errors import invalid_body

__all__ = ["ParsedBody", "parse_json", "parse_ndjson"]

_EVENTS_KEYS = ("events", "Events")
_BATCH_ID_KEYS = ("batch_id", "batchId", "BatchId")
#: RecursionError: msgspec's answer to nesting deeper than the interpreter's recursion limit.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """Decoded events (not yet checked to be objects) and the body's batch id (unchecked)."""

    events: list[Any]
    batch_id: object


def _error_text(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {exc.start}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def parse_json(body: bytes) -> ParsedBody:
    """`{"events": [...], "batch_id": ...}` or a bare array of events."""
    try:
        top = _decode(body)
    except _DECODE_ERRORS as exc:
        raise invalid_body(f"body is not valid JSON: {_error_text(exc)}") from None
    if isinstance(top, list):
        return ParsedBody(top, None)
    if not isinstance(top, dict):
        raise invalid_body('expected {"events": [...]} or an array of events')
    events_key = next((k for k in _EVENTS_KEYS if k in top), None)
    if events_key is None or not isinstance(top[events_key], list):
        raise invalid_body('expected {"events": [...]} or an array of events')
    batch_id = next((top[k] for k in _BATCH_ID_KEYS if k in top), None)
    return ParsedBody(top[events_key], batch_id)


def parse_ndjson(body: bytes) -> ParsedBody:
    """One JSON value per line; blank lines ignored; a bad line fails the body with its line number.

    Lines are decoded one by one (not joined into one array) so that a value spanning lines, or two
    values on one line, can never pass. The usual body (no blank line) is decoded by one `map` in C;
    any failure re-runs the careful per-line loop, which skips blank lines and numbers the bad one.
    """
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    try:
        return ParsedBody(list(map(_decode, lines)), None)
    except _DECODE_ERRORS:
        pass  # a blank line or a bad one: the careful pass below skips the one, names the other
    events: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            events.append(_decode(line))
        except _DECODE_ERRORS as exc:
            message = f"line {number} is not valid JSON: {_error_text(exc)}"
            raise invalid_body(message, [{"line": number, "message": _error_text(exc)}]) from None
    return ParsedBody(events, None)
