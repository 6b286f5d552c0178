"""ISO-8601 text -> timestamp[us, UTC], vectorised in Arrow, with an exact per-value fallback.

The layout is checked on gathered bytes in numpy (api/ingest/textscan.py), the calendar by Arrow's parser.

Accepted: `YYYY-MM-DDThh:mm:ss[.f{1,7}][Z|±hh:mm]` (`T` may be a space); no offset
means UTC; fractional digits beyond microseconds (the .NET 7th digit) are truncated. Arrow's ISO
parser does the calendar work for the whole column at once; only a column holding an impossible
value (30 February, year 3000 beyond the ns range, 24:00) takes the per-value path, which finds
exactly which events are wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.ingest.textscan import DIGIT, byte_lengths_of
from storage.schema import UTC_MICROS

__all__ = ["FORMAT_MESSAGE", "parse_iso_column", "to_utc_micros"]

FORMAT_MESSAGE: Final = "must be an ISO-8601 date-time like 2025-06-03T10:06:01.0975551+02:00"

_WIDTH: Final = 33  # YYYY-MM-DDThh:mm:ss.fffffff+hh:mm
_FRACTION: Final = np.arange(20, 27)  # positions of the 1-7 fraction digits after the "."
_HEAD: Final = np.arange(27)
_TAIL: Final = np.arange(1, 7)
_DATE_DIGITS: Final = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_DATE_PUNCT: Final = [4, 7, 13, 16]
_PUNCT: Final = np.array([ord("-"), ord("-"), ord(":"), ord(":")], dtype=np.uint8)
_ISO_GROUPS: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|([+-])(\d{2}):(\d{2}))?"
)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS_UTC: Final = pa.timestamp("ns", tz="UTC")


def parse_iso_column(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Parse a string column; returns (timestamp[us, UTC] with nulls, bool mask of unparseable values).

    Null input stays null and is not flagged (the caller reports missing values separately).
    """
    well_formed, zoneless = _shape(texts)
    candidates = texts
    if zoneless.any():
        candidates = pc.if_else(pa.array(zoneless), pc.binary_join_element_wise(texts, "Z", ""), texts)
    if not well_formed.all():
        candidates = pc.if_else(pa.array(well_formed), candidates, pa.scalar(None, pa.string()))
    try:
        parsed = candidates.cast(_NS_UTC).cast(UTC_MICROS, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pa.array([_parse_one(t) for t in candidates.to_pylist()], pa.int64()).cast(UTC_MICROS)
    if parsed.null_count == 0:
        return parsed, np.zeros(len(texts), dtype=bool)
    return parsed, np.asarray(pc.and_(texts.is_valid(), parsed.is_null()))


def _shape(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Which values have the accepted layout, and which of them carry no zone (UTC is appended).

    Only the bytes that matter are gathered from the column's data buffer: the first 27 (date, time,
    fraction) and the last 6 (zone). Bytes past a short value's end are garbage, but such a value
    fails the length checks anyway, and fraction bytes past the fraction's end are masked.
    """
    starts, lengths = byte_lengths_of(texts)
    data = texts.buffers()[2]
    buffer = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    if buffer.size == 0:  # no bytes at all: every value null or empty
        return np.zeros(len(texts), dtype=bool), np.zeros(len(texts), dtype=bool)
    head = buffer[np.minimum(starts[:, None] + _HEAD, buffer.size - 1)]
    tail = buffer[np.clip((starts + lengths)[:, None] - _TAIL, 0, buffer.size - 1)]  # tail[:, k-1]: k-th last
    prefix = DIGIT[head[:, _DATE_DIGITS]].all(axis=1) & (head[:, _DATE_PUNCT] == _PUNCT).all(axis=1)
    prefix &= (head[:, 10] == ord("T")) | (head[:, 10] == ord(" "))
    zulu = tail[:, 0] == ord("Z")
    offset = ((tail[:, 5] == ord("+")) | (tail[:, 5] == ord("-"))) & (tail[:, 2] == ord(":"))
    offset &= DIGIT[tail[:, [0, 1, 3, 4]]].all(axis=1)
    zone_len = np.where(zulu, 1, np.where(offset, 6, 0))
    frac_len = lengths - 19 - zone_len
    digits = DIGIT[head[:, _FRACTION]] | (_FRACTION[None, :] >= (19 + frac_len)[:, None])
    fraction = (frac_len >= 2) & (frac_len <= 8) & (head[:, 19] == ord(".")) & digits.all(axis=1)
    ok = prefix & ((frac_len == 0) | fraction) & (lengths >= 19) & (lengths <= _WIDTH)
    return ok, ok & (zone_len == 0)


def _parse_one(text: str | None) -> int | None:
    """Microseconds since the epoch of one well-formed text, or None if the calendar rejects it."""
    if text is None:
        return None
    match = _ISO_GROUPS.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, off_h, off_m = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
    except ValueError:
        return None
    offset = 0
    if zone not in (None, "Z"):
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
    micros = int(((fraction or "") + "000000")[:6])
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) + micros - offset * 1_000_000


def to_utc_micros(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Any timestamp column (any unit; no zone = UTC) or text column -> (timestamp[us, UTC], bad mask)."""
    if pa.types.is_timestamp(column.type):
        unit = column.type.unit
        utc = column.cast(pa.timestamp(unit, tz="UTC"))
        return utc.cast(UTC_MICROS, safe=unit != "ns"), np.zeros(len(column), dtype=bool)
    return parse_iso_column(column.cast(pa.string()))
