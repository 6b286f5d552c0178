"""Query benchmark through HTTP: load N events (10M by default), then time what dashboards ask.

Loads demo events straight through the store's `append()` (the ingest benchmark measures the HTTP
ingest path), starts the real service over the loaded store as a subprocess, and times, warm:
`GET /api/stats`, a filtered page (one user, one day, 100 rows) and a cell history, each end to
end through HTTP. Run: `python -m benchmarks.bench_query [--events 10000000] [--stores parquet,chdb]
[--root DIR]` (a root that already holds a loaded store of that size is reused).
Results: benchmarks/results/query.md and query.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks._server import rss_mb, serve
from benchmarks.demo_data import chunks
from storage.factory import create_store

RESULTS = Path(__file__).parent / "results"
BATCH_ROWS = 20_000


def load(url: str, total: int) -> tuple[float, pa.Table]:
    """Append `total` demo events in BATCH_ROWS batches; returns (seconds, a sample chunk)."""
    store = create_store(url)
    store.open()
    sample = pa.table({})
    began = time.perf_counter()
    try:
        for chunk in chunks(total):
            for offset in range(0, chunk.num_rows, BATCH_ROWS):
                store.append(chunk.slice(offset, BATCH_ROWS))
            sample = chunk
    finally:
        store.close()
    return time.perf_counter() - began, sample


def probes(sample: pa.Table) -> dict[str, dict[str, str]]:
    """Query parameters of the three measured requests, picked from the data."""
    users = pc.value_counts(sample["user_name"]).to_pylist()
    user = max(users, key=lambda item: item["counts"])["values"]
    day = sample["timestamp"][sample.num_rows // 2].as_py().replace(hour=0, minute=0, second=0, microsecond=0)
    cells = sample.filter(pc.and_(pc.is_valid(sample["cell_address"]), pc.is_valid(sample["sheet_name"])))
    cell = cells.slice(cells.num_rows // 2, 1).to_pylist()[0]
    return {
        "stats": {},
        "page": {
            "user_name": user,
            "from": day.isoformat(),
            "to": (day + dt.timedelta(days=1)).isoformat(),
            "limit": "100",
        },
        "cell_history": {k: cell[k] for k in ("workbook_name", "sheet_name", "cell_address")},
    }


PATHS = {"stats": "/api/stats", "page": "/api/events", "cell_history": "/api/cells/history"}


def time_requests(base: str, params: dict[str, dict[str, str]], repeat: int) -> dict[str, dict[str, float]]:
    """Median and p95 (ms) of each request after two warm-up calls."""
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=600) as http:
        deadline = time.monotonic() + 300  # /ready means "ingest accepted"; reads wait for the store to open
        while http.get("/api/stats").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        for name, query in params.items():
            for _ in range(2):
                http.get(PATHS[name], params=query).raise_for_status()
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                http.get(PATHS[name], params=query).raise_for_status()
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            out[name] = {
                "median_ms": round(statistics.median(samples), 1),
                "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
            }
    return out


def run_store(kind: str, root: Path, total: int, repeat: int) -> dict[str, object]:
    """Load (or reuse) one store and measure it through the service."""
    url = f"parquet://{root / 'parquet'}" if kind == "parquet" else f"chdb://{root / 'chdb'}"
    marker = root / f"{kind}-{total}.json"
    if marker.exists():
        loaded = json.loads(marker.read_text())
        sample = next(iter(chunks(total)))  # the first chunk that was loaded
    else:
        seconds, sample = load(url, total)
        loaded = {"load_s": round(seconds, 1), "load_events_per_s": round(total / seconds)}
        marker.write_text(json.dumps(loaded))
    with serve(url, root) as (base, pid):
        timings = time_requests(base, probes(sample), repeat)
        rss = rss_mb(pid)
    return {"store": kind, "events": total, **loaded, **timings, "server_rss_mb": round(rss, 1)}


def main() -> None:
    """Measure each store and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--stores", default="parquet,chdb")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="govtrack-query-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = [run_store(kind, root, args.events, args.repeat) for kind in args.stores.split(",")]
    lines = [
        f"# Query benchmark ({time.strftime('%Y-%m-%d %H:%M')} UTC, {args.events:,} events, via HTTP, warm)",
        "",
        "| store | load events/s | /api/stats median (p95) ms | page median (p95) ms "
        "| cell history median (p95) ms | server RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cols = [f"{r[k]['median_ms']} ({r[k]['p95_ms']})" for k in ("stats", "page", "cell_history")]  # type: ignore[index]
        lines.append(
            f"| {r['store']} | {r['load_events_per_s']:,} | {' | '.join(cols)} | {r['server_rss_mb']} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "query.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "query.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
