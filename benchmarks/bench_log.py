"""What the transparency log costs (issue 11): per 1000 events, proofs at 10M leaves, verify per 1M.

    python -m benchmarks.bench_log [--leaves 10000000] [--verify-events 1000000]

1. canonical form + leaf hash per 1000 events, in 1000-row batches (one request) and in
   50,000-row batches (a full group commit), CPU time (process_time: the machine is shared);
2. tree append (frontier + tree files) per 1000 leaves;
3. inclusion and consistency proof latency at `--leaves` leaves from the tree files, and the
   time to verify one proof;
4. `verify_export` over an export of `--verify-events` demo events (wall time per million).
Results go to benchmarks/results/log.txt.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics.demo import generate_events
from storage.export import write_partitioned
from storage.log.canonical import canonical_events, hash_leaves, with_leaves
from storage.log.checkpoint import Checkpoint
from storage.log.merkle import verify_consistency, verify_inclusion
from storage.log.note import generate_signer
from storage.log.treefile import TreeFiles
from storage.log.verify import verify_export

RESULTS = Path(__file__).parent / "results" / "log.txt"


def _cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU milliseconds of `fn` over `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def bench_canonical(lines: list[str]) -> None:
    events = with_leaves(generate_events(50_000, seed=1), 0)
    small = events.slice(0, 1000)
    canonical_small = canonical_events(small)
    canonical_big = canonical_events(events)
    per_1000 = {
        "canonical, 1000-row batch": _cpu_ms(lambda: canonical_events(small), 50),
        "leaf hash, 1000-row batch": _cpu_ms(lambda: hash_leaves(canonical_small), 50),
        "canonical, 50,000-row batch": _cpu_ms(lambda: canonical_events(events), 5) / 50,
        "leaf hash, 50,000-row batch": _cpu_ms(lambda: hash_leaves(canonical_big), 5) / 50,
    }
    mean_bytes = sum(len(b) for b in canonical_small.to_pylist()) / 1000
    lines.append(f"canonical event: mean {mean_bytes:.0f} bytes (demo events, two attributes each)")
    for name, ms in per_1000.items():
        lines.append(f"  {name}: {ms:.2f} ms CPU per 1000 events")


def bench_tree(lines: list[str], leaves: int, workdir: Path) -> None:
    rng = np.random.default_rng(7)
    tree = TreeFiles(workdir / "tree", durable=False)
    chunk = 1_000_000
    start = time.perf_counter()
    cpu = time.process_time()
    while tree.size < leaves:
        count = min(chunk, leaves - tree.size)
        raw = rng.integers(0, 256, size=(count, 32), dtype=np.uint8).tobytes()
        tree.append([raw[i : i + 32] for i in range(0, len(raw), 32)])
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    size = tree.size
    disk = sum(p.stat().st_size for p in (workdir / "tree").iterdir())
    lines.append(
        f"tree files: {size:,} leaves appended in {build_s:.1f} s ({build_cpu / size * 1e6 * 1000 / 1000:.2f} ms CPU "
        f"per 1000 leaves, incl. random hashes), {disk / 1e6:.0f} MB on disk ({disk / size:.1f} B per leaf)"
    )
    root = tree.root()
    picks = random.Random(3)
    inclusion, consistency, checks = [], [], []
    for _ in range(300):
        index = picks.randrange(size)
        t0 = time.perf_counter()
        proof = tree.inclusion_proof(index)
        t1 = time.perf_counter()
        ok = verify_inclusion(index, size, tree.leaf(index), proof, root)
        t2 = time.perf_counter()
        assert ok
        inclusion.append((t1 - t0) * 1000)
        checks.append((t2 - t1) * 1000)
    for _ in range(100):
        old = picks.randrange(1, size)
        t0 = time.perf_counter()
        proof = tree.consistency_proof(old)
        consistency.append((time.perf_counter() - t0) * 1000)
        assert verify_consistency(old, size, tree.root(old), root, proof)
    lines.append(
        f"  inclusion proof at {size:,} leaves: median {statistics.median(inclusion):.3f} ms, "
        f"p99 {np.percentile(inclusion, 99):.3f} ms; verifying one: median {statistics.median(checks):.3f} ms"
    )
    lines.append(
        f"  consistency proof to {size:,} leaves: median {statistics.median(consistency):.3f} ms, "
        f"p99 {np.percentile(consistency, 99):.3f} ms"
    )
    tree.close()


def bench_append(lines: list[str], workdir: Path) -> None:
    tree = TreeFiles(workdir / "append", durable=True)
    hashes = [os.urandom(32) for _ in range(50_000)]
    cpu = _cpu_ms(lambda: tree.append(hashes[:1000]), 20)
    lines.append(f"tree append with fsync, 1000 leaves per commit: {cpu:.2f} ms CPU per 1000 leaves")
    tree.close()


def bench_verify(lines: list[str], events: int, workdir: Path) -> None:
    signer = generate_signer("govtrack.bench/log")
    export = workdir / "export"
    tree = TreeFiles(export / "log" / "tree", durable=False)
    batch = 200_000
    for first in range(0, events, batch):
        rows = with_leaves(generate_events(min(batch, events - first), seed=first), first)
        write_partitioned(rows, export / f"part-{first:09d}", schema=rows.schema)
        values = rows.column("leaf_hash").combine_chunks()
        data = values.buffers()[1].to_pybytes()
        tree.append([data[i : i + 32] for i in range(0, len(data), 32)])
    note = Checkpoint(signer.name, tree.size, tree.root()).sign(signer)
    start, cpu = time.perf_counter(), time.process_time()
    report = verify_export(export, note, signer.verifier)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    assert report.ok, report.first()
    lines.append(
        f"verify_export over {events:,} events: {wall:.1f} s wall, {used:.1f} s CPU "
        f"= {wall / events * 1e6:.1f} s per million events (incl. session completeness)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leaves", type=int, default=10_000_000)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    args = parser.parse_args()
    load = os.getloadavg()
    lines = [f"bench_log on {platform.node()}, {os.cpu_count()} cores, load average {load[0]:.1f} at start"]
    workdir = Path(tempfile.mkdtemp(prefix="bench_log_"))
    try:
        bench_canonical(lines)
        bench_append(lines, workdir)
        bench_tree(lines, args.leaves, workdir)
        bench_verify(lines, args.verify_events, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
