"""read_body and content_kind against a real Starlette Request (scope + receive), no app or store."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
import zstandard
from starlette.requests import Request
from starlette.types import Message

from api.errors import ApiError
from api.ingest.body import content_kind, read_body

LIMIT = 1024 * 1024


def request(chunks: list[bytes], encoding: str | None = None) -> Request:
    headers = [] if encoding is None else [(b"content-encoding", encoding.encode())]
    scope = {"type": "http", "method": "POST", "path": "/api/events", "headers": headers, "query_string": b""}
    pending = iter(chunks)

    async def receive() -> Message:
        chunk = next(pending, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return Request(scope, receive)


def read(chunks: list[bytes], encoding: str | None = None, max_bytes: int = LIMIT) -> bytes:
    return asyncio.run(read_body(request(chunks, encoding), max_bytes=max_bytes))


def split(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def error(chunks: list[bytes], encoding: str | None = None, max_bytes: int = LIMIT) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        read(chunks, encoding, max_bytes)
    return info.value.status, info.value.code


PAYLOAD = b'{"events": []}' * 5000


@pytest.mark.parametrize("encoding", [None, "identity", "gzip", "x-gzip", "zstd", "GZIP", "identity, gzip"])
def test_round_trip(encoding: str | None) -> None:
    if encoding is None or encoding == "identity":
        data = PAYLOAD
    elif "gzip" in encoding.lower():
        data = gzip.compress(PAYLOAD)
    else:
        data = zstandard.ZstdCompressor().compress(PAYLOAD)
    assert read(split(data), encoding) == PAYLOAD


def test_concatenated_members_and_frames() -> None:
    assert read(split(gzip.compress(b"ab") + gzip.compress(b"cd"), 3), "gzip") == b"abcd"
    zstd = zstandard.ZstdCompressor()
    assert read(split(zstd.compress(b"ab") + zstd.compress(b"cd"), 3), "zstd") == b"abcd"


def test_limit_is_inclusive_on_raw_and_decompressed_size() -> None:
    assert read([b"x" * 100], max_bytes=100) == b"x" * 100
    assert error([b"x" * 101], max_bytes=100) == (413, "payload_too_large")
    assert read([gzip.compress(b"x" * 100)], "gzip", max_bytes=100) == b"x" * 100
    assert error([gzip.compress(b"x" * 101)], "gzip", max_bytes=100) == (413, "payload_too_large")
    assert error([zstandard.ZstdCompressor().compress(b"x" * 101)], "zstd", max_bytes=100)[0] == 413


def _gzip_bomb(size: int) -> Iterator[bytes]:
    """A gzip stream of `size` zero bytes, produced incrementally (never held uncompressed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    for _ in range(size // len(block)):
        yield compressor.compress(block)
    yield compressor.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return b"".join(_gzip_bomb(1024**3))


@pytest.fixture(scope="module")
def zstd_bomb() -> bytes:
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(1024)]
    return b"".join([*parts, compressor.flush()])


@pytest.mark.parametrize(("bomb", "encoding"), [("gzip_bomb", "gzip"), ("zstd_bomb", "zstd")])
def test_compression_bomb_refused_without_expanding(
    bomb: str, encoding: str, request: pytest.FixtureRequest
) -> None:
    data: bytes = request.getfixturevalue(bomb)
    assert len(data) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        assert error(split(data, 64 * 1024), encoding, max_bytes=LIMIT) == (413, "payload_too_large")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(PAYLOAD)[:-20], "gzip"),
        (b"not zstd at all", "zstd"),
        (zstandard.ZstdCompressor().compress(PAYLOAD)[:-5], "zstd"),
    ],
)
def test_corrupt_or_truncated(data: bytes, encoding: str) -> None:
    assert error(split(data), encoding) == (400, "invalid_body")


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, zstd"])
def test_unknown_encoding(encoding: str) -> None:
    assert error([b"{}"], encoding) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        (None, "json"),
        ("", "json"),
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON;charset=UTF-8", "json"),
        ("application/x-ndjson", "ndjson"),
        ("application/ndjson", "ndjson"),
        ("application/jsonl", "ndjson"),
        ("application/vnd.apache.arrow.stream", "arrow"),
    ],
)
def test_content_kind(content_type: str | None, kind: str) -> None:
    assert content_kind(content_type) == kind


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/vnd.apache.parquet", "json"]
)
def test_content_kind_unsupported(content_type: str) -> None:
    with pytest.raises(ApiError) as info:
        content_kind(content_type)
    assert (info.value.status, info.value.code) == (415, "unsupported_media_type")
