"""ClickHouseStore benchmark on the embedded engine: append throughput and the dashboard queries.

Run on demand: `python -m benchmarks.bench_store_clickhouse [N]` (default 10,000,000 events, in
20,000-row appends). Writes benchmarks/results/store_clickhouse.txt.
Targets: stats over 10 M <= 100 ms, one user/one day page <= 10 ms, cell history <= 10 ms.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from storage.base import EventFilter, Page, SessionFilter
from storage.clickhouse_store import ClickHouseStore
from storage.schema import EVENT_SCHEMA, UTC_MICROS

RESULTS = Path(__file__).parent / "results" / "store_clickhouse.txt"
BATCH = 20_000
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN_US = 90 * 86_400 * 1_000_000
USERS = np.array([f"CORP\\user{i:03d}" for i in range(200)], dtype=object)
BOOKS = np.array([f"\\\\share\\finance\\book{i:04d}.xlsx" for i in range(2000)], dtype=object)
TYPES = np.array(["cell_change"] * 12 + ["formula_change", "workbook_save", "sheet_add"], dtype=object)


def make_batch(first: int, n: int, total: int, rng: np.random.Generator) -> pa.Table:
    """`n` events numbered from `first`, timestamps ascending over 90 days (as a producer sends them)."""
    idx = np.arange(first, first + n, dtype=np.int64)
    ts = (idx * (SPAN_US // total)) + int(START.timestamp() * 1_000_000)
    user = rng.integers(0, len(USERS), n)
    cols: dict[str, Any] = {
        "event_id": pa.array([f"00000000-0000-4000-8000-{i:012x}" for i in idx.tolist()]),
        "timestamp": pa.array(ts, UTC_MICROS),
        "event_type": pa.array(TYPES[rng.integers(0, len(TYPES), n)]),
        "user_name": pa.array(USERS[user]),
        "machine_name": pa.array(np.char.add("PC-", user.astype(str)).astype(object)),
        "session_id": pa.array([f"sess-{s}" for s in (idx // 50).tolist()]),
        "workbook_name": pa.array(BOOKS[rng.integers(0, len(BOOKS), n)]),
        "sheet_name": pa.array(np.array(["Sheet1", "Sheet2", "Data"], dtype=object)[rng.integers(0, 3, n)]),
        "cell_address": pa.array([f"B{r}" for r in rng.integers(1, 500, n).tolist()]),
        "old_value": pa.array(rng.integers(0, 10_000, n).astype(str).astype(object)),
        "new_value": pa.array(rng.integers(0, 10_000, n).astype(str).astype(object)),
        "formula": pa.nulls(n, pa.string()),
        "correlation_id": pa.nulls(n, pa.string()),
        "attributes": pa.array([[("AddinVersion", '"3.4.1.0"')]] * n, pa.map_(pa.string(), pa.string())),
        "received_at": pa.array(ts, UTC_MICROS),
        "batch_id": pa.array([f"b{first // BATCH}"] * n),
    }
    return pa.table(cols, schema=EVENT_SCHEMA)


def timed(fn: Callable[[], object], repeat: int = 7) -> float:
    """Median warm wall time in ms (one warm-up call first)."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main(total: int) -> str:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="bench-ch-") as tmp:
        store = ClickHouseStore(f"chdb://{tmp}", database="bench")
        store.open()
        spent = 0.0
        for first in range(0, total, BATCH):
            batch = make_batch(first, min(BATCH, total - first), total, rng)
            t0 = time.perf_counter()
            store.append(batch)
            spent += time.perf_counter() - t0
        day = START + dt.timedelta(days=30)
        user = str(USERS[17])
        probe = store.query(EventFilter(start=day, end=day + dt.timedelta(days=1)), Page(limit=1))
        cell = probe.select(["workbook_name", "sheet_name", "cell_address"]).to_pylist()[0]
        one_day = EventFilter(start=day, end=day + dt.timedelta(days=1), user_names=(user,))
        w, sh, addr = cell["workbook_name"], cell["sheet_name"], cell["cell_address"]
        again = make_batch(0, BATCH, total, np.random.default_rng(7))
        conn = store._conn()
        parts = conn.command(
            "SELECT count() FROM system.parts WHERE database = 'bench' AND table = 'audit_events' AND active"
        )
        lines = [
            f"events: {total:,} in {BATCH:,}-row appends (embedded ClickHouse, chdb)",
            f"append: {spent:.1f} s = {total / spent:,.0f} events/s (id lookup + insert_arrow)",
            f"active parts of audit_events after load: {parts}",
            f"stats (all, top 10): {timed(lambda: store.stats(EventFilter(), 10)):.1f} ms",
            f"stats (one day): {timed(lambda: store.stats(EventFilter(start=day, end=day + dt.timedelta(days=1)), 10)):.1f} ms",
            "page (one user, one day, 100 rows): "
            f"{timed(lambda: store.query(one_day, Page(limit=100))):.1f} ms",
            f"page (no filter, 100 rows): {timed(lambda: store.query(EventFilter(), Page(limit=100))):.1f} ms",
            f"cell history: {timed(lambda: store.cell_history(w, sh, addr, 100)):.1f} ms",
            f"get_event: {timed(lambda: store.get_event('00000000-0000-4000-8000-' + f'{total // 2:012x}')):.1f} ms",
            f"sessions page (50): {timed(lambda: store.sessions(SessionFilter(), 50, None)):.1f} ms",
            f"timeseries (hour, by event_type): {timed(lambda: store.timeseries(EventFilter(), 'hour', 'event_type')):.1f} ms",
            f"re-append of one batch (all duplicates): {timed(lambda: store.append(again), 3):.1f} ms",
        ]
        store.close()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    report = main(n)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
