"""An in-memory index of the 64-bit hashes of every stored event_id, for cheap write-time dedup.

Why: an append must drop events whose id is already stored anywhere, but scanning the event_id
column of every file on each append costs O(stored rows). Hashes (8 bytes per event: 80 MB at 10 M)
answer "certainly new" for almost every row; only hash hits are confirmed exactly against the
files, so a hash collision can never drop a new event. The index is rebuilt from the files at open.

It is a tiny log-structured merge: sorted runs whose sizes shrink geometrically, so adding a batch
costs amortised O(batch * log(total)) and a lookup is one binary search per run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["HashIndex", "first_per_id"]

Hashes = npt.NDArray[np.uint64]


class HashIndex:
    """A multiset of uint64 hashes supporting bulk insert and bulk membership."""

    def __init__(self) -> None:
        self._runs: list[Hashes] = []

    def __len__(self) -> int:
        return sum(run.size for run in self._runs)

    def clear(self) -> None:
        """Forget every hash."""
        self._runs = []

    def add(self, hashes: Hashes) -> None:
        """Insert hashes; merges runs while the newest is at least half the size of the one before."""
        if hashes.size == 0:
            return
        self._runs.append(np.sort(hashes))
        while len(self._runs) >= 2 and self._runs[-2].size <= 2 * self._runs[-1].size:
            newest = self._runs.pop()
            merged = np.concatenate((self._runs.pop(), newest))
            merged.sort(kind="stable")
            self._runs.append(merged)

    def contains(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """A mask: True where the hash is (probably, by hash) already stored."""
        order = np.argsort(hashes)
        needles = hashes[order]  # sorted needles make the binary searches cache-friendly
        found = np.zeros(hashes.size, dtype=np.bool_)
        for run in self._runs:
            pos = np.searchsorted(run, needles)
            np.minimum(pos, run.size - 1, out=pos)
            found |= run[pos] == needles
        hit = np.empty_like(found)
        hit[order] = found
        return hit


def first_per_id(table: pa.Table, hashes: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The first row of every event_id in `table` (input order kept), and those rows' hashes.

    Distinct hashes prove distinct ids (the common case, one np.unique); otherwise the exact
    string grouping decides, so a hash collision never merges two ids.
    """
    if np.unique(hashes).size == table.num_rows:
        return table, hashes
    idx = pa.array(np.arange(table.num_rows, dtype=np.int64))
    firsts = (
        pa.table({"event_id": table.column("event_id"), "i": idx})
        .group_by("event_id", use_threads=False)
        .aggregate([("i", "min")])
    )
    keep = np.sort(firsts.column("i_min").to_numpy())
    return table.take(pa.array(keep)), hashes[keep]
