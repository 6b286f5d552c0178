"""Ingest side by side: govtrack against two reference servers, same client, same bodies, one run.

Targets (each a subprocess on this machine, measured one after the other in one run):
  bare          benchmarks.ref_bare: FastAPI + msgspec + column-wise Arrow + Parquet every 20k rows,
                no validation, no dedup, answered before writing (what Python reaches here)
  seed-duckdb   benchmarks.ref_seed: pydantic models + one DuckDB insert per request
  seed-chdb     benchmarks.ref_seed: pydantic models + one MergeTree insert per request (embedded)
  parquet       govtrack on its Parquet store
  chdb          govtrack on the embedded ClickHouse store
  noop          govtrack over a store that discards everything (the HTTP + decode ceiling)
Each at 1 and 8 clients posting the add-in's 1000-event PascalCase batches (benchmarks.load).
During govtrack's 8-client runs a reader asks /api/stats, a user's latest page with and without a
time range, and a cell history every half second: their latencies under load are reported too.

The issue-9 goals are ratios: govtrack >= 0.6 (Parquet) / 0.5 (ClickHouse) of bare at 8 clients,
and >= 5x the seed design on the same store. Run: `python -m benchmarks.bench_ingest [--seconds 20]`.
Results: benchmarks/results/ingest.md and ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._server import cpu_s, rss_mb, serve
from benchmarks.load import LoadResult, run_load

RESULTS = Path(__file__).parent / "results"
TARGETS = ("bare", "seed-duckdb", "seed-chdb", "parquet", "chdb", "noop")
#: Reads a dashboard makes while the add-ins post; the values exist in benchmarks.load's bodies.
READS: dict[str, tuple[str, dict[str, str | int]]] = {
    "stats": ("/api/stats", {}),
    "page (user)": ("/api/events", {"user_name": "CORP\\user007", "event_type": "cell_change", "limit": 100}),
    "page (user, day)": (
        "/api/events",
        {"user_name": "CORP\\user007", "limit": 100, "from": "{day}", "to": "{next}"},
    ),
    "cell history": (
        "/api/cells/history",
        {"workbook_name": "\\\\fs01\\finance\\Budget 3.xlsx", "sheet_name": "Sheet1", "cell_address": "B12"},
    ),
}


def server_for(target: str, work: Path) -> tuple[str | None, bool, list[str] | None]:
    """(store URL, no-op?, reference module) for a target."""
    if target == "bare":
        return None, False, ["benchmarks.ref_bare", "--out", str(work / "bare")]
    if target.startswith("seed-"):
        return None, False, ["benchmarks.ref_seed", "--store", target[5:], "--dir", str(work / "seed")]
    urls = {"parquet": f"parquet://{work / 'parquet'}", "chdb": f"chdb://{work / 'chdb'}", "noop": None}
    return urls[target], target == "noop", None


@dataclass
class Reader:
    """Reads during a load run, one every `every_s`; latencies per read in ms."""

    base: str
    every_s: float = 0.5
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Read until stopped (a thread's target)."""
        day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 86400))
        nxt = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time()))
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self._stop.wait(self.every_s):
                for name, (path, params) in READS.items():
                    bound = {k: str(v).format(day=day, next=nxt) for k, v in params.items()}
                    start = time.perf_counter()
                    ok = client.get(path, params=bound).status_code == 200
                    self.latencies.setdefault(name, []).append((time.perf_counter() - start) * 1000)
                    self.failures += not ok

    def stop(self) -> None:
        """End the loop after the current round."""
        self._stop.set()

    def medians(self) -> dict[str, float]:
        """Median latency per read."""
        return {k: round(statistics.median(v), 1) for k, v in self.latencies.items() if v}


def _measure(target: str, clients: int, seconds: float, work: Path) -> dict[str, object]:
    url, noop, module = server_for(target, work)
    with serve(url, work, noop=noop, module=module) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        reader = Reader(base) if clients > 1 and target in ("parquet", "chdb") else None
        reading = threading.Thread(target=reader.run, daemon=True) if reader else None
        if reading:
            reading.start()
        warmup = 2.0
        cpu_marks: list[float] = []  # the server's CPU seconds when the warm-up ends, and at the end
        cpu_at_warm = threading.Timer(warmup, lambda: cpu_marks.append(cpu_s(pid)))
        cpu_at_warm.start()
        result: LoadResult = run_load(port, clients, seconds, warmup=warmup)
        cpu_at_warm.join()
        cpu_marks.append(cpu_s(pid))
        done.set()
        if reader and reading:
            reader.stop()
            reading.join()
        sampler.join()
    return {
        "target": target,
        "clients": clients,
        "events_per_s": round(result.events_per_s),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "requests": result.requests,
        "non_200": result.failures,
        "statuses": result.statuses,
        "rss_peak_mb": round(peak[0], 1),
        # the server's CPU (all threads) per 1000 acknowledged events, over the measured window
        "server_cpu_ms_per_1k": round((cpu_marks[-1] - cpu_marks[0]) * 1e6 / result.events, 2)
        if result.events
        else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "reads_ms": reader.medians() if reader else {},
        "read_failures": reader.failures if reader else 0,
    }


def _ratio(rows: list[dict[str, object]], target: str, reference: str, clients: int) -> str:
    rate = {(r["target"], r["clients"]): r["events_per_s"] for r in rows}
    a, b = rate.get((target, clients)), rate.get((reference, clients))
    return f"{a / b:.2f}" if isinstance(a, int) and isinstance(b, int) and b else "-"


def report(rows: list[dict[str, object]], seconds: float) -> str:
    """The markdown table: rates, ratios to each reference, latencies, RSS, reads under load."""
    seed_of = {"parquet": "seed-duckdb", "chdb": "seed-chdb"}
    lines = [
        f"# Ingest side by side ({time.strftime('%Y-%m-%d %H:%M')} UTC, {seconds:.0f} s per run, "
        "1000-event PascalCase JSON batches, one server process, 2 cores shared with the client)",
        "",
        "| target | clients | events/s | / bare | / seed (same store) | p50 ms | p99 ms | non-200 | peak RSS MB "
        "| server CPU ms per 1k events | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target, clients = str(r["target"]), int(str(r["clients"]))
        seed = seed_of.get(target)
        lines.append(
            f"| {target} | {clients} | {r['events_per_s']:,} | {_ratio(rows, target, 'bare', clients)} "
            f"| {_ratio(rows, target, seed, clients) if seed else '-'} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['non_200']} | {r['rss_peak_mb']} | {r.get('server_cpu_ms_per_1k', '-')} "
            f"| {r.get('load_avg_1m', '-')} |"
        )
    lines += ["", "Reads during the 8-client runs (median ms):", "", "| target | " + " | ".join(READS) + " |"]
    lines.append("|---" * (len(READS) + 1) + "|")
    for r in rows:
        reads = r["reads_ms"]
        if isinstance(reads, dict) and reads:
            lines.append(f"| {r['target']} | " + " | ".join(str(reads.get(k, "-")) for k in READS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run every target at 1 and 8 clients and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args()
    rows = []
    for target in args.targets.split(","):
        for clients in (int(c) for c in args.clients.split(",")):
            work = Path(tempfile.mkdtemp(prefix=f"govtrack-bench-{target}-"))
            try:
                row = _measure(target, clients, args.seconds, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(row, flush=True)
            rows.append(row)
    text = report(rows, args.seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.md").write_text(text)
    (RESULTS / "ingest.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
