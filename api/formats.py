"""Event tables -> HTTP responses: JSON page, CSV, NDJSON, Arrow IPC stream and Parquet.

JSON text is built column-wise with Arrow compute (escape, quote, join), never row by row in
Python, so a 10k-row page or a 1M-row NDJSON stream costs a handful of vectorised passes. The
binary formats keep the canonical schema and are streamed batch by batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from fastapi.responses import Response, StreamingResponse

from storage.schema import EVENT_SCHEMA

__all__ = [
    "MEDIA_TYPES",
    "Format",
    "attributes_json",
    "canonical",
    "event_json_rows",
    "event_object",
    "events_response",
    "hex_strings",
    "iso",
    "iso_timestamps",
    "joined",
    "json_strings",
    "negotiate",
    "neutralize_formulas",
    "stream_bytes",
    "table_records",
]

Format = Literal["json", "csv", "ndjson", "arrow", "parquet"]

MEDIA_TYPES: Final[dict[Format, str]] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
_ACCEPTED: Final[dict[str, Format]] = {
    "application/json": "json",
    "*/*": "json",
    "application/*": "json",
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
STREAM_BATCH_ROWS: Final = 65_536
_HEX_DIGITS: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_JSON_ESCAPES: Final = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def negotiate(accept: str | None, format_param: str | None = None) -> Format:
    """The response format: `?format=` wins, else the best supported `Accept` entry, else JSON."""
    if format_param in MEDIA_TYPES:
        return format_param
    ranked: list[tuple[float, int, Format]] = []
    for index, entry in enumerate((accept or "").split(",")):
        media, *params = (part.strip() for part in entry.split(";"))
        fmt = _ACCEPTED.get(media.lower())
        if fmt is not None:
            ranked.append((-_quality(params), index, fmt))
    ranked = [r for r in ranked if r[0] < 0]
    return min(ranked)[2] if ranked else "json"


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal; nulls become `null`."""
    text = pc.replace_substring(values, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            char = chr(code)
            text = pc.replace_substring(text, char, _JSON_ESCAPES.get(char, f"\\u{code:04x}"))
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    return pc.fill_null(quoted, "null")


def iso_timestamps(values: pa.Array) -> pa.Array:
    """UTC microsecond timestamps as ISO-8601 text with `Z` (`2025-06-03T08:06:01.097555Z`)."""
    return pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ")


def attributes_json(values: pa.Array) -> pa.Array:
    """map<key, JSON text> -> one JSON object per row, the stored JSON texts embedded verbatim."""
    if values.null_count:
        values = pc.fill_null(values, pa.scalar([], type=values.type))
    # `.keys`/`.items` are the whole child arrays even when `values` is a slice: cut them to it.
    first, stop = (values.offsets[0].as_py(), values.offsets[-1].as_py()) if len(values) else (0, 0)
    keys, items = values.keys.slice(first, stop - first), values.items.slice(first, stop - first)
    pairs = pc.binary_join_element_wise(json_strings(keys), pc.fill_null(items, "null"), ":")
    offsets = pc.subtract(values.offsets, values.offsets[0])
    per_row = pa.ListArray.from_arrays(offsets, pairs)
    return pc.binary_join_element_wise("{", pc.binary_join(per_row, ","), "}", "")


def hex_strings(values: pa.Array) -> pa.Array:
    """Binary values (leaf hashes) as lowercase hex text; nulls stay null. One numpy pass."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_fixed_size_binary(values.type):  # not the stored type: value by value
        return pa.array([None if v is None else v.hex() for v in values.to_pylist()], pa.string())
    width, n = values.type.byte_width, len(values)
    data = values.buffers()[1]
    raw: np.ndarray = np.zeros(0, dtype=np.uint8)
    if n and data is not None:
        raw = np.frombuffer(data, dtype=np.uint8)[values.offset * width : (values.offset + n) * width]
    digits = np.empty(2 * len(raw), dtype=np.uint8)
    digits[0::2] = _HEX_DIGITS[raw >> 4]
    digits[1::2] = _HEX_DIGITS[raw & 0x0F]
    offsets = np.arange(0, 2 * width * n + 1, 2 * width, dtype=np.int64)
    text = pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes())]
    )
    if values.null_count:
        text = pc.if_else(values.is_valid(), text, pa.scalar(None, pa.large_string()))
    return text.cast(pa.string())


def _json_values(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type):
        return json_strings(iso_timestamps(column))
    if pa.types.is_map(column.type):
        return attributes_json(column)
    if pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.string()), "null")
    if pa.types.is_fixed_size_binary(column.type) or pa.types.is_binary(column.type):
        return json_strings(hex_strings(column))
    return json_strings(column.cast(pa.string()))


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def event_json_rows(table: pa.Table) -> pa.Array:
    """One compact JSON object per event row, keys in schema order."""
    pieces: list[pa.Array | str] = []
    for index, name in enumerate(table.column_names):
        pieces.append(("{" if index == 0 else ",") + json.dumps(name) + ":")
        pieces.append(_json_values(_one_chunk(table.column(index))))
    pieces.append("}")
    rows: pa.Array = pc.binary_join_element_wise(*pieces, "")
    return rows


def joined(rows: pa.Array, separator: str) -> str:
    """JSON row texts joined with `separator` in one Arrow call."""
    if len(rows) == 0:
        return ""
    whole = pa.ListArray.from_arrays(pa.array([0, len(rows)], type=pa.int32()), rows)
    text: str = pc.binary_join(whole, separator)[0].as_py()
    return text


#: What a spreadsheet starts a formula with (OWASP CSV injection): = + - @ tab CR.
_FORMULA_START: Final = r"^[=+\-@\t\r]"


def neutralize_formulas(values: pa.Array) -> pa.Array:
    """Strings that a spreadsheet would run as a formula, prefixed with `'`; others unchanged.

    Excel and LibreOffice treat a cell starting with `=`, `+`, `-`, `@`, tab or CR as a formula
    (`=WEBSERVICE(...)` calls out when the file is opened); the leading `'` makes it text. One
    vectorised pass; nulls stay null.
    """
    risky = pc.fill_null(pc.match_substring_regex(values, _FORMULA_START), False)
    if not pc.any(risky).as_py():
        return values
    quoted: pa.Array = pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)
    return quoted


def for_text_formats(table: pa.Table, *, neutralize: bool = False) -> pa.Table:
    """Timestamps as ISO text and attributes as JSON text: what CSV can carry.

    `neutralize` also defuses formula-like strings (see `neutralize_formulas`).
    """
    columns = []
    for column in table.itercolumns():
        chunks = column.chunks or [pa.array([], type=column.type)]
        if pa.types.is_timestamp(column.type):
            chunks = [iso_timestamps(c) for c in chunks]
        elif pa.types.is_map(column.type):
            chunks = [attributes_json(c) for c in chunks]
        elif pa.types.is_fixed_size_binary(column.type) or pa.types.is_binary(column.type):
            chunks = [hex_strings(c) for c in chunks]
        if neutralize and (pa.types.is_string(chunks[0].type) or pa.types.is_large_string(chunks[0].type)):
            chunks = [neutralize_formulas(c) for c in chunks]
        columns.append(pa.chunked_array(chunks))
    return pa.table(columns, names=table.column_names)


class _ChunkSink:
    """A write-only file that hands out what was written since the last `take()`.

    `tell()` keeps counting across takes: the Parquet footer records absolute offsets.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def canonical(table: pa.Table) -> pa.Table:
    """The table in exactly EVENT_SCHEMA (engines may differ in nullability flags or string width)."""
    return table if table.schema.equals(EVENT_SCHEMA) else table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def _batches(tables: Iterable[pa.Table], rows: int = STREAM_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The rows of `tables`, in order, as canonical record batches of at most `rows` rows."""
    for table in tables:
        yield from canonical(table).to_batches(max_chunksize=rows)


def stream_arrow(tables: Iterable[pa.Table]) -> Iterator[bytes]:
    """Arrow IPC stream bytes, one message per batch."""
    sink = _ChunkSink()
    with ipc.new_stream(pa.PythonFile(sink, mode="w"), EVENT_SCHEMA) as writer:
        yield sink.take()
        for batch in _batches(tables):
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def stream_parquet(tables: Iterable[pa.Table]) -> Iterator[bytes]:
    """A Parquet file, one row group per batch, the footer last."""
    sink = _ChunkSink()
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), EVENT_SCHEMA, compression="zstd") as writer:
        for batch in _batches(tables):
            if batch.num_rows:
                writer.write_batch(batch)
                yield sink.take()
    yield sink.take()


def stream_csv(tables: Iterable[pa.Table], *, neutralize: bool = True) -> Iterator[bytes]:
    """CSV with a header; timestamps ISO-8601, attributes JSON text, null empty and "" quoted.

    With `neutralize`, formula-like cells get a leading `'` (see `neutralize_formulas`).
    """
    schema = for_text_formats(EVENT_SCHEMA.empty_table()).schema
    sink = _ChunkSink()
    with pcsv.CSVWriter(pa.PythonFile(sink, mode="w"), schema) as writer:
        yield sink.take()
        for batch in _batches(tables):
            text = for_text_formats(pa.Table.from_batches([batch]), neutralize=neutralize)
            writer.write_table(text)
            yield sink.take()
    yield sink.take()


def stream_ndjson(tables: Iterable[pa.Table]) -> Iterator[bytes]:
    """One JSON object per line, the same objects as in the JSON page."""
    for batch in _batches(tables, STREAM_BATCH_ROWS // 4):
        if batch.num_rows:
            rows = event_json_rows(pa.Table.from_batches([batch]))
            yield (joined(rows, "\n") + "\n").encode()


def stream_bytes(tables: Iterable[pa.Table], fmt: Format, *, csv_neutralize: bool = True) -> Iterator[bytes]:
    """The body of a streamed format (not JSON) over `tables`, produced as they are consumed."""
    if fmt == "csv":
        return stream_csv(tables, neutralize=csv_neutralize)
    if fmt == "ndjson":
        return stream_ndjson(tables)
    if fmt == "arrow":
        return stream_arrow(tables)
    if fmt == "parquet":
        return stream_parquet(tables)
    raise ValueError(f"{fmt} is not a streamed format")


def events_response(
    table: pa.Table, fmt: Format, next_cursor: str | None, *, csv_neutralize: bool = True
) -> Response:
    """The page in `fmt`; JSON carries `next_cursor` in its body, every format in `X-Next-Cursor`."""
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    table = canonical(table)
    if fmt == "json":
        rows = joined(event_json_rows(table), ",")
        text = f'{{"events":[{rows}],"next_cursor":{json.dumps(next_cursor)}}}'
        return Response(text.encode(), media_type=MEDIA_TYPES["json"], headers=headers)
    body = stream_bytes([table], fmt, csv_neutralize=csv_neutralize)
    return StreamingResponse(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def event_object(table: pa.Table) -> bytes:
    """The JSON object of a one-row table (GET /api/events/{id})."""
    return joined(event_json_rows(canonical(table).slice(0, 1)), "").encode()


def iso(value: dt.datetime | None) -> str | None:
    """A datetime as the API writes it: UTC, microseconds, `Z`."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def table_records(table: pa.Table) -> list[dict[str, Any]]:
    """Small result tables (stats, sessions, timeseries) as JSON-ready dicts, timestamps ISO text."""
    columns = [
        pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ") if pa.types.is_timestamp(col.type) else col
        for col in table.itercolumns()
    ]
    records: list[dict[str, Any]] = pa.table(columns, names=table.column_names).to_pylist()
    return records
