"""Bulk SHA-256 (storage.log.batch_hash) agrees with hashlib on every input shape, both paths."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pytest

from storage.log.batch_hash import BULK_FROM, prefixed_hashes
from storage.log.canonical import hash_leaves


def _expected(prefix: bytes, values: list[bytes]) -> bytes:
    return b"".join(hashlib.sha256(prefix + v).digest() for v in values)


@pytest.mark.parametrize("count", [0, 1, BULK_FROM - 1, BULK_FROM, BULK_FROM + 1, 3000])
def test_binary_values_of_any_length_and_content(count: int) -> None:
    rng = random.Random(count)
    values = [rng.randbytes(rng.choice((0, 1, 31, 32, 55, 56, 64, 119, 2000))) for _ in range(count)]
    values[: min(count, 3)] = [b"", b"\x00", b"\x00\x01\xff"][: min(count, 3)]
    for prefix in (b"\x00", b"\x01", b""):
        assert prefixed_hashes(prefix, pa.array(values, pa.binary())) == _expected(prefix, values)


def test_strings_are_hashed_as_their_utf8_bytes_and_slices_are_respected() -> None:
    texts = ['{"a":"Übersicht 数据 \\u0000"}', "", "x" * 5000, "\U0001f600"] * 50
    array = pa.array(texts, pa.large_string())
    assert prefixed_hashes(b"\x00", array) == _expected(b"\x00", [t.encode() for t in texts])
    window = array.slice(7, 120)
    assert prefixed_hashes(b"\x00", window) == _expected(b"\x00", [t.encode() for t in texts[7:127]])


def test_nulls_are_refused() -> None:
    with pytest.raises(ValueError, match="never null"):
        prefixed_hashes(b"\x00", pa.array(["a", None] * 100))


@pytest.mark.parametrize("count", [5, 500])
def test_leaf_hashes_are_rfc6962_leaves(count: int) -> None:
    texts = [f'{{"i":{i}}}' for i in range(count)]
    leaves = hash_leaves(pa.array(texts))
    assert leaves.type == pa.binary(32)
    assert leaves.to_pylist() == [hashlib.sha256(b"\x00" + t.encode()).digest() for t in texts]
