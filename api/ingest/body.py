"""Read a request body under a byte budget, decompressing incrementally, and classify its Content-Type.

The budget applies to the raw stream and to the decompressed output as it is produced: a gzip or
zstd bomb is refused after at most `max_bytes` (+ one chunk) of output, never expanded in memory.
"""

from __future__ import annotations

import zlib
from typing import Final, Literal, Protocol

import zstandard
from starlette.requests import Request

from api.errors import ApiError
from api.ingest.body_errors import invalid_body

__all__ = ["content_kind", "read_body"]

_KINDS: Final[dict[str, Literal["json", "ndjson", "arrow"]]] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/vnd.apache.arrow.stream": "arrow",
}


class _Decompressor(Protocol):
    def feed(self, data: bytes, limit: int) -> bytes: ...
    def finish(self, limit: int) -> bytes: ...


def content_kind(content_type: str | None) -> Literal["json", "ndjson", "arrow"]:
    """Body format from Content-Type (parameters such as charset ignored); missing means JSON.

    Raises:
        ApiError: 415 `unsupported_media_type` for any other type.
    """
    if content_type is None or not content_type.strip():
        return "json"
    media = content_type.split(";", 1)[0].strip().lower()
    kind = _KINDS.get(media)
    if kind is None:
        raise ApiError(415, "unsupported_media_type", f"unsupported Content-Type {media!r}")
    return kind


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The whole body, decompressed per Content-Encoding, at most `max_bytes` raw and decompressed.

    Raises:
        ApiError: 413 `payload_too_large`, 415 `unsupported_media_type` (unknown encoding),
            400 `invalid_body` (corrupt or truncated gzip/zstd).
    """
    decompressor = _decompressor(request.headers.get("content-encoding"))
    parts: list[bytes] = []
    raw_size = size = 0
    async for chunk in request.stream():
        raw_size += len(chunk)
        _check(raw_size, max_bytes)
        data = chunk if decompressor is None else decompressor.feed(chunk, max_bytes - size + 1)
        size += len(data)
        _check(size, max_bytes)
        parts.append(data)
    if decompressor is not None:
        tail = decompressor.finish(max_bytes - size + 1)
        size += len(tail)
        _check(size, max_bytes)
        parts.append(tail)
    return b"".join(parts)


def _check(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ApiError(413, "payload_too_large", f"body is larger than {max_bytes} bytes")


def _decompressor(encoding: str | None) -> _Decompressor | None:
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
        return _Gzip()
    if len(codings) == 1 and codings[0] == "zstd":
        return _Zstd()
    raise ApiError(415, "unsupported_media_type", f"unsupported Content-Encoding {encoding!r}")


class _Gzip:
    """Incremental gzip (also concatenated members) with bounded output per call."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        try:
            while data and len(out) < limit:
                out += self._inflate.decompress(data, limit - len(out))
                data = self._inflate.unconsumed_tail
                if self._inflate.eof and self._inflate.unused_data:
                    data = self._inflate.unused_data + data
                    self._inflate = zlib.decompressobj(wbits=31)
        except zlib.error as exc:
            raise invalid_body(f"corrupt gzip body: {exc}") from None
        return bytes(out)

    def finish(self, limit: int) -> bytes:
        if not self._inflate.eof:
            raise invalid_body("truncated gzip body")
        return b""


class _Zstd:
    """Incremental zstd (also concatenated frames) with bounded output per call.

    zstandard's decompressobj has no output cap, so input is fed in small slices: one slice of RLE
    blocks expands to at most ~128x its size, which bounds the overshoot past the limit.
    """

    _SLICE: Final = 256

    def __init__(self) -> None:
        self._context = zstandard.ZstdDecompressor()
        self._frame = self._context.decompressobj()
        self._in_frame = False

    def feed(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        view = memoryview(data)
        try:
            while view and len(out) < limit:
                piece, view = view[: self._SLICE], view[self._SLICE :]
                self._in_frame = True
                out += self._frame.decompress(piece)
                if self._frame.eof:
                    rest = self._frame.unused_data
                    self._frame = self._context.decompressobj()
                    self._in_frame = False
                    if rest:
                        out += self.feed(rest, limit - len(out))
        except zstandard.ZstdError as exc:
            raise invalid_body(f"corrupt zstd body: {exc}") from None
        return bytes(out)

    def finish(self, limit: int) -> bytes:
        if self._in_frame:
            raise invalid_body("truncated zstd body")
        return b""
