"""The one definition of an audit event: columns, Arrow types, limits and known types.

Every other representation (ClickHouse DDL, Parquet files, API models, decoder) derives from or is
tested against this module, so a column is added here first and nowhere else by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

__all__ = [
    "ATTRIBUTES",
    "EVENT_SCHEMA",
    "FIELDS",
    "INPUT_FIELDS",
    "INTEGER_INPUT_FIELDS",
    "KNOWN_EVENT_TYPES",
    "LOG_COLUMNS",
    "MAX_EVENT_BYTES",
    "MAX_FUTURE",
    "MAX_SESSION_SEQ",
    "MIN_TIMESTAMP",
    "STRING_LIMITS",
    "EventField",
    "conform",
    "empty_events",
]

UTC_MICROS: Final = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class EventField:
    """One stored column: its name, Arrow type, whether input must carry it, and its text limit.

    `min_len`/`max_len` count characters (not bytes), as the contract states them.
    """

    name: str
    type: pa.DataType
    required: bool = False
    nullable: bool = True
    min_len: int = 0
    max_len: int | None = None
    from_input: bool = True


FIELDS: Final[tuple[EventField, ...]] = (
    EventField("event_id", pa.string(), nullable=False),
    EventField("timestamp", UTC_MICROS, required=True, nullable=False),
    EventField("event_type", pa.string(), required=True, nullable=False, min_len=1, max_len=64),
    EventField("user_name", pa.string(), required=True, nullable=False, min_len=1, max_len=256),
    EventField("machine_name", pa.string(), max_len=256),
    EventField("session_id", pa.string(), max_len=128),
    EventField("workbook_name", pa.string(), max_len=1024),
    EventField("sheet_name", pa.string(), max_len=255),
    EventField("cell_address", pa.string(), max_len=8192),
    EventField("old_value", pa.string(), max_len=32767),
    EventField("new_value", pa.string(), max_len=32767),
    EventField("formula", pa.string(), max_len=8192),
    EventField("correlation_id", pa.string(), max_len=128),
    # Extra input fields, original key -> JSON text of the value: never dropped.
    EventField("attributes", pa.map_(pa.string(), pa.string()), nullable=False),
    EventField("received_at", UTC_MICROS, nullable=False, from_input=False),
    EventField("batch_id", pa.string(), nullable=False, from_input=False),
    # The add-in's number of the event within its session (0, 1, 2 ...): optional input, so older
    # add-ins keep working; completeness per session is computed from it (storage/log/completeness.py).
    EventField("session_seq", pa.int64()),
    # The transparency log (storage/log): the event's position in commit order and its RFC 6962
    # leaf hash, assigned by the store's single writer at commit, never taken from input (a client
    # field of that name is an attribute like any unknown key). Null for events stored before the
    # log existed, and where several writers share a ClickHouse server (no global commit order).
    EventField("leaf_index", pa.int64(), from_input=False),
    EventField("leaf_hash", pa.binary(32), from_input=False),
)

ATTRIBUTES: Final = "attributes"
#: The log's columns: set by the store at commit, never by a producer.
LOG_COLUMNS: Final = ("leaf_index", "leaf_hash")
#: Integer input fields (every other input field but the timestamp is text).
INTEGER_INPUT_FIELDS: Final = ("session_seq",)
#: Largest session_seq accepted: an int64, like the stored column.
MAX_SESSION_SEQ: Final = 2**63 - 1

#: Fields a producer may send by name (attributes collects everything else).
INPUT_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in FIELDS if f.from_input and f.name != ATTRIBUTES)

#: Text limits (characters) per string column, for validation and the hostile-input tests.
STRING_LIMITS: Final[dict[str, tuple[int, int]]] = {
    f.name: (f.min_len, f.max_len) for f in FIELDS if f.max_len is not None
}

EVENT_SCHEMA: Final = pa.schema([pa.field(f.name, f.type, nullable=f.nullable) for f in FIELDS])

MIN_TIMESTAMP: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE: Final = dt.timedelta(hours=24)
MAX_EVENT_BYTES: Final = 128 * 1024

KNOWN_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        "session_start",
        "session_end",
        "workbook_open",
        "workbook_new",
        "workbook_save",
        "workbook_close",
        "sheet_add",
        "sheet_delete",
        "sheet_rename",
        "cell_change",
        "formula_change",
        "range_change",
        "row_insert",
        "row_delete",
        "column_insert",
        "column_delete",
        "macro_run",
        "calculation",
        "error",
    }
)


def conform(table: pa.Table) -> pa.Table:
    """`table` in EVENT_SCHEMA: columns in order and cast, nullable columns it lacks as nulls.

    Tables made before a nullable column existed (a spool file from an older version, a caller
    that never heard of `session_seq`) stay appendable; a missing required column still fails.
    """
    if table.schema.equals(EVENT_SCHEMA):
        return table
    names = set(table.column_names)
    for f in EVENT_SCHEMA:
        if f.nullable and f.name not in names:
            table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def empty_events() -> pa.Table:
    """An empty table in the canonical schema (what a read with no match returns)."""
    return EVENT_SCHEMA.empty_table()
