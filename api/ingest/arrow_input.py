"""Arrow IPC stream bodies (columnar producers) -> the same input columns the JSON readers produce.

Columns use the canonical snake_case names; any subset is allowed as long as the required ones are
there. Timestamps may be any timestamp unit/zone (no zone = UTC) or ISO-8601 text; text fields,
cell values included, any string type. Other columns are kept in `attributes` (value as JSON text),
merged with an `attributes` map<string,string> column if the producer sends one; its values must
be JSON texts (an event holding one that is not gets a per-event error: reads embed them verbatim).

Numbers are stored as their JSON text as sent, and an Arrow float or decimal column has no such
text (1e5 and 100000.0 are one double): old_value/new_value must be text (the canonical schema's
type; a producer sends the text it means), and an extra column must be text, integer or boolean,
whose JSON text is exact. Any other type, a dictionary-encoded or nested column (other than the
attributes map) is refused with a 400 naming the column: each expands far beyond its bytes on the
wire (one 64 KiB dictionary entry taken 10,000 times; a `list<null>` of 20 million nulls in 8 bytes).

The stream is read message by message: the schema is checked first, then each record batch's
row count and decoded buffer size are read from its metadata (api/ingest/ipc_meta.py) and checked
against the caps before pyarrow decompresses a byte. Compressed (LZ4/zstd) streams are accepted.
Everything after that is column-wise Arrow and numpy work, linear in the decoded bytes.
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.ingest.body_errors import check_decoded_bytes, check_event_count, check_extra_keys, invalid_body
from api.ingest.columns import RawColumns
from api.ingest.ipc_meta import MetadataError, batch_extent
from storage.schema import INPUT_FIELDS, INTEGER_INPUT_FIELDS, LOG_COLUMNS, MAX_SESSION_SEQ

__all__ = ["columns_from_arrow"]

_REQUIRED: Final = ("timestamp", "event_type", "user_name")
#: Columns the server sets (a read's output sent back): ignored, whatever their values. The log's
#: leaf columns among them: only the store's single writer assigns leaves (storage.log).
_SERVER_SET: Final = frozenset({"received_at", "batch_id", *LOG_COLUMNS})
_KNOWN: Final = frozenset(INPUT_FIELDS) | _SERVER_SET | {"attributes"}
_ATTRIBUTES_TYPE: Final = pa.map_(pa.string(), pa.string())
#: Buffers a flat column has at most (validity, offsets, data); the attributes map has 9.
_BUFFERS_PER_COLUMN: Final = 3
_MAP_BUFFERS: Final = 9
_JSON_ESCAPES: Final = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_json_check: Final = msgspec.json.Decoder(float_hook=msgspec.Raw).decode
#: Everything pyarrow raises on a malformed stream (a field name of invalid UTF-8 too), and the
#: metadata reader's own error.
_READ_ERRORS: Final = (pa.ArrowException, OSError, MetadataError, UnicodeDecodeError)


def columns_from_arrow(
    body: bytes, *, max_events: int, max_extra_keys: int, max_decoded_bytes: int
) -> RawColumns:
    """Read and check an IPC stream.

    Raises:
        ApiError: 400 for an unreadable stream, invalid UTF-8, a missing required column or a column
            of an unusable type; 413 beyond `max_events` rows, `max_extra_keys` extra field names
            or `max_decoded_bytes` of decoded buffers.
    """
    table = _read(body, max_events, max_extra_keys, max_decoded_bytes)
    missing = [name for name in _REQUIRED if name not in table.column_names]
    if missing:
        raise invalid_body(f"Arrow stream lacks required column(s): {', '.join(missing)}")
    arrays = {name: _input_column(table, name) for name in INPUT_FIELDS}
    raw = RawColumns(table.num_rows, arrays, pa.array([], _ATTRIBUTES_TYPE))
    raw.attributes = _attributes(table, max_extra_keys, raw)
    return raw


def _read(body: bytes, max_events: int, max_extra_keys: int, max_bytes: int) -> pa.Table:
    """The stream's batches as one table; every cap checked from metadata before a batch is read."""
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
        messages = _messages(reader)
        if not messages:
            raise invalid_body("body is not a valid Arrow IPC stream: no schema message")
        first = messages.pop(0)
        if first.type != "schema":
            raise invalid_body(f"Arrow stream starts with a {first.type} message, not its schema")
        schema = pa.ipc.read_schema(first)
        _check_schema(schema, max_extra_keys)
        max_buffers = _BUFFERS_PER_COLUMN * len(schema) + _MAP_BUFFERS
        batches, rows, decoded = [], 0, 0
        for message in messages:
            if message.type != "record batch":
                raise invalid_body(f"unexpected Arrow IPC {message.type} message")
            extent = batch_extent(message, max_buffers)
            rows += extent.rows
            decoded += extent.decoded_bytes
            check_event_count(rows, max_events)
            check_decoded_bytes(decoded, max_bytes)
            batches.append(pa.ipc.read_record_batch(message, schema))
        table = pa.Table.from_batches(batches, schema)
        table.validate(full=True)
        return table.combine_chunks()
    except _READ_ERRORS as exc:
        raise invalid_body(f"body is not a valid Arrow IPC stream: {exc}") from None


def _messages(reader: pa.ipc.MessageReader) -> list[pa.ipc.Message]:
    messages = []
    while True:
        try:
            messages.append(reader.read_next_message())
        except StopIteration:
            return messages


def _check_schema(schema: pa.Schema, max_extra_keys: int) -> None:
    """Only the canonical schema's types (and flat extras with an exact JSON text); 400 naming the column."""
    extras = [name for name in schema.names if name not in _KNOWN]
    check_extra_keys(len(extras), max_extra_keys)
    seen: set[str] = set()
    for field in schema:
        name, kind = field.name, field.type
        if name in seen:
            raise invalid_body(f"Arrow column {name!r} appears more than once")
        seen.add(name)
        if pa.types.is_dictionary(kind):
            raise invalid_body(f"Arrow column {name!r} is dictionary-encoded; send its plain values")
        if name == "attributes":
            ok = pa.types.is_map(kind) and _is_text(kind.key_type) and _is_text(kind.item_type)
            expected = "map<string, string>"
        elif name == "timestamp":
            ok, expected = pa.types.is_timestamp(kind) or _is_text(kind), "a timestamp or a string type"
        elif name in INTEGER_INPUT_FIELDS:
            ok = bool(pa.types.is_integer(kind) or pa.types.is_null(kind))
            expected = "an integer type"
        elif name in INPUT_FIELDS:
            hint = " (cell values are sent as their JSON text)" if name in ("old_value", "new_value") else ""
            ok, expected = _is_text(kind), f"a string type{hint}"
        elif name in _SERVER_SET:  # set by the server, ignored: any flat type
            flat = _exact_scalar(kind) or pa.types.is_timestamp(kind)
            ok, expected = (
                flat or pa.types.is_binary(kind) or pa.types.is_fixed_size_binary(kind),
                "a flat type",
            )
        else:
            ok = _exact_scalar(kind)
            expected = "string, integer or boolean (a float has no JSON text as sent: send the text)"
        if not ok:
            raise invalid_body(f"Arrow column {name!r} has unusable type {kind}; expected {expected}")


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


def _exact_scalar(kind: pa.DataType) -> bool:
    """Types whose every value has one exact JSON text (not float or decimal: no text as sent)."""
    return _is_text(kind) or bool(pa.types.is_integer(kind) or pa.types.is_boolean(kind))


def _input_column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.int64() if name in INTEGER_INPUT_FIELDS else pa.string())
    column = _single(table.column(name))
    if name == "timestamp" and pa.types.is_timestamp(column.type):
        return column
    if name in INTEGER_INPUT_FIELDS:
        return _int64(column)
    return column.cast(pa.string())


def _int64(column: pa.Array) -> pa.Array:
    """An integer column as int64; unsigned values past int64 become -1 (validation rejects them)."""
    if pa.types.is_uint64(column.type):
        too_big = pc.fill_null(pc.greater(column, pa.scalar(MAX_SESSION_SEQ, pa.uint64())), False)
        if pc.any(too_big).as_py():
            fits = pc.if_else(too_big, pa.scalar(0, pa.uint64()), column).cast(pa.int64())
            return pc.if_else(too_big, pa.scalar(-1, pa.int64()), fits)
    return column.cast(pa.int64())


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _attributes(table: pa.Table, max_extra_keys: int, raw: RawColumns) -> pa.Array:
    """The attributes map, each row's given pairs then its extra columns' non-null values as JSON text.

    Built with kernels and numpy index arithmetic, linear in the cells: the extra columns' texts are
    concatenated, the present cells picked row-major, and merged after each row's given pairs.
    """
    n = table.num_rows
    extras = [name for name in table.column_names if name not in _KNOWN]
    given = _given_attributes(table)
    _check_json_texts(given, raw)
    given_keys = pc.unique(given.keys)
    check_extra_keys(len(given_keys), max_extra_keys)
    check_extra_keys(len(set(extras) | set(given_keys.to_pylist())), max_extra_keys)
    texts = [(name, _json_texts(_single(table.column(name)))) for name in extras]
    texts = [(name, text) for name, text in texts if text.null_count < n]
    if not texts:
        return given
    flat = pa.concat_arrays([text for _, text in texts])
    present = np.asarray(flat.is_valid()).reshape(len(texts), n).T
    rows, columns = np.nonzero(present)
    extra_keys = pa.array([name for name, _ in texts], pa.string()).take(pa.array(columns))
    extra_items = flat.take(pa.array(columns * n + rows))
    extra_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1), out=extra_offsets[1:])
    return _merge(given, extra_keys, extra_items, extra_offsets)


def _merge(given: pa.MapArray, keys: pa.Array, items: pa.Array, offsets: np.ndarray) -> pa.Array:
    """Per row, `given`'s pairs followed by the extra pairs `offsets` delimit (one `take`)."""
    given_offsets = np.asarray(given.offsets).astype(np.int64)
    given_len, extra_len = np.diff(given_offsets), np.diff(offsets)
    out_offsets = np.zeros(len(given_len) + 1, dtype=np.int64)
    np.cumsum(given_len + extra_len, out=out_offsets[1:])
    row = np.repeat(np.arange(len(given_len)), given_len + extra_len)
    local = np.arange(out_offsets[-1]) - out_offsets[:-1][row]
    from_given = local < given_len[row]
    source = np.where(
        from_given,
        given_offsets[:-1][row] + local,
        len(given.keys) + offsets[:-1][row] + local - given_len[row],
    )
    take = pa.array(source)
    all_keys = pa.concat_arrays([given.keys.cast(pa.string()), keys])
    all_items = pa.concat_arrays([given.items.cast(pa.string()), items])
    return pa.MapArray.from_arrays(
        pa.array(out_offsets.astype(np.int32)), all_keys.take(take), all_items.take(take)
    )


def _json_texts(column: pa.Array) -> pa.Array:
    """Each value's JSON text, null staying null.

    Strings are quoted and escaped as msgspec escapes them (so an Arrow extra and the same JSON
    field store one text); integers and booleans are written by Arrow's cast (`-7`, `true`).
    """
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    text = pc.replace_substring(column.cast(pa.string()), "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            char = chr(code)
            text = pc.replace_substring(text, char, _JSON_ESCAPES.get(char, f"\\u{code:04x}"))
    return pc.binary_join_element_wise('"', text, '"', "")


def _check_json_texts(given: pa.MapArray, raw: RawColumns) -> None:
    """A given attribute value must be one JSON text: reads embed it verbatim in their JSON answers.

    Each distinct value is parsed once (msgspec: strict JSON, no NaN, no lone surrogate); an event
    holding one that is not JSON gets its per-event error.
    """
    offsets = np.asarray(given.offsets).astype(np.int64)
    first, stop = int(offsets[0]), int(offsets[-1])
    items = given.items.slice(first, stop - first).cast(pa.string())
    bad = [text for text in pc.unique(items).to_pylist() if text is not None and not _is_json(text)]
    if not bad:
        return
    is_bad = np.asarray(pc.is_in(items, value_set=pa.array(bad, pa.string())).fill_null(False))
    owners = np.repeat(np.arange(len(given)), np.diff(offsets))
    keys = given.keys.slice(first, stop - first)
    for pair in np.flatnonzero(is_bad).tolist():
        raw.add_issue(int(owners[pair]), "attributes", f"value of {keys[pair].as_py()!r} is not a JSON text")


def _is_json(text: str) -> bool:
    try:
        _json_check(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    except msgspec.ValidationError:  # an integer past 4300 digits: valid JSON all the same
        return True
    return True


def _given_attributes(table: pa.Table) -> pa.MapArray:
    if "attributes" not in table.column_names:
        return pa.MapArray.from_arrays(
            pa.array(np.zeros(table.num_rows + 1, dtype=np.int32)),
            pa.array([], pa.string()),
            pa.array([], pa.string()),
        )
    column = _single(table.column("attributes"))
    try:
        cast = column.cast(_ATTRIBUTES_TYPE).fill_null(pa.scalar([], _ATTRIBUTES_TYPE))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise invalid_body(f"Arrow column 'attributes' must be map<string, string>: {exc}") from None
    assert isinstance(cast, pa.MapArray)  # noqa: S101 - the cast above guarantees it
    return cast
