"""JSON and NDJSON bodies -> a list of decoded event objects and the body's batch id.

msgspec decodes the whole body in one C call (it rejects NaN/Infinity, invalid UTF-8 and lone
surrogates, which is what we want: those bodies are not JSON we can store).

Numbers keep their text as sent (the contract stores them as their JSON text): every literal with a
fraction or an exponent decodes to `msgspec.Raw` of its text (msgspec's `float_hook`, so the common
case costs nothing extra), integers to int, whose text is the literal's except for `-0` and for
integers past the interpreter's int/str digit limit (4300), which msgspec refuses. Those two are
rare, and are read by the exact path: the stdlib decoder with every number as `Raw`, then the same
strictness checks msgspec applies (no NaN, no lone surrogate, valid UTF-8). The decoder asks for it
(`exact=True`) when the fast path decoded an integer 0 where its text is kept and the body holds a
`-0` token; a huge integer sends the fast path there by itself.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from api.ingest.body_errors import invalid_body

__all__ = ["ParsedBody", "gc_paused", "may_hold_negative_zero", "parse_json", "parse_ndjson"]

_EVENTS_KEYS = ("events", "Events")
_BATCH_ID_KEYS = ("batch_id", "batchId", "BatchId")
#: RecursionError: msgspec's answer to nesting deeper than the interpreter's recursion limit.
#: ValueError covers the exact path's JSONDecodeError, UnicodeDecodeError and UnicodeEncodeError.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError)
_OUT_OF_RANGE: Final = "Integer value out of range"
#: `-0` as a number token: followed by what may follow a JSON value (a `-0` inside a string matches
#: too; that only costs the exact path).
_NEGATIVE_ZERO: Final = re.compile(rb"-0[\s,\]}]")

_msgspec_decode = msgspec.json.Decoder(float_hook=msgspec.Raw).decode


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off while one body is decoded, back on after (unless something else had it off).

    Every container decoded is a GC-tracked allocation, and the collections they trigger cost a body
    of small nested arrays 3-4x its decoding (measured: 64 vs 270 ns per byte for `[[[…]]]`), time a
    body spends on the event loop. The pause lasts one decode; nothing is freed late but cycles.
    The decoder holds it until the decoded objects are dropped (api/ingest/decoding.py): freed by
    reference counting before the GC is back, they never make it collect (re-enabling it with a
    thousand live events pending made the next allocation collect them: ~4 % of ingest CPU).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _decode(data: bytes) -> Any:
    with gc_paused():
        return _msgspec_decode(data)


def _decode_lines(lines: list[bytes]) -> list[Any]:
    with gc_paused():
        return list(map(_msgspec_decode, lines))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_stdlib_decode = json.JSONDecoder(
    parse_float=msgspec.Raw, parse_int=msgspec.Raw, parse_constant=_refuse_constant
).decode
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """Decoded events (not yet checked to be objects) and the body's batch id (unchecked)."""

    events: list[Any]
    batch_id: object


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {exc.start}"
    if isinstance(exc, UnicodeEncodeError):
        return "lone surrogate escape in a string"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _decode_exact(data: bytes) -> Any:
    """Every number as the `Raw` text it was sent as; refuses what msgspec refuses (see module doc)."""
    with gc_paused():
        value = _stdlib_decode(data.decode("utf-8"))
    _encode(value)  # raises UnicodeEncodeError on a lone surrogate, as msgspec's decoder would refuse it
    return value


def _decode_one(data: bytes, exact: bool) -> Any:
    """One JSON document; raises one of _DECODE_ERRORS."""
    if exact:
        return _decode_exact(data)
    try:
        return _decode(data)
    except msgspec.ValidationError as exc:
        if _OUT_OF_RANGE not in str(exc):
            raise
    return _decode_exact(data)


def may_hold_negative_zero(body: bytes) -> bool:
    """Whether the body may hold a `-0` number token (a linear scan; called only after an int 0 decoded)."""
    return _NEGATIVE_ZERO.search(body) is not None


def parse_json(body: bytes, *, exact: bool = False) -> ParsedBody:
    """`{"events": [...], "batch_id": ...}` or a bare array of events."""
    try:
        top = _decode_one(body, exact)
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


def parse_ndjson(body: bytes, *, exact: bool = False) -> ParsedBody:
    """One JSON value per line; blank lines ignored; a bad line fails the body with its line number.

    Lines are decoded one by one (not joined into one array) so that a value spanning lines, or two
    values on one line, can never pass. The usual body (no blank line) is decoded by one `map` in C;
    any failure re-runs the careful per-line loop, which skips blank lines and numbers the bad one.
    """
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not exact:
        try:
            return ParsedBody(_decode_lines(lines), None)
        except _DECODE_ERRORS:
            pass  # a blank line, a bad one or a huge integer: the careful pass below sorts them out
    events: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            events.append(_decode_one(line, exact))
        except _DECODE_ERRORS as exc:
            message = f"line {number} is not valid JSON: {_error_text(exc)}"
            raise invalid_body(message, [{"line": number, "message": _error_text(exc)}]) from None
    return ParsedBody(events, None)
