"""Archiving benchmark: move months of demo events to a local archive, then read across the tiers.

`python -m benchmarks.bench_archive [--events 10000000] [--stores parquet,chdb]` loads a year of
demo events into each store (20k-row appends), times stats, a filtered page and a cell history on
the hot store alone, archives every month but the last two (the verified move: write, read back
and hash, reconcile, commit, drop), reports events/s and the process's peak RSS during the move,
times the same reads across the tiers (stats over everything and over an archived month, a page
and a cell history inside archived months), and `archive verify`. Each store runs in its own
process (the embedded engine allows one data path per process). Results go to
benchmarks/results/archive.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.demo_data import chunks, timed
from storage.archive.location import open_location
from storage.archive.mover import archive_months
from storage.archive.tiers import TieredStore
from storage.archive.verify import verify_archive
from storage.base import EventFilter, Page
from storage.factory import create_store

RESULTS = Path(__file__).parent / "results"
BATCH_ROWS = 20_000


class PeakRss:
    """The process's resident set, sampled every 50 ms while running (peak in MB)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def probes(sample: pa.Table) -> dict[str, Any]:
    """A user and day for the page and a cell for its history, from an early (archived) month."""
    users = pc.value_counts(sample["user_name"]).to_pylist()
    user = max(users, key=lambda item: item["counts"])["values"]
    day = sample["timestamp"][sample.num_rows // 2].as_py().replace(hour=0, minute=0, second=0, microsecond=0)
    cells = sample.filter(pc.and_(pc.is_valid(sample["cell_address"]), pc.is_valid(sample["sheet_name"])))
    cell = cells.slice(cells.num_rows // 2, 1).to_pylist()[0]
    return {
        "user": user,
        "day": day,
        "cell": (cell["workbook_name"], cell["sheet_name"], cell["cell_address"]),
    }


def reads(
    store: Any, p: dict[str, Any], month: tuple[dt.datetime, dt.datetime]
) -> dict[str, dict[str, float]]:
    """Best and median ms of the measured reads."""
    day: dt.datetime = p["day"]
    page = EventFilter(user_names=(p["user"],), start=day, end=day + dt.timedelta(days=1))
    calls = {
        "stats (all)": lambda: store.stats(EventFilter(), 10),
        "stats (one archived month)": lambda: store.stats(EventFilter(start=month[0], end=month[1]), 10),
        "page (one user, one day)": lambda: store.query(page, Page(limit=100)),
        "cell history": lambda: store.cell_history(*p["cell"], 100),
    }
    out = {}
    for name, call in calls.items():
        best, median = timed(call, repeat=7)
        out[name] = {"best_ms": round(best, 1), "median_ms": round(median, 1)}
    return out


def run_store(kind: str, root: Path, total: int) -> dict[str, Any]:
    """Load, measure, archive, measure again: one store, in this process."""
    shutil.rmtree(root, ignore_errors=True)
    url = f"parquet://{root / 'hot'}" if kind == "parquet" else f"chdb://{root / 'chdb'}"
    hot = create_store(url)
    store = TieredStore(hot, open_location(str(root / "archive")))
    store.open()
    first = pa.table({})
    began = time.perf_counter()
    for k, chunk in enumerate(chunks(total)):
        if k == 0:
            first = chunk
        for offset in range(0, chunk.num_rows, BATCH_ROWS):
            store.append(chunk.slice(offset, BATCH_ROWS))
    load_s = time.perf_counter() - began
    p = probes(first)
    day: dt.datetime = p["day"]
    month = (
        dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC),
        dt.datetime(day.year, day.month + 1, 1, tzinfo=dt.UTC),
    )
    hot_only = reads(store, p, month)
    months = sorted(hot.months())  # type: ignore[attr-defined]
    before = months[-2]
    with PeakRss() as rss:
        began = time.perf_counter()
        report = archive_months(store, before)
        move_s = time.perf_counter() - began
    moved = sum(m.rows for m in report.months)
    tiered = reads(store, p, month)
    began = time.perf_counter()
    verdict = verify_archive(store.location)
    verify_s = time.perf_counter() - began
    archive_bytes = sum(f.stat().st_size for f in (root / "archive").rglob("*.parquet"))
    store.close()
    return {
        "store": kind,
        "events": total,
        "load_events_per_s": round(total / load_s),
        "archived_months": len(report.months),
        "archived_events": moved,
        "archive_s": round(move_s, 1),
        "archive_events_per_s": round(moved / move_s),
        "archive_peak_rss_mb": round(rss.peak_mb),
        "archive_mb": round(archive_bytes / 1e6, 1),
        "verify_s": round(verify_s, 1),
        "verify_ok": verdict.ok,
        "hot_only": hot_only,
        "across_tiers": tiered,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as the tables README quotes."""
    lines = [
        "# Archive benchmark (`python -m benchmarks.bench_archive`)",
        "",
        "| store | events | archived | move events/s | peak RSS during the move | archive size | verify |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['store']} | {r['events']:,} | {r['archived_events']:,} in {r['archived_months']} months "
            f"| {r['archive_events_per_s']:,} ({r['archive_s']} s) | {r['archive_peak_rss_mb']:,} MB "
            f"| {r['archive_mb']:,} MB | {r['verify_s']} s, ok={r['verify_ok']} |"
        )
    lines += ["", "| store | read | hot only (median ms) | across tiers (median ms) |", "|---|---|---|---|"]
    for r in results:
        for name, hot in r["hot_only"].items():
            lines.append(
                f"| {r['store']} | {name} | {hot['median_ms']} | {r['across_tiers'][name]['median_ms']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--stores", default="parquet,chdb")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/archive"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one store in this process, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_store(args.one, args.work / args.one, args.events), default=str))
        return
    results = []
    for kind in args.stores.split(","):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_archive",
                "--events",
                str(args.events),
                "--work",
                str(args.work),
                "--one",
                kind,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "archive.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "archive.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
