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

from api.columns import RawColumns
from api.normalize import normalize_event_type
from api.timestamps import FORMAT_MESSAGE, to_utc_micros
from storage.schema import MAX_FUTURE, MIN_TIMESTAMP, STRING_LIMITS, UTC_MICROS

__all__ = ["validate_columns"]

_UUID: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_REQUIRED: Final = ("timestamp", "event_type", "user_name")


def validate_columns(raw: RawColumns, *, now: dt.datetime) -> dict[str, pa.Array]:
    """Check and normalise every input field; problems are added to `raw.issues` (first one wins).

    Returns the stored form of each input field: event_id canonical (null where it must be derived),
    timestamp[us, UTC], event_type normalised, other fields as sent.
    """
    out = dict(raw.arrays)
    out["event_id"] = _event_ids(raw)
    for name in _REQUIRED:
        _flag(raw, name, np.asarray(raw.arrays[name].is_null()), "is required")
    out["timestamp"] = _timestamps(raw, now)
    for name, (low, high) in STRING_LIMITS.items():
        lengths = pc.utf8_length(raw.arrays[name])
        _flag(raw, name, _mask(pc.greater(lengths, high)), f"must be at most {high} characters")
        if low:
            _flag(raw, name, _mask(pc.less(lengths, low)), f"must be at least {low} character(s)")
    out["event_type"] = _event_types(raw)
    return out


def _mask(condition: pa.Array) -> np.ndarray:
    """A Boolean Arrow result as a numpy mask, null meaning False."""
    return np.asarray(condition.fill_null(False))


def _flag(raw: RawColumns, name: str, mask: np.ndarray, message: str) -> None:
    if mask.any():
        for index in np.flatnonzero(mask).tolist():
            raw.add_issue(index, name, message)


def _event_ids(raw: RawColumns) -> pa.Array:
    """Canonical lowercase hyphenated ids; other UUID spellings (braces, no hyphens) are accepted too."""
    ids = raw.arrays["event_id"]
    canonical = pc.match_substring_regex(ids, _UUID)
    odd = _mask(pc.invert(canonical))
    lowered = pc.utf8_lower(ids)
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
    _flag(
        raw, "timestamp", _mask(pc.less(parsed, pa.scalar(MIN_TIMESTAMP, UTC_MICROS))), "is before 2000-01-01"
    )
    _flag(raw, "timestamp", _mask(pc.greater(parsed, latest)), "is more than 24 hours in the future")
    return parsed


def _event_types(raw: RawColumns) -> pa.Array:
    """Normalise each distinct type once (dictionary-encode, map the dictionary, take)."""
    encoded = raw.arrays["event_type"].dictionary_encode()
    normalised = pa.array([normalize_event_type(t) for t in encoded.dictionary.to_pylist()], pa.string())
    result = normalised.take(encoded.indices)
    empty = _mask(pc.and_(pc.equal(pc.utf8_length(result), 0), raw.arrays["event_type"].is_valid()))
    _flag(raw, "event_type", empty, "must contain a letter or digit")
    return result
