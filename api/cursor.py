"""Opaque, tamper-evident keyset cursors for events and sessions.

A cursor is url-safe base64 of `payload || mac`, where the payload is compact JSON of the keyset
position, the order, and a fingerprint of the filter that produced it. The MAC (HMAC-SHA256, first
16 bytes) is keyed by a configurable secret; with none configured a fixed key still makes any edit
of the token detectable, and every replica accepts every other replica's cursors. Reusing a cursor
with other filters, another order or another resource is refused with 400 `invalid_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import astuple
from typing import Any, Final

from api.errors import ApiError
from storage.base import Cursor, EventFilter, Order, SessionFilter

__all__ = [
    "DEFAULT_KEY",
    "cursor_key",
    "decode_event_cursor",
    "decode_session_cursor",
    "encode_event_cursor",
    "encode_session_cursor",
    "fingerprint",
]

DEFAULT_KEY: Final = b"govtrack-cursor-v1"
_MAC_BYTES: Final = 16
_MAX_TOKEN_CHARS: Final = 2048
_VERSION: Final = 1


def fingerprint(flt: EventFilter | SessionFilter) -> str:
    """A short stable digest of a filter: two filters share it only if they select the same rows."""
    canonical = json.dumps([type(flt).__name__, *astuple(flt)], default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(body: dict[str, Any], key: bytes) -> str:
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload + _sign(payload, key)).decode().rstrip("=")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_cursor", message, details=[{"field": "cursor", "message": message}])


def _decode(token: str, key: bytes, kind: str, order: str, fp: str) -> list[Any]:
    """The position inside a verified token of `kind`, made for this order and filter."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise _invalid("cursor is too long")
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _invalid("cursor is not valid") from exc
    payload, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
    if len(blob) <= _MAC_BYTES or not hmac.compare_digest(mac, _sign(payload, key)):
        raise _invalid("cursor is not valid")
    body = json.loads(payload)
    if body.get("v") != _VERSION or body.get("k") != kind:
        raise _invalid("cursor belongs to another resource or version")
    if body.get("o") != order:
        raise _invalid("cursor was made for the other order")
    if body.get("f") != fp:
        raise _invalid("cursor was made for other filters")
    position: list[Any] = body["p"]
    return position


def encode_event_cursor(after: Cursor, order: Order, flt: EventFilter, key: bytes = DEFAULT_KEY) -> str:
    """The token a client sends back to get the rows after `after`."""
    body = {
        "v": _VERSION,
        "k": "events",
        "o": order,
        "f": fingerprint(flt),
        "p": [after.timestamp_us, after.event_id],
    }
    return _encode(body, key)


def decode_event_cursor(token: str, order: Order, flt: EventFilter, key: bytes = DEFAULT_KEY) -> Cursor:
    """The keyset position of a token; 400 `invalid_cursor` when forged, garbled or misapplied."""
    position = _decode(token, key, "events", order, fingerprint(flt))
    ts_us, event_id = position
    return Cursor(timestamp_us=int(ts_us), event_id=str(event_id))


def encode_session_cursor(
    after: tuple[dt.datetime, str], flt: SessionFilter, key: bytes = DEFAULT_KEY
) -> str:
    """The token for the sessions after (start_time, session_id)."""
    start, session_id = after
    micros = _to_micros(start)
    body = {"v": _VERSION, "k": "sessions", "o": "desc", "f": fingerprint(flt), "p": [micros, session_id]}
    return _encode(body, key)


def decode_session_cursor(
    token: str, flt: SessionFilter, key: bytes = DEFAULT_KEY
) -> tuple[dt.datetime, str]:
    """The (start_time, session_id) position of a sessions token."""
    micros, session_id = _decode(token, key, "sessions", "desc", fingerprint(flt))
    return _from_micros(int(micros)), str(session_id)


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _to_micros(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return (aware - _EPOCH) // dt.timedelta(microseconds=1)


def _from_micros(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def cursor_key(settings: object) -> bytes:
    """The MAC key: the settings' `cursor_secret` when configured, else the fixed default."""
    secret = getattr(settings, "cursor_secret", None)
    reveal = getattr(secret, "get_secret_value", None)
    if callable(reveal):
        secret = reveal()
    return str(secret).encode() if secret else DEFAULT_KEY
