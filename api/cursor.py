"""Opaque, tamper-evident keyset cursors for events and sessions.

A cursor is url-safe base64 of `payload || mac`, where the payload is compact JSON of the keyset
position, the order, and a fingerprint of the filter that produced it. The MAC (HMAC-SHA256, first
16 bytes) is keyed by the deployment's secret, `GOVTRACK_CURSOR_SECRET` (setting `cursor_secret`):
give every replica the same value and each accepts the others' cursors, across restarts too. With
none configured the key is random per process (a fixed default would let anyone who reads the
source mint tokens): cursors then stop working when the process restarts, or on another replica,
and a client that gets 400 `invalid_cursor` restarts its paging from the first page.

A verified token is still untrusted input: its payload is checked strictly (a JSON object of the
expected version, kind, order and filter; a position of exactly [microseconds, id] with the
microseconds an integer inside the same 1970-2200 range the filters clamp to and the id a short
string), so even a correctly signed absurd token is a 400 `invalid_cursor`, never a 500. Reusing a
cursor with other filters, another order or another resource is refused the same way.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import json
import secrets
from dataclasses import astuple
from typing import Any, Final

from api.errors import ApiError
from storage.base import Cursor, EventFilter, Order, SessionFilter

__all__ = [
    "MAX_POSITION_ID_CHARS",
    "cursor_key",
    "decode_cell_cursor",
    "decode_event_cursor",
    "decode_session_cursor",
    "encode_cell_cursor",
    "encode_event_cursor",
    "encode_session_cursor",
    "fingerprint",
    "process_key",
]

_MAC_BYTES: Final = 16
_MAX_TOKEN_CHARS: Final = 2048
_VERSION: Final = 1
_KEY_CONTEXT: Final = b"govtrack-cursor-v1\x00"
#: Longest id a position may carry: an event id is a 36-char UUID, a session id at most 128 chars.
MAX_POSITION_ID_CHARS: Final = 128

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The range the read filters clamp their bounds to (api.filters): every engine can bind it, and
# every stored event (2000 to now + 24 h) lies inside it.
_LOWEST_US: Final = 0
_HIGHEST_US: Final = (dt.datetime(2200, 1, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def fingerprint(flt: EventFilter | SessionFilter) -> str:
    """A short stable digest of a filter: two filters share it only if they select the same rows."""
    canonical = json.dumps([type(flt).__name__, *astuple(flt)], default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@functools.cache
def process_key() -> bytes:
    """The key used when no cursor secret is configured: random, made once per process."""
    return secrets.token_bytes(32)


def cursor_key(settings: object) -> bytes:
    """The MAC key: derived from the settings' `cursor_secret` when set, else `process_key()`."""
    secret = getattr(settings, "cursor_secret", None)
    reveal = getattr(secret, "get_secret_value", None)
    if callable(reveal):
        secret = reveal()
    if not secret:
        return process_key()
    return hashlib.sha256(_KEY_CONTEXT + str(secret).encode()).digest()


def _sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(body: dict[str, Any], key: bytes) -> str:
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload + _sign(payload, key)).decode().rstrip("=")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_cursor", message, details=[{"field": "cursor", "message": message}])


def _verified_body(token: str, key: bytes) -> dict[str, Any]:
    """The payload of a token whose MAC checks out, if it is a JSON object."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise _invalid("cursor is too long")
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _invalid("cursor is not valid") from exc
    payload, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
    if len(blob) <= _MAC_BYTES or not hmac.compare_digest(mac, _sign(payload, key)):
        raise _invalid("cursor is not valid (or was made by another deployment or before a restart)")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _invalid("cursor is not valid") from exc
    if not isinstance(body, dict):
        raise _invalid("cursor is not valid")
    return body


def _position(value: object) -> tuple[int, str]:
    """[microseconds since 1970, id], both in range; anything else is a 400."""
    if not isinstance(value, list) or len(value) != 2:
        raise _invalid("cursor position is not valid")
    micros, ident = value
    if type(micros) is not int or not _LOWEST_US <= micros < _HIGHEST_US:
        raise _invalid("cursor position is not valid")
    if not isinstance(ident, str) or not 0 < len(ident) <= MAX_POSITION_ID_CHARS:
        raise _invalid("cursor position is not valid")
    return micros, ident


def _decode(token: str, key: bytes, kind: str, order: str, fp: str) -> tuple[int, str]:
    """The position inside a verified token of `kind`, made for this order and filter."""
    body = _verified_body(token, key)
    if body.get("v") != _VERSION or body.get("k") != kind:
        raise _invalid("cursor belongs to another resource or version")
    if body.get("o") != order:
        raise _invalid("cursor was made for the other order")
    if body.get("f") != fp:
        raise _invalid("cursor was made for other filters")
    return _position(body.get("p"))


def encode_event_cursor(after: Cursor, order: Order, flt: EventFilter, key: bytes) -> str:
    """The token a client sends back to get the rows after `after`."""
    body = {
        "v": _VERSION,
        "k": "events",
        "o": order,
        "f": fingerprint(flt),
        "p": [after.timestamp_us, after.event_id],
    }
    return _encode(body, key)


def decode_event_cursor(token: str, order: Order, flt: EventFilter, key: bytes) -> Cursor:
    """The keyset position of a token; 400 `invalid_cursor` when forged, garbled or misapplied."""
    ts_us, event_id = _decode(token, key, "events", order, fingerprint(flt))
    return Cursor(timestamp_us=ts_us, event_id=event_id)


def encode_session_cursor(after: tuple[dt.datetime, str], flt: SessionFilter, key: bytes) -> str:
    """The token for the sessions after (start_time, session_id)."""
    start, session_id = after
    micros = _to_micros(start)
    body = {"v": _VERSION, "k": "sessions", "o": "desc", "f": fingerprint(flt), "p": [micros, session_id]}
    return _encode(body, key)


def decode_session_cursor(token: str, flt: SessionFilter, key: bytes) -> tuple[dt.datetime, str]:
    """The (start_time, session_id) position of a sessions token."""
    micros, session_id = _decode(token, key, "sessions", "desc", fingerprint(flt))
    return _from_micros(micros), session_id


def _cells_fingerprint(workbook_name: str, at: dt.datetime) -> str:
    canonical = json.dumps(["cells", workbook_name, _to_micros(at)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cell_cursor(after: tuple[str, str], workbook_name: str, at: dt.datetime, key: bytes) -> str:
    """The token for a workbook's cells after (sheet_name, cell_address), bound to workbook and time."""
    body = {
        "v": _VERSION,
        "k": "cells",
        "o": "asc",
        "f": _cells_fingerprint(workbook_name, at),
        "p": list(after),
    }
    return _encode(body, key)


def decode_cell_cursor(token: str, workbook_name: str, at: dt.datetime, key: bytes) -> tuple[str, str]:
    """The (sheet_name, cell_address) position of a workbook-state token."""
    body = _verified_body(token, key)
    if body.get("v") != _VERSION or body.get("k") != "cells":
        raise _invalid("cursor belongs to another resource or version")
    if body.get("f") != _cells_fingerprint(workbook_name, at):
        raise _invalid("cursor was made for another workbook or time")
    position = body.get("p")
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(v, str) for v in position)):
        raise _invalid("cursor position is not valid")
    return position[0], position[1]


def _to_micros(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // dt.timedelta(microseconds=1)


def _from_micros(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)
