"""The benchmarks' shared data and timing: one year of demo events in 1M-event chunks, warm timings."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable, Iterator

import pyarrow as pa

from analytics.demo import generate_events

__all__ = ["CHUNK", "chunk_count", "chunks", "demo_chunk", "timed"]

START = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
CHUNK = 1_000_000
YEAR_DAYS = 360


def chunk_count(total: int) -> int:
    """How many chunks `total` events take."""
    return max(1, -(-total // CHUNK))


def demo_chunk(total: int, k: int) -> pa.Table:
    """Chunk `k` of `chunks(total)` without generating the ones before it."""
    days = max(1, YEAR_DAYS // chunk_count(total))
    n = min(CHUNK, total - k * CHUNK)
    start = START + dt.timedelta(days=k * days)
    return generate_events(n, seed=k, start=start, days=days, users=200, workbooks=2000)


def chunks(total: int) -> Iterator[pa.Table]:
    """`total` demo events in chunks of CHUNK, each a later slice of one year, in time order."""
    for k in range(chunk_count(total)):
        yield demo_chunk(total, k)


def timed(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """(best, median) warm wall time of `fn` in ms, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return min(samples), statistics.median(samples)
