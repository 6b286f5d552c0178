"""The canonical event (version 1): the bytes a leaf hash commits to, built column-wise.

One event is one RFC 8785 (JCS) JSON object, UTF-8, no whitespace, keys sorted, with exactly the
keys of `CANONICAL_KEYS`: every stored column of storage/schema.py, `session_seq`, the event's own
`leaf_index` (so a row moved to another position no longer matches its hash, and a verifier
names the exact leaf of a swap without any tree), and `"v": 1`. Every value is a string or null
except `v`, `leaf_index` and `session_seq` (integers); timestamps are RFC 3339
UTC with exactly six fractional digits (`2025-06-01T09:30:00.250000Z`); `attributes` is an object
from each attribute name to its stored JSON text *as a string*, so the leaf commits to the exact
stored bytes and no JSON number formatting enters the form (docs/canonical-event.md has the full
rules, a worked example and why). The leaf hash is SHA-256(0x00 || canonical bytes).

Building it costs one pass of Arrow string kernels per column (escape, quote, join) and one
SHA-256 per event, all events in one call (storage.log.batch_hash): ~4 µs per event in all on this
machine (benchmarks/bench_log.py). Only rows whose attribute names mix characters above U+FFFF
with U+E000-U+FFFF (where UTF-16 order, which JCS sorts by, differs from UTF-8 byte order) are
sorted in Python.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storage.log.batch_hash import prefixed_hashes

__all__ = [
    "CANONICAL_KEYS",
    "CANONICAL_VERSION",
    "LEAF_HASH_TYPE",
    "canonical_events",
    "escape_json_strings",
    "hash_leaves",
    "leaf_hashes",
    "with_leaves",
]

CANONICAL_VERSION: Final = 1
LEAF_HASH_TYPE: Final = pa.binary(32)

_TIMESTAMPS: Final = ("received_at", "timestamp")
_INTEGERS: Final = ("leaf_index", "session_seq")
_STRINGS: Final = (
    "batch_id",
    "cell_address",
    "correlation_id",
    "event_id",
    "event_type",
    "formula",
    "machine_name",
    "new_value",
    "old_value",
    "session_id",
    "sheet_name",
    "user_name",
    "workbook_name",
)
#: Keys of the canonical object in JCS order (all ASCII, so code-unit order is byte order).
CANONICAL_KEYS: Final[tuple[str, ...]] = tuple(
    sorted(("attributes", "v", *_TIMESTAMPS, *_INTEGERS, *_STRINGS))
)
#: Columns a table must carry to be hashed (session_seq may be absent: then null for every row).
#: `leaf_index` is part of the leaf, so a row moved to another index no longer matches its hash.
REQUIRED_COLUMNS: Final = tuple(k for k in CANONICAL_KEYS if k not in ("v", "session_seq"))

# JSON.stringify's escapes (RFC 8785 §3.2.2.2): two-character forms where ECMAScript has them.
_SHORT_ESCAPES: Final = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_NULL: Final = "null"


def _control_escape(code: int) -> str:
    return _SHORT_ESCAPES.get(code, f"\\u{code:04x}")


def _value_bytes(values: pa.Array) -> npt.NDArray[np.uint8]:
    """The UTF-8 bytes of all values of a string array, back to back (a view, no copy)."""
    offsets_buf, data_buf = values.buffers()[1], values.buffers()[2]
    if data_buf is None or len(values) == 0:
        return np.zeros(0, dtype=np.uint8)
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)
    first, last = int(offsets[values.offset]), int(offsets[values.offset + len(values)])
    return np.frombuffer(data_buf, dtype=np.uint8)[first:last]


def _special_bytes(values: pa.Array) -> tuple[bool, bool]:
    """(any double quote or backslash, any byte below 0x20) in the values: most have neither."""
    data = _value_bytes(values)
    return bool(((data == 0x22) | (data == 0x5C)).any()), bool((data < 0x20).any())


def _has_high_chars(values: pa.Array) -> bool:
    """Any character at or above U+E000 (UTF-8 lead byte 0xEE or more) in the values."""
    return bool((_value_bytes(values) >= 0xEE).any())


def escape_json_strings(values: pa.Array) -> pa.Array:
    """JCS string escaping of every value (no quotes added): backslash, quote, U+0000-U+001F."""
    quote_or_backslash, control = _special_bytes(values)
    out = values
    if quote_or_backslash:
        out = pc.replace_substring(out, "\\", "\\\\")
        out = pc.replace_substring(out, '"', '\\"')
    if control:
        for code in range(0x20):
            out = pc.replace_substring(out, chr(code), _control_escape(code))
    return out


def _string_value(values: pa.Array) -> tuple[pa.Array | str, bool]:
    """(JSON text or a literal, whether the caller must add the quotes) for a string column."""
    values = values.cast(pa.string())
    if values.null_count == len(values):
        return _NULL, False
    escaped = escape_json_strings(values)
    if values.null_count == 0:
        return escaped, True  # quotes go into the neighbouring literals: no kernel needed
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    return pc.coalesce(quoted, pa.scalar(_NULL)), False


def _timestamp_value(values: pa.Array) -> tuple[pa.Array | str, bool]:
    """RFC 3339 UTC with six fractional digits, as JSON text (`null` for a null)."""
    micros = values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).cast(pa.timestamp("us"))
    # A zone-less cast prints `YYYY-MM-DD HH:MM:SS.ffffff`, 50x faster than strftime here.
    text = pc.replace_substring(micros.cast(pa.string()), " ", "T", max_replacements=1)
    if values.null_count == 0:
        return pc.binary_join_element_wise(text, "Z", ""), True
    quoted = pc.binary_join_element_wise('"', text, 'Z"', "")
    return pc.coalesce(quoted, pa.scalar(_NULL)), False


def _integer_value(values: pa.Array) -> tuple[pa.Array | str, bool]:
    text = values.cast(pa.int64()).cast(pa.string())
    return (pc.coalesce(text, pa.scalar(_NULL)) if values.null_count else text), False


def _attributes_value(values: pa.Array) -> tuple[pa.Array | str, bool]:
    """Each map as a JCS object of name -> stored JSON text (a JSON string); `{}` when empty."""
    maps = values.cast(pa.map_(pa.string(), pa.string()))
    if maps.offset or maps.offsets[0].as_py() or maps.offsets[-1].as_py() != len(maps.keys):
        maps = pa.concat_arrays([maps])  # .keys/.items ignore a slice: make them exactly this array's
    if len(maps.keys) == 0:
        return "{}", False  # a null map has an empty range too: it reads as {}
    counts = np.diff(maps.offsets.to_numpy(zero_copy_only=False).astype(np.int64))
    parents = pa.array(np.repeat(np.arange(len(maps), dtype=np.int64), counts))
    entries = pa.table({"row": parents, "key": maps.keys, "value": maps.items})
    if not _sorted_within_rows(entries):
        order = pc.sort_indices(
            entries, sort_keys=[("row", "ascending"), ("key", "ascending"), ("value", "ascending")]
        )
        entries = entries.take(order)
    if _has_high_chars(entries["key"].combine_chunks()):
        entries = _utf16_order(entries)
    keys = escape_json_strings(entries["key"].combine_chunks())
    items, bare = _string_value(entries["value"].combine_chunks())
    if bare:
        pieces = pc.binary_join_element_wise('"', keys, '":"', items, '"', "")
    else:
        pieces = pc.binary_join_element_wise('"', keys, '":', items, "")
    lists = pa.ListArray.from_arrays(maps.offsets, pieces)
    return pc.binary_join_element_wise("{", pc.binary_join(lists, ","), "}", ""), False


def _sorted_within_rows(entries: pa.Table) -> bool:
    """Keys strictly ascending (UTF-8 byte order) inside every row: the sort can be skipped."""
    if entries.num_rows < 2:
        return True
    rows, keys = entries["row"].combine_chunks(), entries["key"].combine_chunks()
    same_row = pc.equal(rows[1:], rows[:-1])
    ascending = pc.greater(keys[1:], keys[:-1])
    return bool(pc.all(pc.or_(pc.invert(same_row), ascending)).as_py())


def _utf16_order(entries: pa.Table) -> pa.Table:
    """Re-sort entries by (row, UTF-16 code units of key): JCS order where it differs from UTF-8."""
    rows = entries["row"].to_pylist()
    keys = entries["key"].to_pylist()
    values = entries["value"].to_pylist()
    order = sorted(range(len(rows)), key=lambda i: (rows[i], keys[i].encode("utf-16-be"), values[i] or ""))
    return entries.take(pa.array(order, pa.int64()))


def _value(events: pa.Table | pa.RecordBatch, key: str) -> tuple[pa.Array | str, bool]:
    if key == "v":
        return str(CANONICAL_VERSION), False
    if key not in events.column_names:
        return _NULL, False  # only session_seq may be absent (checked by the caller)
    column = events.column(key)
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if key == "attributes":
        return _attributes_value(values)
    if key in _TIMESTAMPS:
        return _timestamp_value(values)
    if key in _INTEGERS:
        return _integer_value(values)
    return _string_value(values)


def canonical_events(events: pa.Table | pa.RecordBatch) -> pa.Array:
    """The canonical bytes (version 1) of every row, as a string array in row order.

    Args:
        events: rows in the event schema plus `leaf_index`; `session_seq` is optional (null
            when absent).

    Raises:
        KeyError: a required column is missing.
        ValueError: a row has no leaf_index.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in events.column_names]
    if missing:
        raise KeyError(f"events lack the column(s) {', '.join(missing)} the canonical form needs")
    if events.column("leaf_index").null_count:
        raise ValueError("every event needs a leaf_index to be hashed")
    if events.num_rows == 0:
        return pa.array([], pa.string())
    parts: list[pa.Array | str] = []
    literal = "{"
    for key in CANONICAL_KEYS:
        value, bare = _value(events, key)
        literal += f'"{key}":' + ('"' if bare else "")
        if isinstance(value, str):
            literal += value
        else:
            parts += [literal, value]
            literal = ""
        literal += ('"' if bare else "") + ","
    parts.append(literal[:-1] + "}")
    arrays = [p for p in parts if not isinstance(p, str) or p]
    return pc.binary_join_element_wise(*arrays, "")


def leaf_hashes(events: pa.Table | pa.RecordBatch) -> pa.FixedSizeBinaryArray:
    """SHA-256(0x00 || canonical bytes) of every row, as a fixed-size binary(32) array."""
    canonical = canonical_events(events)
    return hash_leaves(canonical)


def with_leaves(events: pa.Table, first_index: int) -> pa.Table:
    """`events` plus `leaf_index` (first_index, first_index + 1, ...) and `leaf_hash` columns.

    What a store does at commit, after deduplication and under its single writer: the rows it is
    about to append become leaves first_index .. first_index + n - 1 in row order.
    """
    indexes = pa.array(np.arange(first_index, first_index + events.num_rows, dtype=np.int64))
    table = events.drop_columns([c for c in ("leaf_index", "leaf_hash") if c in events.column_names])
    table = table.append_column(pa.field("leaf_index", pa.int64(), nullable=False), indexes)
    return table.append_column(pa.field("leaf_hash", LEAF_HASH_TYPE, nullable=False), leaf_hashes(table))


def hash_leaves(canonical: pa.Array) -> pa.FixedSizeBinaryArray:
    """SHA-256(0x00 || value) of every value of a string/binary array (no nulls: ValueError)."""
    digests = prefixed_hashes(b"\x00", canonical)
    return pa.FixedSizeBinaryArray.from_buffers(LEAF_HASH_TYPE, len(canonical), [None, pa.py_buffer(digests)])
