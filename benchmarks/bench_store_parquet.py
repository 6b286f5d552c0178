"""Benchmark ParquetStore: append throughput and latency in 20k-row batches, then the read paths.

Run on demand: `python -m benchmarks.bench_store_parquet --events 10000000 [--root DIR]`.
Events come from `analytics.demo.generate_events` (realistic sessions, Zipf users/workbooks, deep
cell histories), generated in chunks of one million, each chunk a later stretch of one year, and
loaded through `append()` in time order as an ingest would see them. Results are appended to
benchmarks/results/store_parquet.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.demo_data import chunk_count, chunks, demo_chunk, timed
from storage.base import EventFilter, Page
from storage.parquet.store import ParquetStore

RESULTS = Path(__file__).parent / "results" / "store_parquet.txt"


def load(store: ParquetStore, total: int, batch_rows: int) -> tuple[float, list[float], pa.Table]:
    """Append `total` events; returns (seconds appending, per-append ms, the last chunk)."""
    latencies: list[float] = []
    last = pa.table({})
    for chunk in chunks(total):
        last = chunk
        for first in range(0, chunk.num_rows, batch_rows):
            part = chunk.slice(first, batch_rows)
            t0 = time.perf_counter()
            store.append(part)
            latencies.append((time.perf_counter() - t0) * 1000)
    return sum(latencies) / 1000, latencies, last


def run(total: int, root: Path, batch_rows: int) -> list[str]:
    """Load, then time the read paths; returns the report lines."""
    store = ParquetStore(root)
    store.open()
    lines = [f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} events={total:,} batch={batch_rows:,} root={root}"]
    try:
        append_s, lat, last = load(store, total, batch_rows)
        q = np.percentile(lat, [50, 95, 99])
        lines.append(
            f"append: {append_s:.1f} s -> {total / append_s:,.0f} events/s; per append "
            f"p50 {q[0]:.0f} ms, p95 {q[1]:.0f} ms, p99 {q[2]:.0f} ms, max {max(lat):.0f} ms"
        )
        t0 = time.perf_counter()
        store.compact()
        files = store._files.manifest.files
        lines.append(f"final compaction wait {time.perf_counter() - t0:.1f} s; {len(files)} files")
        tail = last.slice(last.num_rows - batch_rows)
        t0 = time.perf_counter()
        dup = store.append(tail)
        lines.append(f"re-append of a stored batch: {(time.perf_counter() - t0) * 1000:.0f} ms, {dup}")
        lines += reads(store, last)
    finally:
        store.close()
    t0 = time.perf_counter()
    store.open()
    lines.append(f"reopen (index rebuild): {(time.perf_counter() - t0) * 1000:.0f} ms")
    store.close()
    return lines


def reads_only(total: int, root: Path) -> list[str]:
    """Time the read paths over a store loaded earlier by `run` with the same `total`."""
    last = demo_chunk(total, chunk_count(total) - 1)
    store = ParquetStore(root)
    t0 = time.perf_counter()
    store.open()
    lines = [f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} events={total:,} reads only, root={root}"]
    lines.append(f"open (index rebuild): {(time.perf_counter() - t0) * 1000:.0f} ms")
    try:
        lines += reads(store, last)
    finally:
        store.close()
    return lines


def _cells(sample: pa.Table) -> tuple[tuple[str, str, str], tuple[str, str, str], int]:
    """The most edited cell of `sample` and one edited only once there, plus the hot cell's count."""
    keys = ["workbook_name", "sheet_name", "cell_address"]
    edits = sample.select(keys).filter(pc.is_valid(sample.column("cell_address")))
    counts = edits.group_by(keys).aggregate([([], "count_all")]).sort_by([("count_all", "descending")])
    hot, rare = counts.slice(0, 1).to_pylist()[0], counts.slice(counts.num_rows - 1).to_pylist()[0]
    return tuple(hot[k] for k in keys), tuple(rare[k] for k in keys), hot["count_all"]


def reads(store: ParquetStore, sample: pa.Table) -> list[str]:
    """Warm best/median of the benchmark's read paths."""
    row = sample.slice(sample.num_rows - 1, 1).to_pylist()[0]
    day = row["timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day.replace(day=1)
    month = EventFilter(start=month_start, end=(month_start + dt.timedelta(days=32)).replace(day=1))
    week = EventFilter(start=day - dt.timedelta(days=6, hours=5), end=day + dt.timedelta(hours=13))
    page_filter = EventFilter(start=day, end=day + dt.timedelta(days=1), user_names=(row["user_name"],))
    hot, rare, depth = _cells(sample)
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("stats (all, top 10)", lambda: store.stats(EventFilter(), 10), 7),
        ("stats (one calendar month)", lambda: store.stats(month, 10), 7),
        ("stats (7 days, unaligned)", lambda: store.stats(week, 10), 7),
        (
            "stats (all, one user: scan)",
            lambda: store.stats(EventFilter(user_names=(row["user_name"],)), 10),
            3,
        ),
        ("page (one user, one day, 100 rows)", lambda: store.query(page_filter, Page(limit=100)), 20),
        (f"cell history (hot cell, {depth}+ events, 100)", lambda: store.cell_history(*hot, 100), 20),
        ("cell history (rare cell, 100)", lambda: store.cell_history(*rare, 100), 20),
        ("get_event", lambda: store.get_event(row["event_id"]), 10),
        (
            "timeseries (all, day x event_type)",
            lambda: store.timeseries(EventFilter(), "day", "event_type"),
            5,
        ),
        ("timeseries (month, hour)", lambda: store.timeseries(month, "hour", None), 5),
    ]
    out = []
    for name, fn, repeat in cases:
        best, median = timed(fn, repeat)
        out.append(f"{name}: best {best:.1f} ms, median {median:.1f} ms")
    return out


def main() -> None:
    """CLI entry: parse arguments, run, print and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--root", type=Path, default=None, help="store directory (default: a temp dir)")
    parser.add_argument("--reads-only", action="store_true", help="time reads of a store loaded in --root")
    parser.add_argument("--note", default="", help="a line of context written with the results")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-parquet-"))
    try:
        store_root = root / "store"
        lines = (
            reads_only(args.events, store_root)
            if args.reads_only
            else run(args.events, store_root, args.batch)
        )
    finally:
        if args.root is None and not args.reads_only:
            shutil.rmtree(root, ignore_errors=True)
    if args.note:
        lines.insert(1, f"# {args.note}")
    print("\n".join(lines))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
