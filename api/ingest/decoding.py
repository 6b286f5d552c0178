r"""Request body -> validated events in EVENT_SCHEMA plus per-index errors: the ingest decoder's entry point.

`decode_batch` picks the input reader (JSON, NDJSON, Arrow IPC), which yields input columns; the
shared vectorised validation then runs on them, absent ids are derived from content, in-batch
duplicates are dropped (first kept) and the stored table is assembled column-wise.

Decisions on points the contract leaves open:
- A body-level defect (not JSON, wrong top-level shape, invalid UTF-8, a lone surrogate escape such
  as `"\\ud800"`) fails the whole body with 400: a lone surrogate cannot be stored as UTF-8, and
  msgspec refuses it while decoding, before events exist.
- An element of the batch that is valid JSON but not an object (a string, number, null, array,
  boolean; also such an NDJSON line) is that index's error, field null, "event must be a JSON
  object"; the other events are stored (207), or the batch is 422 when none is valid.
- Numbers and booleans in cell values and attributes are stored as their JSON text as sent, byte
  for byte (`1e-400`, `-0`, `1E+2` stay so; see api/ingest/json_input.py for how).
- NUL characters are legal JSON and storable: kept.
- Length limits count characters of the value as sent (event_type before normalisation).
- The event size limit applies to the event's compact UTF-8 JSON form, computed column-wise from
  the value and attribute byte lengths (so `\\u00FC` escapes and pretty-printing do not count), to
  every event of every body (a small compressed Arrow body can carry huge events).
- A batch using more distinct extra field names than the cap (`max_extra_keys`) is refused whole
  (413 `too_many_attribute_keys`) before attributes are built: it is the batch's shape that costs.
- An event failing several rules reports one error: the first found (type errors, size, then
  event_id, required fields, timestamp, lengths, event_type).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.ingest.arrow_input import columns_from_arrow
from api.ingest.body_errors import check_event_count, invalid_body
from api.ingest.columns import RawColumns, columns_from_events
from api.ingest.event_ids import derive_event_ids
from api.ingest.json_input import ParsedBody, gc_paused, may_hold_negative_zero, parse_json, parse_ndjson
from api.ingest.limits import DEFAULT_MAX_ARROW_BYTES, DEFAULT_MAX_EXTRA_KEYS
from api.ingest.validation import validate_columns
from storage.schema import EVENT_SCHEMA, LOG_COLUMNS, UTC_MICROS

__all__ = ["MAX_BATCH_ID_CHARS", "NOT_AN_OBJECT", "DecodedBatch", "EventError", "decode_batch"]

MAX_BATCH_ID_CHARS: Final = 128
NOT_AN_OBJECT: Final = "event must be a JSON object"
_DERIVE_SKIP: Final = frozenset({"event_id", "received_at", "batch_id"})


@dataclass(frozen=True, slots=True)
class EventError:
    """Why the event at `index` (0-based, in body order) was rejected; `field` is snake_case.

    `field` is None when the element is no event at all (not a JSON object).
    """

    index: int
    event_id: str | None
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """Valid events in EVENT_SCHEMA (input order, in-batch duplicate ids removed) and the rejects."""

    table: pa.Table
    errors: tuple[EventError, ...]
    total: int
    batch_id: str


def decode_batch(
    body: bytes,
    kind: Literal["json", "ndjson", "arrow"],
    *,
    max_events: int,
    header_batch_id: str | None,
    received_at: dt.datetime,
    now: dt.datetime,
    max_extra_keys: int = DEFAULT_MAX_EXTRA_KEYS,
    max_arrow_bytes: int = DEFAULT_MAX_ARROW_BYTES,
) -> DecodedBatch:
    """Decode and validate one ingest body.

    Raises:
        ApiError: 400 `invalid_body` for a body that is not valid JSON / NDJSON / Arrow IPC (or a
            bad batch id); 413 `too_many_events` beyond `max_events`, `too_many_attribute_keys`
            beyond `max_extra_keys` distinct extra field names, `payload_too_large` for an Arrow
            body whose buffers decode to more than `max_arrow_bytes`.
    """
    if kind == "arrow":
        raw = columns_from_arrow(
            body, max_events=max_events, max_extra_keys=max_extra_keys, max_decoded_bytes=max_arrow_bytes
        )
        body_batch_id = None
    else:
        with gc_paused():  # until the decoded objects are gone (see json_input.gc_paused)
            raw, body_batch_id = _columns_from_text(body, kind, max_events, max_extra_keys)
    batch_id = _batch_id(body_batch_id, header_batch_id)
    values = validate_columns(raw, now=now)
    return _assemble(raw, values, batch_id, received_at)


def _columns_from_text(
    body: bytes, kind: Literal["json", "ndjson"], max_events: int, max_extra_keys: int
) -> tuple[RawColumns, object]:
    """Input columns of a JSON or NDJSON body, and the body's batch id; the parsed events die here."""
    parse = parse_json if kind == "json" else parse_ndjson
    parsed = parse(body)
    check_event_count(len(parsed.events), max_events)
    raw = _columns_from_parsed(parsed, max_extra_keys)
    if raw.huge_ints or (raw.zero_ints and may_hold_negative_zero(body)):  # see api/ingest/columns.py
        parsed = parse(body, exact=True)
        raw = _columns_from_parsed(parsed, max_extra_keys)
    return raw, parsed.batch_id


def _columns_from_parsed(parsed: ParsedBody, max_extra_keys: int) -> RawColumns:
    """Columns of the events; an element that is not an object stands in as `{}` and is its index's error."""
    events = parsed.events
    if not events or set(map(type, events)) == {dict}:
        return columns_from_events(events, max_extra_keys=max_extra_keys)
    objects = [event if type(event) is dict else {} for event in events]
    raw = columns_from_events(objects, max_extra_keys=max_extra_keys)
    for index, event in enumerate(events):
        if type(event) is not dict:
            raw.add_issue(index, None, NOT_AN_OBJECT)
    return raw


def _batch_id(body_value: object, header_value: str | None) -> str:
    """Body `batch_id`, else the Idempotency-Key header, else a fresh uuid4."""
    for source, value in (("batch_id", body_value), ("Idempotency-Key", header_value)):
        if value is None:
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_BATCH_ID_CHARS:
            message = f"{source} must be a string of 1-{MAX_BATCH_ID_CHARS} characters"
            raise invalid_body(message, [{"field": "batch_id", "message": message}])
        return value
    return str(uuid.uuid4())


def _assemble(
    raw: RawColumns, values: dict[str, pa.Array], batch_id: str, received_at: dt.datetime
) -> DecodedBatch:
    errors = tuple(
        EventError(index, _reported_id(raw, values, index), issue.field, issue.message)
        for index, issue in sorted(raw.issues.items())
    )
    columns = dict(values)
    columns["attributes"] = raw.attributes
    if errors:
        valid = np.ones(raw.length, dtype=bool)
        valid[[e.index for e in errors]] = False
        mask = pa.array(valid)
        columns = {name: array.filter(mask) for name, array in columns.items()}
    columns["event_id"] = _fill_derived_ids(columns)
    keep = _first_occurrences(columns["event_id"])
    count = len(columns["event_id"]) if keep is None else len(keep)
    if keep is not None:
        columns = {name: array.take(keep) for name, array in columns.items()}
    columns["received_at"] = pa.array(np.full(count, _micros(received_at), dtype=np.int64)).cast(UTC_MICROS)
    columns["batch_id"] = pa.array([batch_id] * count, pa.string())
    for name in LOG_COLUMNS:  # assigned by the store at commit (storage/log)
        columns[name] = pa.nulls(count, EVENT_SCHEMA.field(name).type)
    arrays = [columns[f.name].cast(f.type) for f in EVENT_SCHEMA]
    return DecodedBatch(pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA), errors, raw.length, batch_id)


def _reported_id(raw: RawColumns, values: dict[str, pa.Array], index: int) -> str | None:
    """The rejected event's id: canonical when it parsed, else as sent (so the client can find it)."""
    canonical: str | None = values["event_id"][index].as_py()
    if canonical is None and pa.types.is_string(raw.arrays["event_id"].type):
        sent: str | None = raw.arrays["event_id"][index].as_py()
        return sent
    return canonical


def _micros(moment: dt.datetime) -> int:
    return (moment.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
        microseconds=1
    )


def _fill_derived_ids(columns: dict[str, pa.Array]) -> pa.Array:
    """Derive a UUIDv5 from content for every valid event that came without an id."""
    ids = columns["event_id"]
    if ids.null_count == 0:
        return ids
    if ids.null_count == len(ids):
        return derive_event_ids(columns)
    missing = pa.array(np.flatnonzero(np.asarray(ids.is_null())), pa.int64())
    derived = derive_event_ids({n: a.take(missing) for n, a in columns.items() if n not in _DERIVE_SKIP})
    filled = pa.array(np.cumsum(np.asarray(ids.is_null())) - 1, pa.int64())
    return pc.if_else(ids.is_null(), derived.take(pc.max_element_wise(filled, 0)), ids)


def _first_occurrences(ids: pa.Array) -> pa.Array | None:
    """Indices keeping the first of each id, or None when the batch has no duplicate (the usual case)."""
    if pc.count_distinct(ids, mode="all").as_py() == len(ids):
        return None
    values = ids.to_pylist()
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        first.setdefault(value, index)
    return pa.array(sorted(first.values()), pa.int64())
