"""Leaf and subtree hashes of the log, persisted beside the data so proofs need no rebuild.

Layout of the directory (one file per stored level, 32-byte hashes back to back, append-only):

    level-00.bin   every leaf hash, leaf i at byte 32*i
    level-04.bin   every perfect subtree of 16 leaves, node j = MTH(leaves[16j : 16j+16])
    level-05.bin   ... and so on, one file per level >= STORED_FROM

Levels 1-3 are not stored (they would cost 7/8 of the leaf file again): a node there is hashed
from at most 8 consecutive leaves read in one `pread`. So the files hold 32 B x 1.125 per event
(360 MB at 10M events), and any hash a proof needs is one read plus at most 7 SHA-256 calls:
an inclusion or consistency proof at 10M leaves is ~24 reads (see benchmarks/bench_log.py).

The files are derived state: the stores keep `leaf_hash` with each event, in the events' own
commit unit. `open` repairs torn tails (a partial hash, a level ahead of or behind the leaves)
and `truncate`/`append` let the owner bring the files to exactly the store's committed size at
start, so no crash leaves a proof served from hashes the store does not hold.

For ClickHouse the same two kinds of rows go in tables instead of files (one writer assigns leaf
indexes): `log_nodes(level UInt8, idx UInt64, hash FixedString(32)) ORDER BY (level, idx)` for
levels >= 4, and leaf hashes read from the events' `leaf_hash` through a projection ordered by
`leaf_index`; `SubtreeHash` is then one primary-key lookup per hash.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Final

from storage.log.frontier import Frontier
from storage.log.merkle import EMPTY_ROOT, HASH_SIZE, consistency_proof, inclusion_proof, node_hash

__all__ = ["STORED_FROM", "TreeFiles"]

#: Lowest stored level above the leaves; levels 1..STORED_FROM-1 are recomputed from leaves.
STORED_FROM: Final = 4
_MAX_LEVEL: Final = 64


class TreeFiles:
    """The log's Merkle tree on disk: append leaf hashes, read any subtree hash, build proofs.

    One writer appends (the store's commit path); any number of threads may read proofs for
    sizes up to `size` concurrently, since files are only ever appended and read with `pread`.
    """

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable
        self._lock = threading.Lock()
        self._fd_lock = threading.Lock()
        self._fds: dict[int, int] = {}
        directory.mkdir(parents=True, exist_ok=True)
        size = self._count(0)
        self._truncate_level(0, size)
        self._repair_levels(size)
        # One tuple, replaced whole: a reader never sees a size with another size's frontier.
        self._state = (size, self._frontier_at(size))

    # ---- public -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._state[0]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all)."""
        current, frontier = self._state
        n = current if size is None else size
        self._check_size(n)
        if n == current:
            return frontier.root()
        return EMPTY_ROOT if n == 0 else self.subtree(0, n)

    def frontier(self) -> Frontier:
        """A copy of the compact range at the current size."""
        return self._state[1].copy()

    def leaf(self, index: int) -> bytes:
        """The hash of leaf `index`."""
        self._check_size(index + 1)
        return self._read(0, index, 1)[0]

    def leaves(self, first: int, count: int) -> bytes:
        """Leaf hashes first .. first+count-1, back to back (one read; exports copy them)."""
        self._check_size(first + count)
        data = os.pread(self._fd(0), count * HASH_SIZE, first * HASH_SIZE)
        if len(data) != count * HASH_SIZE:
            raise ValueError(f"level 0 holds no hashes {first}..{first + count - 1}")
        return data

    def append(self, leaf_hashes: list[bytes]) -> bytes:
        """Append leaf hashes (in leaf-index order) and return the new root."""
        if set(map(len, leaf_hashes)) - {HASH_SIZE}:
            raise ValueError("every leaf hash must be 32 bytes")
        with self._lock:
            frontier = self._state[1].copy()
            created = frontier.append(leaf_hashes)
            # Upper levels first, leaves last: the leaf file's length is the committed size.
            for level in sorted(created, reverse=True):
                if level == 0 or level >= STORED_FROM:
                    first, hashes = created[level]
                    self._write(level, first, hashes)
            self._state = (frontier.size, frontier)
            return frontier.root()

    def truncate(self, size: int) -> None:
        """Drop every leaf from `size` on (used when the files are ahead of the store)."""
        with self._lock:
            self._check_size(size)
            self._truncate_level(0, size)
            for level in self._stored_levels():
                self._truncate_level(level, size >> level)
            self._state = (size, self._frontier_at(size))

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(leaves[start:end]) for 0 <= start < end <= size."""
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) is not inside a tree of size {self.size}")
        blocks: list[bytes] = []
        while start < end:
            level = min(
                (start & -start).bit_length() - 1 if start else _MAX_LEVEL, (end - start).bit_length() - 1
            )
            blocks.append(self.perfect(level, start >> level))
            start += 1 << level
        acc = blocks[-1]
        for h in reversed(blocks[:-1]):
            acc = node_hash(h, acc)
        return acc

    def perfect(self, level: int, index: int) -> bytes:
        """Root of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""
        if level == 0 or level >= STORED_FROM:
            return self._read(level, index, 1)[0]
        nodes = self._read(0, index << level, 1 << level)
        while len(nodes) > 1:
            nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        return nodes[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 inclusion proof of leaf `index` in the tree of `size` (default: current)."""
        n = self.size if size is None else size
        self._check_size(n)
        return inclusion_proof(index, n, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 consistency proof from `old_size` to `new_size` (default: current)."""
        n = self.size if new_size is None else new_size
        self._check_size(n)
        return consistency_proof(old_size, n, self.subtree)

    def close(self) -> None:
        """Close the open files."""
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    # ---- files --------------------------------------------------------------------------------

    def _path(self, level: int) -> Path:
        return self.directory / f"level-{level:02d}.bin"

    def _fd(self, level: int) -> int:
        fd = self._fds.get(level)
        if fd is None:
            with self._fd_lock:
                fd = self._fds.get(level)
                if fd is None:
                    fd = os.open(self._path(level), os.O_RDWR | os.O_CREAT, 0o644)
                    self._fds[level] = fd
        return fd

    def _count(self, level: int) -> int:
        return os.fstat(self._fd(level)).st_size // HASH_SIZE

    def _stored_levels(self) -> list[int]:
        found = []
        for path in self.directory.glob("level-*.bin"):
            level = int(path.stem.split("-")[1])
            if level >= STORED_FROM:
                found.append(level)
        return sorted(found)

    def _read(self, level: int, index: int, count: int) -> list[bytes]:
        data = os.pread(self._fd(level), count * HASH_SIZE, index * HASH_SIZE)
        if len(data) != count * HASH_SIZE:
            raise ValueError(f"level {level} holds no hashes {index}..{index + count - 1}")
        return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]

    def _write(self, level: int, first: int, hashes: list[bytes]) -> None:
        fd = self._fd(level)
        os.pwrite(fd, b"".join(hashes), first * HASH_SIZE)
        if self.durable:
            os.fsync(fd)

    def _truncate_level(self, level: int, count: int) -> None:
        if self._count(level) != count or os.fstat(self._fd(level)).st_size % HASH_SIZE:
            os.ftruncate(self._fd(level), min(self._count(level), count) * HASH_SIZE)

    def _repair_levels(self, size: int) -> None:
        """Bring every stored level to exactly size >> level nodes (torn writes, a crash)."""
        for level in range(STORED_FROM, max(size.bit_length(), STORED_FROM)):
            want = size >> level
            self._truncate_level(level, want)
            have = self._count(level)
            if have < want:
                self._write(level, have, [self._compute(level, j) for j in range(have, want)])
        for level in self._stored_levels():
            if size >> level == 0:
                self._truncate_level(level, 0)

    def _compute(self, level: int, index: int) -> bytes:
        below = level - 1
        if below == 0 or below >= STORED_FROM:
            left, right = self._read(below, 2 * index, 2)
        else:
            left, right = self.perfect(below, 2 * index), self.perfect(below, 2 * index + 1)
        return node_hash(left, right)

    def _frontier_at(self, size: int) -> Frontier:
        levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
        return Frontier.from_nodes(size, [self.perfect(lvl, (size >> lvl) - 1) for lvl in levels])

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"the log holds {self.size} leaves, not {size}")
