"""Arrow IPC stream bodies (columnar producers) -> the same input columns the JSON readers produce.

Columns use the canonical snake_case names; any subset is allowed as long as the required ones are
there. Timestamps may be any timestamp unit/zone (no zone = UTC) or ISO-8601 text; text fields,
cell values included, any string type. Other columns are kept in `attributes` (value as JSON text),
merged with an `attributes` map<string,string> column if the producer sends one.

Numbers are stored as their JSON text as sent, and an Arrow float or decimal column has no such
text (1e5 and 100000.0 are one double): old_value/new_value must be text (the canonical schema's
type; a producer sends the text it means), and an extra column must be text, integer or boolean,
whose JSON text is exact. Any other type is refused with a 400 naming the column.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

from api.ingest.body_errors import check_event_count, invalid_body
from api.ingest.columns import RawColumns
from api.ingest.normalize import json_text
from storage.schema import INPUT_FIELDS

__all__ = ["columns_from_arrow"]

_REQUIRED: Final = ("timestamp", "event_type", "user_name")
_SERVER_SET: Final = frozenset({"received_at", "batch_id"})
_ATTRIBUTES_TYPE: Final = pa.map_(pa.string(), pa.string())


def columns_from_arrow(body: bytes, *, max_events: int) -> RawColumns:
    """Read and check an IPC stream.

    Raises:
        ApiError: 400 for an unreadable stream, invalid UTF-8, a missing required column or a column
            of an unusable type; 413 beyond `max_events` rows.
    """
    table = _read(body)
    check_event_count(table.num_rows, max_events)
    missing = [name for name in _REQUIRED if name not in table.column_names]
    if missing:
        raise invalid_body(f"Arrow stream lacks required column(s): {', '.join(missing)}")
    arrays = {name: _input_column(table, name) for name in INPUT_FIELDS}
    return RawColumns(table.num_rows, arrays, _attributes(table))


def _read(body: bytes) -> pa.Table:
    try:
        table = pa.ipc.open_stream(body).read_all()
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as exc:
        raise invalid_body(f"body is not a valid Arrow IPC stream: {exc}") from None
    return table.combine_chunks()


def _input_column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    column = _single(table.column(name))
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if name == "timestamp" and pa.types.is_timestamp(kind):
        return column
    if not _is_text(kind):
        hint = " (cell values are sent as their JSON text)" if name in ("old_value", "new_value") else ""
        raise invalid_body(f"Arrow column {name!r} has unusable type {kind}; expected a string type{hint}")
    return column.cast(pa.string())


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


def _exact_scalar(kind: pa.DataType) -> bool:
    """Types whose every value has one exact JSON text (not float or decimal: no text as sent)."""
    return _is_text(kind) or bool(pa.types.is_integer(kind) or pa.types.is_boolean(kind))


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _attributes(table: pa.Table) -> pa.Array:
    """The attributes column, extended with every non-canonical column (JSON text of each value)."""
    extras = [
        n for n in table.column_names if n not in INPUT_FIELDS and n != "attributes" and n not in _SERVER_SET
    ]
    for name in extras:
        kind = table.schema.field(name).type
        if not _exact_scalar(kind):
            raise invalid_body(
                f"Arrow column {name!r} has unusable type {kind}; extra columns must be string, integer"
                " or boolean (a float has no JSON text as sent: send the text)"
            )
    given = _given_attributes(table)
    if not extras:
        return given
    rows: list[list[tuple[str, Any]]] = [list(row or []) for row in given.to_pylist()]
    for name in extras:
        for row, value in zip(rows, table.column(name).to_pylist(), strict=True):
            if value is not None:
                row.append((name, json_text(value).decode()))
    return pa.array(rows, _ATTRIBUTES_TYPE)


def _given_attributes(table: pa.Table) -> pa.Array:
    if "attributes" not in table.column_names:
        return pa.array([[]] * table.num_rows, _ATTRIBUTES_TYPE)
    column = _single(table.column("attributes"))
    try:
        return column.cast(_ATTRIBUTES_TYPE).fill_null(pa.scalar([], _ATTRIBUTES_TYPE))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise invalid_body(f"Arrow column 'attributes' must be map<string, string>: {exc}") from None
