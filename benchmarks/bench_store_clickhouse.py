"""ClickHouseStore benchmark on the embedded engine: append throughput, parts, and the read paths.

Run on demand: `python -m benchmarks.bench_store_clickhouse --events 10000000 [--batch 50000]`.
The default batch is the API writer's group-commit maximum (GOVTRACK_WRITER_MAX_ROWS=50000), the
batch size a sustained ingest actually hands the store.
Events come from `analytics.demo.generate_events` (random UUID ids, realistic sessions, Zipf
users/workbooks, deep cell histories), in chunks of one million, each a later stretch of one year,
appended in time order as an ingest would see them (same data as bench_store_parquet).
Reads are timed twice: as the single embedded writer (no FINAL) and as a store that assumes
several writers (`single_writer=False`: FINAL at read) over the same database.
Results are appended to benchmarks/results/store_clickhouse.txt.
Targets (10 M events): append well under 50 ms per 20k rows, /api/stats <= 100 ms, one user/one
day page <= 10 ms, cell history <= 10 ms, active parts < 300 after sustained ingest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.demo_data import chunk_count, chunks, demo_chunk, timed
from storage.base import EventFilter, Page, SessionFilter
from storage.clickhouse.store import ClickHouseStore

RESULTS = Path(__file__).parent / "results" / "store_clickhouse.txt"
PARTS_SQL = (
    "SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active "
    "GROUP BY table ORDER BY table"
)


def parts(store: ClickHouseStore) -> str:
    rows = store._conn().query(PARTS_SQL).result_rows
    return ", ".join(f"{table} {count}" for table, count in rows)


def cpu_s() -> float:
    """CPU seconds of this process: the embedded engine's threads (inserts, merges) included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(store: ClickHouseStore, total: int, batch: int) -> tuple[list[float], list[float], pa.Table]:
    """Append everything; per-append wall and CPU ms (CPU includes background merges meanwhile)."""
    latencies: list[float] = []
    cpu: list[float] = []
    last = pa.table({})
    for chunk in chunks(total):
        last = chunk
        for first in range(0, chunk.num_rows, batch):
            part = chunk.slice(first, batch)
            c0, t0 = cpu_s(), time.perf_counter()
            store.append(part)
            latencies.append((time.perf_counter() - t0) * 1000)
            cpu.append((cpu_s() - c0) * 1000)
    return latencies, cpu, last


def read_lines(store: ClickHouseStore, last: pa.Table, label: str) -> list[str]:
    """The read paths over the loaded data, as `label`."""
    mid = last.slice(last.num_rows // 2, 1).to_pylist()[0]
    day0 = mid["timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
    one_day = EventFilter(start=day0, end=day0 + dt.timedelta(days=1))
    user_day = EventFilter(start=day0, end=day0 + dt.timedelta(days=1), user_names=(mid["user_name"],))
    cell = (mid["workbook_name"], mid["sheet_name"], mid["cell_address"])
    week = EventFilter(start=day0 - dt.timedelta(days=7), end=day0)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("stats (all, top 10)", lambda: store.stats(EventFilter(), 10)),
        ("stats (one day)", lambda: store.stats(one_day, 10)),
        ("stats (one user)", lambda: store.stats(EventFilter(user_names=(mid["user_name"],)), 10)),
        ("page (one user, one day, 100 rows)", lambda: store.query(user_day, Page(limit=100))),
        ("page (no filter, 100 rows)", lambda: store.query(EventFilter(), Page(limit=100))),
        ("page (session, 100 rows)", lambda: store.query(EventFilter(session_id=mid["session_id"]), Page())),
        ("cell history (100)", lambda: store.cell_history(*cell, 100)),
        ("get_event", lambda: store.get_event(mid["event_id"])),
        ("sessions page (50)", lambda: store.sessions(SessionFilter(), 50, None)),
        (
            "sessions page (one week, 50)",
            lambda: store.sessions(SessionFilter(start=week.start, end=week.end), 50, None),
        ),
        ("timeseries (hour, by event_type)", lambda: store.timeseries(EventFilter(), "hour", "event_type")),
        ("timeseries (minute, one day)", lambda: store.timeseries(one_day, "minute", None)),
    ]
    out = []
    for name, fn in checks:
        best, median = timed(fn)
        out.append(f"  [{label}] {name}: best {best:.1f} ms, median {median:.1f} ms")
    return out


def run(total: int, batch: int, root: Path, writers: str, *, load_data: bool) -> list[str]:
    store = ClickHouseStore(f"chdb://{root}", database="bench", single_writer=writers == "single")
    store.open()
    lines = [
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} events={total:,} batch={batch:,} "
        f"(embedded chdb, appends as {writers} writer)"
    ]
    try:
        if not load_data:
            last = demo_chunk(total, chunk_count(total) - 1)
            lines.append(f"(reads only, data loaded earlier; active parts: {parts(store)})")
            return lines + reads(root, last)
        lat, cpu, last = load(store, total, batch)
        spent = sum(lat) / 1000
        q = np.percentile(lat, [50, 95, 99])
        lines.append(
            f"append: {spent:.1f} s -> {total / spent:,.0f} events/s; per append p50 {q[0]:.0f} ms, "
            f"p95 {q[1]:.0f} ms, p99 {q[2]:.0f} ms, max {max(lat):.0f} ms"
        )
        lines.append(
            f"append CPU (process, merges included): median {statistics.median(cpu):.0f} ms per append, "
            f"{sum(cpu) / (total / 1000):.2f} ms per 1k events -> {total / (sum(cpu) / 1000):,.0f} events per CPU-second"
        )
        lines.append(f"active parts right after load: {parts(store)}")
        resend = last.slice(0, batch)
        best, median = timed(lambda: store.append(resend), 3)
        lines.append(
            f"re-append of one {batch:,}-row batch (all duplicates): best {best:.0f} ms, median {median:.0f} ms"
        )
        time.sleep(10)
        lines.append(f"active parts 10 s later: {parts(store)}")
        lines += reads(root, last)
    finally:
        store.close()
    return lines


def reads(root: Path, last: pa.Table) -> list[str]:
    """The read paths as the single writer (no FINAL) and as one of several writers (FINAL)."""
    lines: list[str] = []
    for single, label in ((True, "single writer, no FINAL"), (False, "shared writers, FINAL")):
        store = ClickHouseStore(f"chdb://{root}", database="bench", single_writer=single)
        store.open()
        try:
            lines += read_lines(store, last, label)
        finally:
            store.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument(
        "--writers",
        choices=["single", "shared"],
        default="single",
        help="shared: exact engine lookup of every id",
    )
    parser.add_argument("--root", type=Path, help="keep the data here (default: a temporary directory)")
    parser.add_argument("--reads-only", action="store_true", help="reuse --root's data: time the reads only")
    args = parser.parse_args()
    if args.root is not None:
        lines = run(args.events, args.batch, args.root, args.writers, load_data=not args.reads_only)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ch-") as tmp:
            lines = run(args.events, args.batch, Path(tmp), args.writers, load_data=True)
    report = "\n".join(lines) + "\n"
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(report + "\n")


if __name__ == "__main__":
    main()
