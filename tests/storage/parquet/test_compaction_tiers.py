"""Compaction's size tiers: the files it picks bound how often a row is rewritten (issue 9).

The picking code runs as it does in the store, over file lists alone: merging is replaced by
listing one file of the inputs' rows, which is all the tiers look at.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import nullcontext
from pathlib import Path

import pytest

from storage.parquet.compaction import SMALLEST_TIER_ROWS, Compactor, tier_bounds
from storage.parquet.layout import DataFile, FileSet

PARTITION = "events/year=2026/month=11"


def _simulate(
    tmp_path: Path, threshold: int, max_rows: int, append_rows: int, appends: int
) -> tuple[float, int]:
    """(rows written per row appended, files left) after `appends` appends and every merge."""
    compactor = Compactor(FileSet(tmp_path), lambda: nullcontext(), threading.Lock(), threshold, max_rows)  # type: ignore[arg-type,return-value]
    files: list[DataFile] = []
    written = 0
    for i in range(appends):
        files.append(DataFile(f"{PARTITION}/a{i}.parquet", append_rows, 0, 1))
        written += append_rows
        while (tier := next(compactor._full_tiers(files), None)) is not None:
            assert len(tier) == max(2, threshold)
            files = [f for f in files if f not in tier]
            rows = sum(f.rows for f in tier)
            files.append(DataFile(f"{PARTITION}/m{i}-{len(files)}.parquet", rows, 0, 1))
            written += rows
    return written / (append_rows * appends), len(files)


def test_tiers_grow_geometrically_from_the_smallest_bound() -> None:
    assert tier_bounds(8, 4_000_000) == (0, 7812, 62500, 500000, 4000000)
    for t, top in ((2, 4_000_000), (4, 10_000_000), (16, 1_000_000)):
        bounds = tier_bounds(t, top)
        assert (bounds[0], bounds[-1]) == (0, top)
        assert bounds[1] >= SMALLEST_TIER_ROWS
        assert all(hi // t == lo for lo, hi in itertools.pairwise(bounds[1:]))


@pytest.mark.parametrize(("threshold", "append_rows"), [(8, 2000), (8, 4000), (4, 1000)])
def test_a_row_is_rewritten_about_once_per_tier(tmp_path: Path, threshold: int, append_rows: int) -> None:
    max_rows = 4_000_000
    amplification, left = _simulate(tmp_path, threshold, max_rows, append_rows, 10_000_000 // append_rows)
    tiers = len(tier_bounds(threshold, max_rows)) - 1
    # Written once by the append, then at most once per tier it passes through.
    assert amplification <= 1 + tiers
    # Fewer than `threshold` files wait in each tier; the rest are final (max_rows or more).
    assert left < tiers * threshold + 10_000_000 // max_rows + 1


def test_eight_files_of_group_commit_size_make_one_merge(tmp_path: Path) -> None:
    amplification, left = _simulate(tmp_path, 8, 4_000_000, 2000, 8)
    assert (amplification, left) == (2.0, 1)
