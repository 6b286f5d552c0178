"""Benchmark ParquetStore: append throughput in 20k-row batches, then stats, a page, a cell history.

Run on demand: `python -m benchmarks.bench_store_parquet --events 10000000 [--root DIR]`.
Events are generated column-wise (no per-row Python objects) in time order over one year, as an
ingest would see them. Results are appended to benchmarks/results/store_parquet.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from storage.base import EventFilter, Page
from storage.parquet_store import ParquetStore
from storage.schema import EVENT_SCHEMA

RESULTS = Path(__file__).parent / "results" / "store_parquet.txt"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN_US = 365 * 86_400 * 1_000_000
USERS = np.array([f"CORP\\user{i:03d}" for i in range(200)], dtype=object)
WORKBOOKS = np.array([f"\\\\share\\finance\\book{i:04d}.xlsx" for i in range(2000)], dtype=object)
TYPES = np.array(
    ["cell_change"] * 6 + ["formula_change", "workbook_open", "workbook_save", "macro_run"], dtype=object
)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random canonical lowercase UUID texts, built as one byte matrix."""
    digits = HEX[rng.integers(0, 16, (n, 32), dtype=np.uint8)]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = {0: 8, 8: 4, 12: 4, 16: 4, 20: 12}[src]
        out[:, dst : dst + width] = digits[:, src : src + width]
    return pa.array(out.view("S36").ravel()).cast(pa.string())


def batch(rng: np.random.Generator, first: int, n: int, total: int) -> pa.Table:
    """Events first..first+n of `total`, spread evenly over a year."""
    idx = np.arange(first, first + n, dtype=np.int64)
    ts = START.timestamp() * 1e6 + idx * (SPAN_US // total)
    user = rng.integers(0, len(USERS), n)
    cells = np.char.add(
        np.array(list("ABCDEFGH"))[rng.integers(0, 8, n)], rng.integers(1, 200, n).astype(str)
    )
    attrs = pa.MapArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)),
        pa.array(["AddinVersion"] * n),
        pa.array(['"3.4.1.0"'] * n),
    )
    cols = {
        "event_id": uuids(rng, n),
        "timestamp": pa.array(ts.astype(np.int64), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "event_type": pa.array(TYPES[rng.integers(0, len(TYPES), n)], pa.string()),
        "user_name": pa.array(USERS[user], pa.string()),
        "machine_name": pa.array(np.char.add("PC-", (user % 150).astype(str)).astype(object), pa.string()),
        "session_id": pa.array(np.char.add("sess-", (idx // 40).astype(str)).astype(object), pa.string()),
        "workbook_name": pa.array(WORKBOOKS[rng.integers(0, len(WORKBOOKS), n)], pa.string()),
        "sheet_name": pa.array(
            np.char.add("Sheet", rng.integers(1, 4, n).astype(str)).astype(object), pa.string()
        ),
        "cell_address": pa.array(cells.astype(object), pa.string()),
        "old_value": pa.array(rng.integers(0, 1000, n).astype(str).astype(object), pa.string()),
        "new_value": pa.array(rng.integers(0, 1000, n).astype(str).astype(object), pa.string()),
        "formula": pa.nulls(n, pa.string()),
        "correlation_id": pa.nulls(n, pa.string()),
        "attributes": attrs,
        "received_at": pa.array(ts.astype(np.int64), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "batch_id": pa.array(["bench"] * n),
    }
    return pa.table(cols).cast(EVENT_SCHEMA)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn` in ms, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def load(store: ParquetStore, total: int, batch_rows: int) -> tuple[float, float, pa.Table]:
    """Append `total` events; returns (seconds appending, seconds generating, the last batch)."""
    rng = np.random.default_rng(42)
    append_s = gen_s = 0.0
    last = pa.table({})
    for first in range(0, total, batch_rows):
        t0 = time.perf_counter()
        last = batch(rng, first, min(batch_rows, total - first), total)
        t1 = time.perf_counter()
        store.append(last)
        append_s += time.perf_counter() - t1
        gen_s += t1 - t0
    return append_s, gen_s, last


def run(total: int, root: Path, batch_rows: int) -> list[str]:
    """Load, then time the read paths; returns the report lines."""
    store = ParquetStore(root)
    store.open()
    lines = [f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} events={total:,} batch={batch_rows:,} root={root}"]
    try:
        append_s, gen_s, last = load(store, total, batch_rows)
        lines.append(
            f"append: {append_s:.1f} s -> {total / append_s:,.0f} events/s (generation {gen_s:.1f} s)"
        )
        t0 = time.perf_counter()
        store.compact()
        files = store._files.manifest.files
        lines.append(f"final compaction wait {time.perf_counter() - t0:.1f} s; {len(files)} files")
        t0 = time.perf_counter()
        dup = store.append(last)
        lines.append(f"re-append of a stored batch: {(time.perf_counter() - t0) * 1000:.0f} ms, {dup}")
        lines += reads(store, last)
    finally:
        store.close()
    t0 = time.perf_counter()
    store.open()
    lines.append(f"reopen (index rebuild): {(time.perf_counter() - t0) * 1000:.0f} ms")
    store.close()
    return lines


def reads(store: ParquetStore, sample: pa.Table) -> list[str]:
    """Warm medians of the benchmark's read paths."""
    row = sample.slice(0, 1).to_pylist()[0]
    day = row["timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
    page_filter = EventFilter(start=day, end=day + dt.timedelta(days=1), user_names=(row["user_name"],))
    month = EventFilter(start=day.replace(day=1), end=day.replace(day=1) + dt.timedelta(days=31))
    cell = (row["workbook_name"], row["sheet_name"], row["cell_address"])
    return [
        f"stats (all, top 10): {timed(lambda: store.stats(EventFilter(), 10), 5):.0f} ms",
        f"stats (one month): {timed(lambda: store.stats(month, 10), 5):.0f} ms",
        f"page (one user, one day, 100 rows): {timed(lambda: store.query(page_filter, Page(limit=100)), 20):.1f} ms",
        f"cell history: {timed(lambda: store.cell_history(*cell, 100), 20):.1f} ms",
        f"get_event: {timed(lambda: store.get_event(row['event_id']), 5):.1f} ms",
        f"timeseries (day, by event_type): {timed(lambda: store.timeseries(EventFilter(), 'day', 'event_type'), 3):.0f} ms",
    ]


def main() -> None:
    """CLI entry: parse arguments, run, print and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--root", type=Path, default=None, help="store directory (default: a temp dir)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-parquet-"))
    try:
        lines = run(args.events, root / "store", args.batch)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(lines))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
