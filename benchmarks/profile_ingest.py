"""Where the server's CPU goes under 8-client ingest, by pipeline stage (py-spy samples of every thread).

The ingest benchmark says how far govtrack is from the bare pipeline; this says why. It starts the
server on a store (as benchmarks.bench_ingest does), posts the add-in's 1000-event batches from 8
clients, samples every thread of the server with py-spy (non-blocking: pausing the server to
sample cut its throughput thirtyfold) and charges each sample to the stage of its innermost
govtrack frame (time inside Arrow, DuckDB, ClickHouse or hashlib counts for the govtrack code that
called it): the decoder module, the group-commit writer, the transparency log, the
engine's append; samples with no govtrack frame are the HTTP server and event loop. Stages are
reported as a share of the samples and as CPU ms per 1000 acknowledged events (the server's
measured CPU time split by those shares). py-spy sees only threads that run Python: the engines'
native threads (ClickHouse merges, DuckDB workers) are not sampled, so their CPU is spread over
the stages in proportion, which overstates every stage a little and most where the engine works
most in its own threads (ClickHouse).

Run: `python -m benchmarks.profile_ingest --store parquet|chdb|noop [--seconds 20]`.
Results: benchmarks/results/profile_<store>.md (needs py-spy, a dev dependency, and ptrace rights).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._server import cpu_s, serve
from benchmarks.bench_ingest import server_for
from benchmarks.load import run_load

RESULTS = Path(__file__).parent / "results"
#: Stage of a govtrack frame, by the path of its module (first match wins; most specific first).
STAGES: tuple[tuple[str, str], ...] = (
    ("storage/log/", "transparency log (canonical form, SHA-256, tree files)"),
    ("api/ingest/json_input", "decode: JSON to columns"),
    ("api/ingest/arrow_input", "decode: Arrow input"),
    ("api/ingest/timestamps", "decode: timestamps"),
    ("api/ingest/event_ids", "decode: event ids"),
    ("api/ingest/validation", "decode: validation"),
    ("api/ingest/columns", "decode: columns to Arrow"),
    ("api/ingest/normalize", "decode: normalize names and values"),
    ("api/ingest/body", "decode: body read and decompression"),
    ("api/ingest/", "decode: other"),
    ("storage/writer", "group commit (concat, in-batch dedup)"),
    ("storage/parquet/index", "Parquet: id hash index"),
    ("storage/parquet/compaction", "Parquet: compaction"),
    ("storage/parquet/", "Parquet: append (dedup lookup, files, rollups, manifest)"),
    ("storage/clickhouse/", "ClickHouse: append (id lookup, insert)"),
    ("storage/", "storage: other (resilient appender, spool, metrics)"),
    ("api/", "HTTP handler (routing, response, metrics)"),
)


def stage_of(stack: str) -> str:
    """The stage of one collapsed stack (root first, `;`-separated `func (file:line)` frames)."""
    frames = stack.split(";")
    if "(storage/parquet/compaction" in stack:  # a merge's file writes run in layout.py's code too
        return "Parquet: compaction"
    for frame in reversed(frames):
        for prefix, stage in STAGES:
            if f"({prefix}" in frame:
                return stage
    text = stack.lower()
    if "chdb" in text or "clickhouse" in text or "duckdb" in text:
        return "engine calls outside govtrack's frames"
    if any(name in text for name in ("uvicorn", "h11", "httptools", "starlette", "asyncio", "anyio")):
        return "HTTP server and event loop"
    return "other (interpreter, native without Python frames)"


def _frame(frame: str) -> str:
    """`func (path:line)` without the line number, a library's path from its package."""
    name, _, where = frame.partition(" (")
    where = where.rsplit(":", 1)[0].split("site-packages/")[-1].removesuffix(")")
    return f"{name} ({where})" if where else name


def hottest_call(stack: str) -> str:
    """`innermost govtrack frame -> innermost frame` of one collapsed stack."""
    frames = stack.split(";")
    own = next((f for f in reversed(frames) if f.split("(")[-1].startswith(("api/", "storage/"))), "-")
    return f"`{_frame(own)}` -> `{_frame(frames[-1])}`"


def profile(store: str, seconds: float, clients: int, rate: int, keep_raw: Path | None = None) -> str:
    """Run the load, sample the server, return the markdown report (`keep_raw`: copy of the stacks)."""
    work = Path(tempfile.mkdtemp(prefix=f"govtrack-profile-{store}-"))
    raw = work / "pyspy.txt"
    url, noop, _ = server_for(store, work)
    try:
        with serve(url, work, noop=noop) as (base, pid):
            port = int(base.rsplit(":", 1)[1])
            warmup = 3.0
            marks: list[float] = []
            spy: list[subprocess.Popen[bytes]] = []

            def start_sampling() -> None:
                marks.append(cpu_s(pid))
                command = [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid)]
                command += ["-d", str(int(seconds)), "-r", str(rate)]
                command += ["-f", "raw", "--nonblocking", "--full-filenames", "-o", str(raw)]
                spy.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

            timer = threading.Timer(warmup, start_sampling)
            timer.start()
            result = run_load(port, clients, seconds, warmup=warmup)
            timer.join()
            marks.append(cpu_s(pid))
            _, err = spy[0].communicate(timeout=120)
            if spy[0].returncode != 0 or not raw.exists():
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')}")
        if keep_raw is not None:
            shutil.copyfile(raw, keep_raw)
        counts: collections.Counter[str] = collections.Counter()
        calls: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if stack:
                stack = _relative(stack)
                counts[stage_of(stack)] += int(samples)
                calls[hottest_call(stack)] += int(samples)
        total = sum(counts.values()) or 1
        cpu_per_1k = (marks[-1] - marks[0]) * 1e6 / max(result.events, 1)
        lines = [
            f"# Where the server's CPU goes: {store}, {clients} clients ({time.strftime('%Y-%m-%d %H:%M')} UTC)",
            "",
            f"{result.events_per_s:,.0f} events/s acknowledged; server CPU {cpu_per_1k:.2f} ms per 1000 events "
            f"(all threads); {total:,} py-spy samples at {rate}/s over {seconds:.0f} s of the threads running "
            "Python (waiting threads and the engines' native threads are not sampled: their CPU is spread "
            "over the stages in proportion); "
            f"load average {os.getloadavg()[0]:.2f}.",
            "",
            "| stage | share of samples | CPU ms per 1000 events |",
            "|---|---|---|",
        ]
        for stage, hits in counts.most_common():
            lines.append(f"| {stage} | {100 * hits / total:.1f} % | {cpu_per_1k * hits / total:.2f} |")
        lines += ["", "The 15 hottest calls (innermost govtrack function, and where the time was spent):", ""]
        lines += ["| govtrack function -> innermost frame | share of samples |", "|---|---|"]
        for call, hits in calls.most_common(15):
            lines.append(f"| {call} | {100 * hits / total:.1f} % |")
        return "\n".join(lines) + "\n"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _relative(text: str) -> str:
    """Paths as the repository spells them, so the stage prefixes match any checkout."""
    return text.replace(str(Path(__file__).resolve().parent.parent) + "/", "")


def main() -> None:
    """Profile one store and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("parquet", "chdb", "noop"), required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks in this file")
    args = parser.parse_args()
    text = profile(args.store, args.seconds, args.clients, args.rate, args.raw)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile_{args.store}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
