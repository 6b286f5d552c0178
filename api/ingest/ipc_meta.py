"""Sizes of an Arrow IPC record batch, read from its flatbuffer metadata before any buffer is touched.

pyarrow decompresses a record batch's buffers as it reads the batch, so a 10 KB zstd body can ask
for gigabytes before any check could run. The metadata says it all beforehand: the batch's row
count and, per buffer, its place in the message body; a compressed buffer starts with its decoded
length (int64, -1: stored uncompressed). Only the few fields needed are read, each bounds-checked
(format: Arrow's Message.fbs / Schema.fbs; flatbuffers tables reached through their vtables).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

__all__ = ["BatchExtent", "MetadataError", "batch_extent"]

_RECORD_BATCH: Final = 3  # MessageHeader union: Schema 1, DictionaryBatch 2, RecordBatch 3
_NODE_OR_BUFFER: Final = 16  # both are structs of two int64


class MetadataError(ValueError):
    """The metadata is not a well-formed record batch header."""


@dataclass(frozen=True, slots=True)
class BatchExtent:
    """A record batch's rows, buffer count and decoded size of its buffers in bytes."""

    rows: int
    buffers: int
    decoded_bytes: int


def _unpack(fmt: str, data: bytes | memoryview, position: int) -> int:
    if position < 0 or position + struct.calcsize(fmt) > len(data):
        raise MetadataError("offset out of range")
    value: int = struct.unpack_from(fmt, data, position)[0]
    return value


class _Table:
    """A flatbuffers table: fields found through its vtable; an absent field has its default."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position
        self.vtable = position - _unpack("<i", data, position)
        self.vtable_size = _unpack("<H", data, self.vtable)

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size:
            return None
        offset = _unpack("<H", self.data, self.vtable + slot)
        return self.position + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int) -> int:
        at = self._field(index)
        return default if at is None else _unpack(fmt, self.data, at)

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.data, at + _unpack("<I", self.data, at))

    def vector(self, index: int, item_size: int) -> tuple[int, int]:
        """(start, count) of a vector of fixed-size items; (0, 0) when absent."""
        at = self._field(index)
        if at is None:
            return 0, 0
        where = at + _unpack("<I", self.data, at)
        count = _unpack("<I", self.data, where)
        if where + 4 + count * item_size > len(self.data):
            raise MetadataError("vector out of range")
        return where + 4, count


def batch_extent(message: pa.ipc.Message, max_buffers: int) -> BatchExtent:
    """Rows and decoded buffer bytes of a record batch message, without reading its buffers' data.

    Raises:
        MetadataError: malformed metadata, a buffer outside the body, or more than `max_buffers`
            buffers (the schema's flat columns bound how many a batch may have).
    """
    data = message.metadata.to_pybytes()
    body = memoryview(message.body) if message.body is not None else memoryview(b"")
    root = _Table(data, _unpack("<I", data, 0))
    if root.scalar(1, "<B", 0) != _RECORD_BATCH:
        raise MetadataError("not a record batch")
    batch = root.table(2)
    if batch is None:
        raise MetadataError("record batch header missing")
    rows = batch.scalar(0, "<q", 0)
    start, count = batch.vector(2, _NODE_OR_BUFFER)
    if rows < 0 or count > max_buffers:
        raise MetadataError(f"{count} buffers, {rows} rows")
    compressed = batch.table(3) is not None
    decoded = 0
    for index in range(count):
        offset = _unpack("<q", data, start + index * _NODE_OR_BUFFER)
        length = _unpack("<q", data, start + index * _NODE_OR_BUFFER + 8)
        if offset < 0 or length < 0 or offset + length > len(body):
            raise MetadataError("buffer outside the message body")
        if compressed and length >= 8:
            expanded = _unpack("<q", body, offset)
            if expanded < -1:
                raise MetadataError("negative decoded buffer length")
            decoded += length - 8 if expanded == -1 else expanded
        else:
            decoded += length
    return BatchExtent(rows, count, decoded)
