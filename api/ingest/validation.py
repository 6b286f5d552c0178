"""Vectorised per-event validation and normalisation of input columns (JSON and Arrow inputs alike).

Every rule is one or a few `pyarrow.compute` calls over the whole column; Python only touches the
indexes of events that actually fail, so a clean batch costs a fixed number of kernel calls per field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.ingest.columns import RawColumns
from api.ingest.normalize import normalize_event_type
from api.ingest.textscan import HEX, byte_lengths_of, byte_matrix
from api.ingest.timestamps import FORMAT_MESSAGE, to_utc_micros
from storage.schema import (
    INTEGER_INPUT_FIELDS,
    MAX_EVENT_BYTES,
    MAX_FUTURE,
    MAX_SESSION_SEQ,
    MIN_TIMESTAMP,
    STRING_LIMITS,
    UTC_MICROS,
)

__all__ = ["event_sizes", "validate_columns"]

_HYPHENS: Final = [8, 13, 18, 23]
_HEX_DIGITS: Final = [i for i in range(36) if i not in (8, 13, 18, 23)]
_REQUIRED: Final = ("timestamp", "event_type", "user_name")


def validate_columns(raw: RawColumns, *, now: dt.datetime) -> dict[str, pa.Array]:
    """Check and normalise every input field; problems are added to `raw.issues` (first one wins).

    Returns the stored form of each input field: event_id canonical (null where it must be derived),
    timestamp[us, UTC], event_type normalised, other fields as sent. The event size limit is checked
    on every event, whatever the body's size (a few kernels per column).
    """
    over = event_sizes(raw) > MAX_EVENT_BYTES
    _flag(raw, "event", over, f"event is larger than {MAX_EVENT_BYTES} bytes as compact JSON")
    out = dict(raw.arrays)
    out["event_id"] = _event_ids(raw)
    for name in _REQUIRED:
        _flag(raw, name, np.asarray(raw.arrays[name].is_null()), "is required")
    out["timestamp"] = _timestamps(raw, now)
    for name, (low, high) in STRING_LIMITS.items():
        _check_length(raw, name, low, high)
    out["event_type"] = _event_types(raw)
    for name in INTEGER_INPUT_FIELDS:
        _flag(
            raw, name, _mask(pc.less(raw.arrays[name], 0)), f"must be an integer from 0 to {MAX_SESSION_SEQ}"
        )
    return out


def event_sizes(raw: RawColumns) -> np.ndarray:
    """Each event's compact JSON size in bytes: values and attribute texts plus keys and punctuation.

    Exact for the compact UTF-8 encoding up to escapes inside strings (quotes, backslashes, control
    characters), which is close enough for a 128 KiB ceiling and costs a few kernels per column.
    """
    total = np.full(raw.length, 2, dtype=np.int64)
    for name, array in raw.arrays.items():
        text = array if pa.types.is_string(array.type) else array.cast(pa.string())
        _, length = byte_lengths_of(text)
        present = np.asarray(text.is_valid()) if text.null_count else True
        total += np.where(present, length + len(name) + 6, 0)
    attributes = raw.attributes
    offsets = np.asarray(attributes.offsets)
    if offsets[-1] == offsets[0]:
        return total
    keys, items = attributes.keys, attributes.items
    pair_sizes = byte_lengths_of(keys)[1] + byte_lengths_of(items)[1] + 6
    pair_sizes = np.append(pair_sizes[: offsets[-1]], 0)  # reduceat needs every start in range
    per_row: np.ndarray = np.add.reduceat(pair_sizes, offsets[:-1]) * (np.diff(offsets) > 0)
    total += per_row
    return total


def _check_length(raw: RawColumns, name: str, low: int, high: int) -> None:
    """Flag values outside [low, high] characters; characters are only counted when bytes could exceed.

    A value has at most as many characters as UTF-8 bytes and is empty exactly when it has no bytes,
    so the byte lengths (from the offsets, no kernel) settle the usual case.
    """
    array = raw.arrays[name]
    _, byte_lengths = byte_lengths_of(array)
    if len(byte_lengths) and byte_lengths.max() > high:
        lengths = pc.utf8_length(array)
        _flag(raw, name, _mask(pc.greater(lengths, high)), f"must be at most {high} characters")
    if low:
        too_short = pc.less(pc.utf8_length(array), low) if low > 1 else None
        mask = (
            _mask(too_short) if too_short is not None else (byte_lengths == 0) & np.asarray(array.is_valid())
        )
        _flag(raw, name, mask, f"must be at least {low} character(s)")


def _mask(condition: pa.Array) -> np.ndarray:
    """A Boolean Arrow result as a numpy mask, null meaning False."""
    return np.asarray(condition.fill_null(False))


def _flag(raw: RawColumns, name: str, mask: np.ndarray, message: str) -> None:
    if mask.any():
        for index in np.flatnonzero(mask).tolist():
            raw.add_issue(index, name, message)


def _event_ids(raw: RawColumns) -> pa.Array:
    """Canonical lowercase hyphenated ids; other UUID spellings (braces, no hyphens) are accepted too."""
    lowered = pc.utf8_lower(raw.arrays["event_id"])
    m, lengths = byte_matrix(lowered, 36)
    canonical = (
        (lengths == 36) & (m[:, _HYPHENS] == ord("-")).all(axis=1) & HEX[m[:, _HEX_DIGITS]].all(axis=1)
    )
    odd = np.asarray(lowered.is_valid()) & ~canonical
    if not odd.any():
        return lowered
    values = lowered.to_pylist()
    for index in np.flatnonzero(odd).tolist():
        values[index] = _parse_uuid(values[index])
        if values[index] is None:
            raw.add_issue(index, "event_id", "must be a UUID")
    return pa.array(values, pa.string())


def _parse_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _timestamps(raw: RawColumns, now: dt.datetime) -> pa.Array:
    parsed, bad = to_utc_micros(raw.arrays["timestamp"])
    _flag(raw, "timestamp", bad, FORMAT_MESSAGE)
    latest = pa.scalar(now.astimezone(dt.UTC) + MAX_FUTURE, UTC_MICROS)
    earliest = pa.scalar(MIN_TIMESTAMP, UTC_MICROS)
    bounds = pc.min_max(parsed)
    if bounds["min"].is_valid and bounds["min"].as_py() < MIN_TIMESTAMP:
        _flag(raw, "timestamp", _mask(pc.less(parsed, earliest)), "is before 2000-01-01")
    if bounds["max"].is_valid and bounds["max"].as_py() > latest.as_py():
        _flag(raw, "timestamp", _mask(pc.greater(parsed, latest)), "is more than 24 hours in the future")
    return parsed


def _event_types(raw: RawColumns) -> pa.Array:
    """Normalise each distinct type once (dictionary-encode, map the dictionary, take).

    A type over the length limit is already the event's error and is not normalised (null): a
    hostile 30 KB type costs a length check, never a regex pass.
    """
    encoded = raw.arrays["event_type"].dictionary_encode()
    high = STRING_LIMITS["event_type"][1]
    normalised = pa.array(
        [normalize_event_type(t) if len(t) <= high else None for t in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    result = normalised.take(encoded.indices)
    empty = _mask(pc.and_(pc.equal(pc.utf8_length(result), 0), raw.arrays["event_type"].is_valid()))
    _flag(raw, "event_type", empty, "must contain a letter or digit")
    return result
