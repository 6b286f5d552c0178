"""Ingest benchmark: the service as a subprocess, 1000-event JSON batches from 1 and 8 clients.

Every store is measured beside a no-op store in the same run, so each figure comes with its ratio
to the HTTP ceiling of this machine. Run: `python -m benchmarks.bench_ingest [--seconds 15]`.
Results: benchmarks/results/ingest.md and ingest.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._server import rss_mb, serve
from benchmarks.load import LoadResult, run_load

RESULTS = Path(__file__).parent / "results"


def _measure(store: str, clients: int, seconds: float, work: Path) -> dict[str, object]:
    url = {"noop": None, "parquet": f"parquet://{work / 'parquet'}", "chdb": f"chdb://{work / 'chdb'}"}[store]
    with serve(url, work, noop=store == "noop") as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result: LoadResult = run_load(port, clients, seconds)
        done.set()
        sampler.join()
    return {
        "store": store,
        "clients": clients,
        "events_per_s": round(result.events_per_s),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "requests": result.requests,
        "non_200": result.failures,
        "statuses": result.statuses,
        "rss_peak_mb": round(peak[0], 1),
    }


def main() -> None:
    """Run every store at 1 and 8 clients and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--stores", default="noop,parquet,chdb")
    args = parser.parse_args()
    rows = []
    for store in args.stores.split(","):
        for clients in (1, 8):
            work = Path(tempfile.mkdtemp(prefix=f"govtrack-bench-{store}-"))
            try:
                row = _measure(store, clients, args.seconds, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(row, flush=True)
            rows.append(row)
    ceiling = {r["clients"]: r["events_per_s"] for r in rows if r["store"] == "noop"}
    lines = [
        f"# Ingest benchmark ({time.strftime('%Y-%m-%d %H:%M')} UTC, {args.seconds:.0f} s per run, 1000-event JSON batches)",
        "",
        "| store | clients | events/s | vs no-op | p50 ms | p99 ms | non-200 | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = ceiling.get(r["clients"])
        rate = r["events_per_s"]
        ratio = f"{rate / base:.0%}" if isinstance(base, int) and isinstance(rate, int) and base else "-"
        lines.append(
            f"| {r['store']} | {r['clients']} | {r['events_per_s']:,} | {ratio} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['non_200']} | {r['rss_peak_mb']} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "ingest.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
