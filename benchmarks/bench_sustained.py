"""Sustained ingest against `govtrack serve`: a curve every 10 s of throughput, memory, the store's inside, reads.

One server process (benchmarks._server) on one store; a load process (benchmarks.load: 8
keep-alive clients posting the add-in's 1000-event batches, ~97 % of them in the current month)
runs for `--seconds` (600 by default), starting once the store is open (/ready answers 200 as
soon as the spool takes batches), then the server is watched for `--cooldown` more seconds while
compaction and merges settle. Every `--interval` seconds the sampler records:

* events/s acknowledged by the server (govtrack_events_accepted_total, delta over the interval),
  and the part of them queued to the spool (202) rather than stored;
* server RSS now (VmRSS) and its peak so far (VmHWM: no peak between samples is missed);
* the store's inside from /metrics (storage.internals): ClickHouse active parts (total and the
  fullest partition), merges running, parts merging; Parquet files (total and per month max),
  compaction backlog, merges done; the writer's pending rows and the spool's depth;
* the latency of one `/api/stats`, one user's latest 100 cell_change events (no time range) and
  one cell history, each a single request from this process (the load runs in another one);
* the 1-minute load average (the machine is shared).

Run: `python -m benchmarks.bench_sustained --store parquet|chdb [--seconds 600] [--root DIR]`.
Results: benchmarks/results/sustained_<store>.md (summary and curve) and sustained_<store>.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._server import serve
from benchmarks.load import MARKER, make_template, run_load

RESULTS = Path(__file__).parent / "results"
EVENTS_PER_BATCH = 1000

#: /metrics samples recorded per interval (name without `govtrack_`), both engines.
GAUGES = (
    "clickhouse_active_parts",
    "clickhouse_max_parts_per_partition",
    "clickhouse_partitions",
    "clickhouse_merges_running",
    "clickhouse_parts_merging",
    "clickhouse_rows",
    "clickhouse_bytes_on_disk",
    "clickhouse_memory_tracked_bytes",
    "parquet_files",
    "parquet_max_files_per_month",
    "parquet_compaction_backlog_files",
    "parquet_compaction_running",
    "parquet_compactions",
    "parquet_last_compaction_seconds",
    "parquet_rows",
    "parquet_spill_bytes",
    "parquet_duckdb_memory_bytes",
    "writer_pending_rows",
    "spool_depth_files",
)
READS = ("stats_ms", "user_page_ms", "cell_history_ms")


def read_targets() -> dict[str, tuple[str, dict[str, str | int]]]:
    """The three dashboard reads, over values the load's bodies hold (a user, one of their cells)."""
    events = json.loads(make_template(EVENTS_PER_BATCH).replace(MARKER, b"0" * len(MARKER)))["events"]
    counts: dict[str, int] = {}
    for e in events:
        counts[e["UserName"]] = counts.get(e["UserName"], 0) + 1
    user = max(sorted(counts), key=lambda u: counts[u])
    cell = next(e for e in events if e["UserName"] == user and e["CellAddress"])
    return {
        "stats_ms": ("/api/stats", {}),
        "user_page_ms": ("/api/events", {"user_name": user, "event_type": "cell_change", "limit": 100}),
        "cell_history_ms": (
            "/api/cells/history",
            {
                k: cell[p]
                for k, p in (
                    ("workbook_name", "WorkbookName"),
                    ("sheet_name", "SheetName"),
                    ("cell_address", "CellAddress"),
                )
            },
        ),
    }


def proc_kb(pid: int, field: str) -> float:
    """A /proc/<pid>/status figure in MiB (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def scrape(http: httpx.Client) -> dict[str, float]:
    """Unlabelled samples of /metrics by name without `govtrack_` (labelled ones summed by name)."""
    out: dict[str, float] = {}
    resp = http.get("/metrics")
    resp.raise_for_status()
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            name = s.name.removeprefix("govtrack_")
            out[name] = out.get(name, 0.0) + float(s.value) if s.labels else float(s.value)
    return out


def timed_get(http: httpx.Client, path: str, params: dict[str, str | int]) -> float | None:
    """Milliseconds of one GET, or None when it did not answer 200."""
    began = time.perf_counter()
    try:
        ok = http.get(path, params=params).status_code == 200
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - began) * 1000 if ok else None


def wait_store_open(http: httpx.Client, timeout_s: float = 600) -> None:
    """Wait until the store itself is open: /ready answers 200 as soon as the spool takes batches."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if http.get("/health").json()["checks"]["store"]["open"]:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the store did not open")
        time.sleep(0.5)


def _load_worker(port: int, clients: int, seconds: float, out: Any) -> None:
    """The load, in its own process so that its event loop never delays the sampler's requests."""
    result = run_load(port, clients, seconds, warmup=0.0, events=EVENTS_PER_BATCH)
    out.put(
        {
            "requests": result.requests,
            "events": result.events,
            "failures": result.failures,
            "statuses": result.statuses,
            "p50_ms": result.percentile(50),
            "p99_ms": result.percentile(99),
            "events_per_s": result.events_per_s,
        }
    )


@dataclass
class Run:
    """Everything one run measured."""

    store: str
    seconds: float
    clients: int
    samples: list[dict[str, float | str | None]]
    load: dict[str, Any]
    hwm_mb: float


def run(store: str, root: Path, seconds: float, clients: int, interval: float, cooldown: float) -> Run:
    """Serve `store` under `root`, load it for `seconds`, sample every `interval` until cooldown ends."""
    url = f"parquet://{root / 'parquet'}" if store == "parquet" else f"chdb://{root / 'chdb'}"
    reads = read_targets()
    samples: list[dict[str, float | str | None]] = []
    with serve(url, root) as (base, pid), httpx.Client(base_url=base, timeout=120) as http:
        port = int(base.rsplit(":", 1)[1])
        wait_store_open(http)
        queue: Any = mp.get_context("spawn").Queue()
        loader = mp.get_context("spawn").Process(target=_load_worker, args=(port, clients, seconds, queue))
        began = time.monotonic()
        loader.start()
        first = scrape(http)
        last_t, last_accepted = began, first.get("events_accepted_total", 0.0)
        last_queued = first.get("events_queued_total", 0.0)
        tick = 1
        while True:
            time.sleep(max(0.0, began + tick * interval - time.monotonic()))
            now = time.monotonic()
            metrics = scrape(http)
            accepted = metrics.get("events_accepted_total", 0.0)
            queued = metrics.get("events_queued_total", 0.0)
            row: dict[str, float | str | None] = {
                "t_s": round(now - began, 1),
                "phase": "load" if loader.is_alive() else "cooldown",
                "events_per_s": round((accepted - last_accepted) / (now - last_t)),
                "events_total": accepted,
                "queued_per_s": round((queued - last_queued) / (now - last_t)),
                "queued_total": queued,
                "rss_mb": round(proc_kb(pid, "VmRSS"), 1),
                "hwm_mb": round(proc_kb(pid, "VmHWM"), 1),
                "load_1m": round(os.getloadavg()[0], 2),
            }
            row.update({g: metrics.get(g) for g in GAUGES})
            for name, (path, params) in reads.items():
                ms = timed_get(http, path, params)
                row[name] = None if ms is None else round(ms, 1)
            samples.append(row)
            print(json.dumps(row), flush=True)
            last_t, last_accepted, last_queued = now, accepted, queued
            tick += 1
            if now - began > seconds + cooldown:
                break
        loader.join(timeout=120)
        load = queue.get(timeout=60) if loader.exitcode == 0 else {"error": f"load exit {loader.exitcode}"}
        hwm = proc_kb(pid, "VmHWM")
    return Run(store, seconds, clients, samples, load, hwm)


class _Figure(float):
    """A float that prints as an integer with thousands separators when whole."""

    def __str__(self) -> str:
        return f"{self:,.0f}" if self.is_integer() else f"{self:,.1f}"

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)


def _max(samples: list[dict[str, float | str | None]], key: str) -> _Figure | None:
    values = [v for s in samples if isinstance(v := s.get(key), int | float)]
    return _Figure(max(values)) if values else None


def _median(samples: list[dict[str, float | str | None]], key: str) -> _Figure | None:
    values = [v for s in samples if isinstance(v := s.get(key), int | float)]
    return _Figure(round(statistics.median(values), 1)) if values else None


def _cell(value: float | str | None, name: str) -> str:
    """A curve cell: bytes in MB, counts as integers, blank when the gauge was absent."""
    if not isinstance(value, int | float):
        return ""
    return f"{value / 2**20:.0f}" if name.endswith("_bytes") else f"{value:.0f}"


def rss_trend(samples: list[dict[str, float | str | None]]) -> str:
    """RSS against events stored during the load: least-squares slope (MB per million events)."""
    pts = [
        (float(s["events_total"] or 0) / 1e6, float(s["rss_mb"] or 0))
        for s in samples
        if s["phase"] == "load" and s["events_total"]
    ]
    if len(pts) < 3:
        return "too few samples"
    half = len(pts) // 2
    first = statistics.mean(r for _, r in pts[:half])
    second = statistics.mean(r for _, r in pts[half:])
    slope = statistics.linear_regression([x for x, _ in pts], [r for _, r in pts]).slope
    return (
        f"mean RSS {first:.0f} MB over the first half of the load, {second:.0f} MB over the second; "
        f"least-squares slope {slope:+.1f} MB per million events stored"
    )


def report(r: Run) -> str:
    """The markdown summary and curve of one run."""
    s = r.samples
    load = r.load
    parts_key = "clickhouse" if r.store == "chdb" else "parquet"
    loads = [float(x["load_1m"] or 0) for x in s]
    lines = [
        f"# Sustained ingest, {r.store} ({time.strftime('%Y-%m-%d %H:%M')} UTC)",
        "",
        f"`python -m benchmarks.bench_sustained --store {r.store} --seconds {r.seconds:.0f}`: one "
        f"`govtrack serve`, {r.clients} clients posting 1000-event add-in batches for {r.seconds:.0f} s "
        "(~97 % of events in the current month, the rest in the previous one), then a cooldown; "
        "a sample every 10 s. Shared 2-core machine: 1-minute load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the run (median {statistics.median(loads):.1f}).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| events acknowledged (client) / stored at the end (store) | {load.get('events', 0):,} / "
        f"{_max(s, f'{parts_key}_rows') or 0:,.0f} |",
        f"| events/s (server counter) median / min over load samples | "
        f"{_median([x for x in s if x['phase'] == 'load'], 'events_per_s')} / "
        f"{min((float(x['events_per_s'] or 0) for x in s if x['phase'] == 'load'), default=0):,.0f} |",
        f"| events/s (client, whole load) | {load.get('events_per_s', 0):,.0f} |",
        f"| batch latency p50 / p99 ms (client) | {load.get('p50_ms', float('nan')):.1f} / "
        f"{load.get('p99_ms', float('nan')):.1f} |",
        f"| non-200 answers | {load.get('failures', 0)} ({load.get('statuses', {})}) |",
        f"| server RSS peak (VmHWM) | {r.hwm_mb:,.0f} MB |",
        f"| RSS trend | {rss_trend(s)} |",
    ]
    if parts_key == "clickhouse":
        lines += [
            f"| max active parts (all partitions) | {_max(s, 'clickhouse_active_parts')} |",
            f"| max active parts of one partition | {_max(s, 'clickhouse_max_parts_per_partition')} |",
            f"| max merges running / parts merging | {_max(s, 'clickhouse_merges_running')} / "
            f"{_max(s, 'clickhouse_parts_merging')} |",
        ]
    else:
        lines += [
            f"| max Parquet files (all months) | {_max(s, 'parquet_files')} |",
            f"| max files of one month | {_max(s, 'parquet_max_files_per_month')} |",
            f"| max compaction backlog (files) | {_max(s, 'parquet_compaction_backlog_files')} |",
            f"| merges done | {_max(s, 'parquet_compactions')} |",
            f"| max spill bytes | {_max(s, 'parquet_spill_bytes')} |",
        ]
    lines += [
        f"| max writer pending rows / spool files | {_max(s, 'writer_pending_rows')} / "
        f"{_max(s, 'spool_depth_files')} |",
        f"| events acknowledged as queued to the spool (202) | {_max(s, 'queued_total')} |",
        f"| /api/stats median / max ms | {_median(s, 'stats_ms')} / {_max(s, 'stats_ms')} |",
        f"| user's latest page median / max ms | {_median(s, 'user_page_ms')} / {_max(s, 'user_page_ms')} |",
        f"| cell history median / max ms | {_median(s, 'cell_history_ms')} / {_max(s, 'cell_history_ms')} |",
        "",
        "## Curve",
        "",
    ]
    if parts_key == "clickhouse":
        cols = [
            "clickhouse_active_parts",
            "clickhouse_max_parts_per_partition",
            "clickhouse_merges_running",
            "clickhouse_memory_tracked_bytes",
        ]
        heads = ["parts", "max/partition", "merges", "engine MB"]
    else:
        cols = [
            "parquet_files",
            "parquet_max_files_per_month",
            "parquet_compaction_backlog_files",
            "parquet_compactions",
            "parquet_spill_bytes",
            "parquet_duckdb_memory_bytes",
        ]
        heads = ["files", "max/month", "backlog", "merges done", "spill MB", "engine MB"]
    header = [
        "t s",
        "phase",
        "events/s",
        "queued/s",
        "stored M",
        "RSS MB",
        "peak MB",
        *heads,
        "stats ms",
        "page ms",
        "cell ms",
        "load",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for x in s:
        stored = x.get(f"{parts_key}_rows")
        vals = [
            x["t_s"],
            x["phase"],
            x["events_per_s"],
            x.get("queued_per_s", ""),
            "" if stored is None else f"{float(stored) / 1e6:.2f}",
            x["rss_mb"],
            x["hwm_mb"],
            *(_cell(x.get(c), c) for c in cols),
            *(("" if x.get(k) is None else x[k]) for k in READS),
            x["load_1m"],
        ]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    lines += ["", f"Raw samples: sustained_{r.store}.csv."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run one store and write its results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("parquet", "chdb"), required=True)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--cooldown", type=float, default=60)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix=f"govtrack-sustained-{args.store}-"))
    root.mkdir(parents=True, exist_ok=True)
    r = run(args.store, root, args.seconds, args.clients, args.interval, args.cooldown)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"sustained_{args.store}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(r.samples[0]))
        writer.writeheader()
        writer.writerows(r.samples)
    text = report(r)
    (args.out / f"sustained_{args.store}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
