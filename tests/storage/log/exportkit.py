"""Signed, verifiable exports built the way the integration will, and tampered copies of them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.demo import generate_events
from storage.export import write_partitioned
from storage.log.canonical import leaf_hashes, with_leaves
from storage.log.log import TransparencyLog
from storage.log.note import Signer, generate_signer

ORIGIN = "govtrack.test/log"


@dataclass
class LogExport:
    """An export directory with leaf columns, the log's tree files and checkpoint under log/."""

    path: Path
    signer: Signer
    rows: pa.Table  # every exported row, in leaf order

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    @property
    def checkpoint(self) -> Path:
        return self.path / "log" / "checkpoint"

    def event_id(self, leaf: int) -> str:
        return str(self.rows.column("event_id")[leaf].as_py())


def build_export(
    root: Path, events: pa.Table, signer: Signer | None = None, *, checkpoint_at: list[int] | None = None
) -> LogExport:
    """Leaves 0..n-1 in row order; a checkpoint at each size in `checkpoint_at` (last: n)."""
    signer = signer or generate_signer(ORIGIN)
    rows = with_leaves(events, 0)
    write_partitioned(rows, root, schema=rows.schema)
    log = TransparencyLog(root / "log", signer, durable=False)
    done = 0
    for size in [*(checkpoint_at or []), rows.num_rows]:
        log.committed(rows.column("leaf_hash").slice(done, size - done).combine_chunks())
        log.checkpoint()
        done = size
    log.close()
    return LogExport(root, signer, rows)


def demo_export(root: Path, n: int = 60, seed: int = 4) -> LogExport:
    return build_export(root, generate_events(n, seed=seed))


def read_rows(export: Path) -> pa.Table:
    files = sorted(p for p in export.rglob("*.parquet") if "log" not in p.relative_to(export).parts[:1])
    table = pa.concat_tables(pq.read_table(f, schema=pq.read_schema(f)) for f in files)
    return table.take(pc.sort_indices(table, [("leaf_index", "ascending")]))


def tampered_copy(export: LogExport, target: Path, rows: pa.Table) -> Path:
    """A copy of the export whose events are replaced by `rows` (its log/ folder kept)."""
    shutil.copytree(export.path, target)
    for file in target.rglob("*.parquet"):
        if "log" not in file.relative_to(target).parts[:1]:
            file.unlink()
    pq.write_table(rows, target / "tampered.parquet")
    return target


def rehash(rows: pa.Table) -> pa.Table:
    """Recompute leaf_hash from the (edited) rows: what a forger who read the docs would do."""
    index = rows.schema.get_field_index("leaf_hash")
    return rows.set_column(
        index, rows.schema.field("leaf_hash"), leaf_hashes(rows.drop_columns(["leaf_hash"]))
    )
