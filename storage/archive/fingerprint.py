"""The content fingerprint of a set of events: order-independent, computed alike by every engine.

Definition: the sum, modulo 2^64, over the events, of the first 8 bytes of MD5(event_id as UTF-8)
read as a little-endian unsigned integer. MD5 because both engines have it built in and agree on
it byte for byte (DuckDB's own `hash()` and ClickHouse's `cityHash64` differ from each other and
DuckDB does not promise its hash is stable across versions): ClickHouse computes
`sumWithOverflow(reinterpretAsUInt64(MD5(event_id)))`, DuckDB
`sum(md5_number(event_id) & (2^64 - 1))`, Python `int.from_bytes(md5(id).digest()[:8], "little")`.
Sums make it order-independent and additive: the fingerprint of two disjoint sets is the sum of
theirs, which is how a month's generations add up. It is a reconciliation check against lost or
doubled rows, not a defence against a forger (the files' sha256 in the manifest are that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

__all__ = ["MASK", "add", "fingerprint_of", "hex_fp", "parse_fp"]

MASK: Final = (1 << 64) - 1


def fingerprint_of(event_ids: Iterable[str]) -> int:
    """The fingerprint of some event ids, in plain Python (the reference the engines must match)."""
    total = 0
    for event_id in event_ids:
        total += int.from_bytes(hashlib.md5(event_id.encode()).digest()[:8], "little")  # noqa: S324 - a checksum
    return total & MASK


def add(*fps: int) -> int:
    """The fingerprint of the union of disjoint sets."""
    return sum(fps) & MASK


def hex_fp(fp: int) -> str:
    """16 hex digits, as manifests store it (JSON numbers lose precision past 2^53)."""
    return f"{fp & MASK:016x}"


def parse_fp(text: str) -> int:
    """Inverse of `hex_fp`."""
    return int(text, 16) & MASK
