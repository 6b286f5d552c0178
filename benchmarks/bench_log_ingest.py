"""What the transparency log costs an append, per 1000 events, on both stores (issue 11).

    python -m benchmarks.bench_log_ingest [--events 100000] [--rounds 3]

Store-level appends (no HTTP) of the same demo events into fresh stores, with the log on and off,
interleaved A/B/A/B so that the machine's load drifts onto both alike; per configuration the
median over rounds of process CPU (all threads: DuckDB, chdb, the log's signer) and of wall time
per 1000 appended events. Batches of 1000 rows (one small request per append) and 20,000 rows
(a group commit under load). Also the log's own steps, in-process: leaf columns (canonical form +
SHA-256, storage.log.store_log.with_leaf_columns) and the tree-file append. Results are appended
to benchmarks/results/log_ingest.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from analytics.demo import generate_events
from storage.base import EventStore
from storage.factory import create_store
from storage.log.canonical import canonical_events, hash_leaves
from storage.log.store_log import LogOptions, with_leaf_columns
from storage.log.treefile import TreeFiles

RESULTS = Path(__file__).parent / "results" / "log_ingest.txt"


def _store(kind: str, root: Path, log: bool) -> EventStore:
    options = LogOptions(enabled=log)
    if kind == "parquet":
        store = create_store(f"parquet://{root / uuid.uuid4().hex}", log=options)
    else:
        store = create_store(f"chdb://{root / 'chdb'}", database=f"b_{uuid.uuid4().hex[:10]}", log=options)
    store.open()
    return store


def _append_all(store: EventStore, batches: list[pa.Table]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of appending every batch."""
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        store.append(batch)
    return time.process_time() - cpu, time.perf_counter() - wall


def stores(events: pa.Table, rounds: int, batch_rows: int, root: Path) -> list[str]:
    """Per store and log on/off: CPU and wall ms per 1000 events, medians over `rounds`."""
    batches = [events.slice(i, batch_rows) for i in range(0, events.num_rows, batch_rows)]
    per_1000 = 1000 / events.num_rows
    lines = []
    for kind in ("parquet", "chdb"):
        cpu: dict[bool, list[float]] = {True: [], False: []}
        wall: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for log in (False, True):
                store = _store(kind, root, log)
                try:
                    c, w = _append_all(store, batches)
                finally:
                    store.close()
                cpu[log].append(c * 1000 * per_1000)
                wall[log].append(w * 1000 * per_1000)
        off_c, on_c = statistics.median(cpu[False]), statistics.median(cpu[True])
        off_w, on_w = statistics.median(wall[False]), statistics.median(wall[True])
        lines.append(
            f"{kind:8s} batch {batch_rows:>6,}: CPU {off_c:6.2f} -> {on_c:6.2f} ms per 1000 events "
            f"(+{on_c - off_c:.2f}, {on_c / off_c - 1:+.0%}); wall {off_w:6.2f} -> {on_w:6.2f} ms "
            f"({1000 / off_w * 1000:,.0f} -> {1000 / on_w * 1000:,.0f} events/s)"
        )
    return lines


def steps(events: pa.Table, root: Path) -> list[str]:
    """The log's own steps per 1000 events (best of 5): leaf columns, tree append."""
    lines = []
    for batch_rows in (1000, 20_000):
        part = events.slice(0, batch_rows)
        best = min(_cpu(functools.partial(with_leaf_columns, part, 0)) for _ in range(5))
        lines.append(
            f"leaf columns (canonical + SHA-256), {batch_rows:,} rows: {best * 1e6 / batch_rows:.2f} ms CPU per 1000"
        )
    lines += _hash_engines(events.slice(0, 20_000))
    hashes = [
        bytes(row) for row in np.random.default_rng(1).integers(0, 256, size=(200_000, 32), dtype=np.uint8)
    ]
    tree = TreeFiles(root / "tree", durable=False)
    try:
        cpu = _cpu(lambda: [tree.append(hashes[i : i + 1000]) for i in range(0, len(hashes), 1000)])
    finally:
        tree.close()
    lines.append(
        f"tree-file append (no fsync), 1000 leaves per commit: {cpu * 1e6 / len(hashes):.2f} ms CPU per 1000"
    )
    return lines


def _hash_engines(events: pa.Table) -> list[str]:
    """SHA-256(0x00 || canonical) of the events: hashlib in a loop vs DuckDB's sha256 (best of 5)."""
    canonical = canonical_events(with_leaf_columns(events, 0))
    con = duckdb.connect(":memory:")
    con.register("c", pa.table({"c": canonical.cast(pa.binary())}))
    duck = "SELECT unhex(sha256('\\x00'::BLOB || c)) AS h FROM c"
    if con.sql(duck).to_arrow_table().column("h").to_pylist() != hash_leaves(canonical).to_pylist():
        raise AssertionError("DuckDB's leaf hashes differ from hashlib's")
    n = events.num_rows
    loop = min(_cpu(lambda: hash_leaves(canonical)) for _ in range(5))
    engine = min(_cpu(lambda: con.sql(duck).to_arrow_table()) for _ in range(5))
    con.close()
    return [
        f"leaf SHA-256 by hashlib in a loop: {loop * 1e6 / n:.2f} ms CPU per 1000; "
        f"by DuckDB sha256 (hex, then unhex): {engine * 1e6 / n:.2f} ms CPU per 1000 (all threads)"
    ]


def _cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = generate_events(args.events, seed=7)
    root = Path(tempfile.mkdtemp(prefix="bench-log-ingest-"))
    load = os.getloadavg()[0]
    lines = [
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} events={args.events:,} rounds={args.rounds} "
        f"cores={os.cpu_count()} load average at start {load:.1f}"
    ]
    try:
        lines += steps(events, root)
        for batch_rows in (1000, 20_000):
            lines += stores(events, args.rounds, batch_rows, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
