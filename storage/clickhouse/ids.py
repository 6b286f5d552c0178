"""An in-process filter of every stored event_id, for the embedded engine's single writer.

Why: "which of these 20,000 ids are stored already?" is asked on every append. Event ids are
random UUIDs, so a batch's ids land in nearly every granule of the id index: at 1 M stored ids the
exact engine lookup reads the whole index (60-400 ms a batch) and it grows with the table. In the
embedded engine this process is the only writer of its data path (chdb opens one path per
process), so it can remember what it stored: 64-bit hashes of all stored ids in sorted numpy runs
(8 bytes an event: 80 MB at 10 M events). A batch is probed with `searchsorted`, in about a
millisecond; only the ids whose hash is present (re-sent ids, or a one-in-2^64 collision) go
to the exact lookup in the engine. A hash is added *before* its rows are inserted, so a failed
or unknown insert only makes its ids "maybe stored", which the exact lookup settles.

The filter is loaded from audit_events' event_id column when the store opens (a scan, ~1 s per
10 M ids) and shared by every store object of the same (data path, database) in the process.
Several writers (HTTP DSN, possibly many API replicas) cannot use it: there the store asks the
engine for every id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa

__all__ = ["IdFilter", "WriterState", "hash_ids", "writer_state"]

_FNV_OFFSET: Final = np.uint64(0xCBF29CE484222325)
_FNV_PRIME: Final = np.uint64(0x100000001B3)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads FNV's weak high bits over the whole word."""
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


def _hash_rows(rows: np.ndarray) -> np.ndarray:
    """FNV-1a over 8-byte words of each row of a (n, width) byte matrix, then mixed."""
    n, width = rows.shape
    pad = -width % 8
    if pad:
        rows = np.concatenate([rows, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    words = np.ascontiguousarray(rows).view(np.uint64)
    h = np.full(n, _FNV_OFFSET ^ np.uint64(width), dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= _FNV_PRIME
    return _mix(h)


def hash_ids(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of every string, vectorised (one matrix per distinct length)."""
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    first = int(lengths[0])
    if (lengths == first).all():  # canonical UUID text: one contiguous (n, 36) matrix
        return _hash_rows(data[offsets[0] : offsets[-1]].reshape(n, first))
    out = np.empty(n, dtype=np.uint64)
    for width in np.unique(lengths).tolist():
        sel = np.flatnonzero(lengths == width)
        cols = offsets[sel][:, None] + np.arange(width, dtype=np.int64)
        out[sel] = _hash_rows(data[cols].reshape(len(sel), width))
    return out


@dataclass(frozen=True, slots=True)
class _Run:
    """A sorted run of hashes plus a directory: bucket b (the top `bits` bits) is keys[dir[b]:dir[b+1]].

    The directory turns a probe into one jump and a search inside a bucket of ~4 keys (one or two
    cache lines) instead of a 23-level binary search that misses the cache at every low level.
    """

    keys: np.ndarray
    dir: np.ndarray
    bits: int

    @classmethod
    def of(cls, keys: np.ndarray) -> _Run:
        bits = max(1, min(32, len(keys).bit_length() - 2))
        counts = np.bincount((keys >> np.uint64(64 - bits)).astype(np.int64), minlength=1 << bits)
        directory = np.zeros((1 << bits) + 1, dtype=np.int64 if len(keys) >= 1 << 31 else np.int32)
        np.cumsum(counts, out=directory[1:])
        return cls(keys, directory, bits)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        bucket = (hashes >> np.uint64(64 - self.bits)).astype(np.int64)
        lo = self.dir[bucket]
        hi = self.dir[bucket + 1]
        last = len(self.keys) - 1
        while True:  # branch-free binary search of every probe at once, inside its bucket
            open_ = lo < hi
            if not open_.any():
                break
            mid = (lo + hi) >> 1
            below = self.keys[np.minimum(mid, last)] < hashes
            lo = np.where(open_ & below, mid + 1, lo)
            hi = np.where(open_ & ~below, mid, hi)
        hit: np.ndarray = self.keys[np.minimum(lo, last)] == hashes
        return hit


@dataclass(slots=True)
class IdFilter:
    """A set of 64-bit hashes as a few sorted runs, merged like a binary counter.

    Adding a batch appends a small sorted run; a run is merged into its predecessor while that
    one is at most twice its size, so there are O(log n) runs and each hash is copied O(log n)
    times in all (concatenating two sorted runs and sorting stably is a linear merge).
    """

    runs: list[_Run] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(r.keys) for r in self.runs)

    def add(self, hashes: np.ndarray) -> None:
        """Remember `hashes` (any order, repeats allowed)."""
        if len(hashes) == 0:
            return
        keys = np.sort(hashes)  # repeats are harmless: a probe finds one of them
        while self.runs and len(self.runs[-1].keys) <= 2 * len(keys):
            keys = np.concatenate([self.runs.pop().keys, keys])
            keys.sort(kind="stable")
        self.runs.append(_Run.of(keys))

    def maybe_contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: True where the hash was added (the id may be stored)."""
        found = np.zeros(len(hashes), dtype=bool)
        for run in self.runs:
            found |= run.contains(hashes)
        return found


@dataclass(slots=True)
class WriterState:
    """What the single writer of one (data path, database) shares between its store objects."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    ids: IdFilter | None = None

    def load(self, chunks: Iterable[pa.Array | pa.ChunkedArray]) -> IdFilter:
        """Build the filter from every stored id (called once, under `lock`)."""
        flt = IdFilter()
        parts = [hash_ids(chunk) for chunk in chunks]
        flt.add(np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64))
        self.ids = flt
        return flt


_STATES: dict[tuple[str, str], WriterState] = {}
_STATES_LOCK: Final = threading.Lock()


def writer_state(path: str, database: str) -> WriterState:
    """The process-wide writer state of one embedded database."""
    with _STATES_LOCK:
        return _STATES.setdefault((path, database), WriterState())
