"""Offline verification of an export or archive against a signed checkpoint (`govtrack verify`).

What an export must carry (Parquet files, anywhere under the directory; `log/` is skipped; in an
archive, only its `year=YYYY/month=MM/` directories, the files it serves, the others named):
every column of storage/schema.py, `session_seq` if the add-in sent it, and

    leaf_index  int64, not null: the event's position in the log (0, 1, 2 ... in commit order)
    leaf_hash   binary(32) (or binary of 32 bytes), not null: SHA-256(0x00 || canonical event)

Checks, in order, each finding naming a leaf index and an event id:
1. the checkpoint's signature, by the auditor's key (never a key taken from the export);
2. every row: leaf_index and leaf_hash present, and the recomputed leaf equal to leaf_hash (a
   changed field; a row moved to another index, since the index is part of the leaf);
3. the indexes: each of 0 .. size-1 exactly once (a deleted event, a truncated tail), none
   twice (a duplicate, an inserted event), none beyond the checkpoint (an inserted event), and
   no event_id at two leaves (a duplicate);
4. the root of the recomputed leaves equals the checkpoint's (leaf hashes rewritten to match
   edited rows). The log's tree files (`log/tree/level-00.bin`, kept beside archives) locate
   the first such leaf: once they hash to the signed root, each of their leaf hashes is authentic;
5. an older checkpoint the auditor kept: its signature, and the consistency proof from it to
   the new one, computed from the recomputed leaves and checked with `verify_consistency`.

Completeness per session (gaps in session_seq, numbers with two contents, no session_end) is
reported beside the findings, not as one: it describes what the add-in sent, not the log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.log.canonical import REQUIRED_COLUMNS, leaf_hashes
from storage.log.checkpoint import Checkpoint, verify_checkpoint
from storage.log.completeness import session_completeness
from storage.log.merkle import EMPTY_ROOT, HASH_SIZE, consistency_proof, node_hash, verify_consistency
from storage.log.note import NoteError, Verifier

__all__ = ["Finding", "Report", "export_files", "is_archive", "merkle_root", "verify_export"]

TREE_DIR: Final = "log"
_YEAR: Final = re.compile(r"year=\d{4}")
_MONTH: Final = re.compile(r"month=\d{2}")
_COLUMNS: Final = (*REQUIRED_COLUMNS, "leaf_hash", "session_seq")
_BATCH_ROWS: Final = 65_536


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not check: which leaf, which event, what."""

    kind: str
    message: str
    leaf_index: int | None = None
    event_id: str | None = None

    def line(self) -> str:
        """`leaf 41 (event 1f0c...): message`."""
        where = "" if self.leaf_index is None else f"leaf {self.leaf_index}"
        if self.event_id is not None:
            where += f"{' ' if where else ''}(event {self.event_id})"
        return f"{where}: {self.message}" if where else self.message


@dataclass(slots=True)
class Report:
    """The outcome of one verification."""

    checked: int = 0
    checkpoint: Checkpoint | None = None
    old_checkpoint: Checkpoint | None = None
    findings: list[Finding] = field(default_factory=list)
    sessions: pa.Table | None = None
    #: Checked as a partial export (each event against the signed tree files).
    partial: bool = False
    #: With `partial`: leaves of the log this export does not hold (not a finding).
    absent: int = 0
    #: Parquet files of an archive outside its year=YYYY/month=MM/ directories, not checked.
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when nothing failed and at least one event was checked."""
        return not self.findings and self.checked > 0

    def first(self) -> Finding | None:
        """The finding at the lowest leaf index (findings without an index last)."""
        if not self.findings:
            return None
        return min(self.findings, key=lambda f: (f.leaf_index is None, f.leaf_index or 0))


@dataclass(slots=True)
class _Leaves:
    """Per row of the export: leaf index, recomputed leaf hash, event id (in file order)."""

    indexes: list[npt.NDArray[np.int64]] = field(default_factory=list)
    hashes: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    event_ids: list[pa.Array] = field(default_factory=list)


def is_archive(path: Path) -> bool:
    """Whether `path` is an archive (month manifests in year=YYYY/month=MM/), not an export."""
    return path.is_dir() and any(path.glob("year=*/month=*/_manifest-g*.json"))


def export_files(path: Path) -> list[Path]:
    """The Parquet files of an export or archive (or `path` itself), sorted; tree files skipped."""
    return _files(path)[0]


def _files(path: Path) -> tuple[list[Path], list[str]]:
    """The files to check, and (archives only) the Parquet files left out, relative to `path`.

    An archive is what its year=YYYY/month=MM/ directories hold: anything else under it (an
    export written there by an older default, a copy) is not archived, and reading it would
    report each of its events as a second copy of a leaf.
    """
    if path.is_file():
        return [path], []
    found = sorted(p for p in path.rglob("*.parquet") if TREE_DIR not in p.relative_to(path).parts[:1])
    if not is_archive(path):
        return found, []
    inside = [p for p in found if _in_month(p.relative_to(path))]
    return inside, [p.relative_to(path).as_posix() for p in found if not _in_month(p.relative_to(path))]


def _in_month(rel: Path) -> bool:
    parts = rel.parts
    return len(parts) == 3 and bool(_YEAR.fullmatch(parts[0])) and bool(_MONTH.fullmatch(parts[1]))


def _batches(files: list[Path]) -> Iterator[pa.RecordBatch]:
    for file in files:
        parquet = pq.ParquetFile(file)
        names = [c for c in _COLUMNS if c in parquet.schema_arrow.names]
        yield from parquet.iter_batches(batch_size=_BATCH_ROWS, columns=names)


def _as_hash_matrix(array: pa.Array) -> npt.NDArray[np.uint8]:
    """A fixed_size_binary(32) array (no nulls) as an (n, 32) uint8 matrix."""
    fixed = array.cast(pa.binary(HASH_SIZE))
    if isinstance(fixed, pa.ChunkedArray):
        fixed = fixed.combine_chunks()
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    start = fixed.offset * HASH_SIZE
    return data[start : start + len(fixed) * HASH_SIZE].reshape(len(fixed), HASH_SIZE)


def _check_batch(batch: pa.RecordBatch, leaves: _Leaves, report: Report) -> None:
    """Row checks: index and hash present and well-formed, recomputed leaf equal to the stored one."""
    missing = [c for c in (*REQUIRED_COLUMNS, "leaf_hash") if c not in batch.schema.names]
    if missing:
        raise ValueError(f"the export lacks the column(s) {', '.join(missing)}")
    ids = batch.column("event_id")
    index = batch.column("leaf_index")
    stored = batch.column("leaf_hash")
    usable = pc.and_(pc.is_valid(index), pc.is_valid(stored))
    if pa.types.is_binary(stored.type) or pa.types.is_large_binary(stored.type):
        usable = pc.and_(usable, pc.equal(pc.fill_null(pc.binary_length(stored), 0), HASH_SIZE))
    for row in np.flatnonzero(~np.asarray(usable.to_numpy(zero_copy_only=False))).tolist():
        i = index[row].as_py()
        report.findings.append(
            Finding(
                "inserted", "no usable leaf_index or leaf_hash (not a leaf of the log)", i, ids[row].as_py()
            )
        )
    rows = batch.filter(usable)
    report.checked += batch.num_rows
    if rows.num_rows == 0:
        return
    computed = _as_hash_matrix(leaf_hashes(rows))
    expected = _as_hash_matrix(rows.column("leaf_hash"))
    indexes = rows.column("leaf_index").cast(pa.int64()).to_numpy()
    for row in np.flatnonzero((computed != expected).any(axis=1)).tolist():
        report.findings.append(
            Finding(
                "changed",
                "the event's content does not match its leaf hash (a field changed, or the row moved to another leaf index)",
                int(indexes[row]),
                rows.column("event_id")[row].as_py(),
            )
        )
    leaves.indexes.append(indexes)
    leaves.hashes.append(computed)
    leaves.event_ids.append(rows.column("event_id"))


def merkle_root(hashes: npt.NDArray[np.uint8]) -> bytes:
    """RFC 6962 root of an (n, 32) matrix of leaf hashes, one level at a time."""
    level = [bytes(row) for row in hashes] if len(hashes) else []
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = [*paired, level[-1]] if len(level) % 2 else paired
    return level[0]


def _index_findings(
    order_index: npt.NDArray[np.int64], event_id: pa.Array, size: int, report: Report, partial: bool = False
) -> npt.NDArray[np.bool_]:
    """Findings about the set of indexes; returns which sorted rows are the leaves 0..size-1."""
    n = len(order_index)
    duplicate = np.zeros(n, dtype=bool)
    if n > 1:
        duplicate[1:] = order_index[1:] == order_index[:-1]
    for row in np.flatnonzero(duplicate).tolist():
        report.findings.append(
            Finding(
                "inserted",
                f"leaf index also held by event {event_id[row - 1].as_py()}: one of them was inserted",
                int(order_index[row]),
                event_id[row].as_py(),
            )
        )
    beyond = order_index >= size
    for row in np.flatnonzero(beyond & ~duplicate).tolist():
        report.findings.append(
            Finding(
                "inserted",
                f"beyond the checkpoint's {size} leaves: not in the signed log",
                int(order_index[row]),
                event_id[row].as_py(),
            )
        )
    negative = order_index < 0
    for row in np.flatnonzero(negative).tolist():
        report.findings.append(
            Finding("inserted", "negative leaf index", int(order_index[row]), event_id[row].as_py())
        )
    unique = ~duplicate & ~beyond & ~negative
    present = order_index[unique]
    if partial:  # an export holding some leaves: the absent ones are counted, not findings
        report.absent = size - len(present)
        return unique
    expected = np.arange(len(present), dtype=np.int64)
    gaps = np.flatnonzero(present != expected)
    if len(gaps):
        first = int(gaps[0])
        after = event_id.filter(pa.array(unique))[first].as_py()
        report.findings.append(
            Finding(
                "deleted",
                f"missing from the export (the next present leaf, {int(present[first])}, is event {after})",
                first,
            )
        )
    elif len(present) < size:
        last = event_id.filter(pa.array(unique))[len(present) - 1].as_py() if len(present) else None
        report.findings.append(
            Finding(
                "truncated",
                f"leaves {len(present)}..{size - 1} are missing: the export ends at event {last} (truncated tail)",
                len(present),
            )
        )
    return unique


def _duplicate_events(order_index: npt.NDArray[np.int64], event_id: pa.Array, report: Report) -> None:
    table = pa.table({"event_id": event_id, "leaf_index": order_index})
    counts = table.group_by("event_id").aggregate(
        [("leaf_index", "count"), ("leaf_index", "min"), ("leaf_index", "max")]
    )
    dups = counts.filter(pc.greater(counts["leaf_index_count"], 1))
    for row in dups.to_pylist():
        report.findings.append(
            Finding(
                "duplicate",
                f"the same event also appears at leaf {row['leaf_index_min']}",
                row["leaf_index_max"],
                row["event_id"],
            )
        )


def _locate_with_tree(
    tree: Path, hashes: npt.NDArray[np.uint8], checkpoint: Checkpoint, event_id: pa.Array, report: Report
) -> bool:
    """Name the first leaf whose recomputed hash differs from the log's authenticated tree files."""
    leaf_file = tree / "level-00.bin"
    if not leaf_file.exists():
        return False
    shipped = np.fromfile(leaf_file, dtype=np.uint8)
    if len(shipped) < checkpoint.size * HASH_SIZE:
        return False
    shipped = shipped[: checkpoint.size * HASH_SIZE].reshape(checkpoint.size, HASH_SIZE)
    if merkle_root(shipped) != checkpoint.root:
        return False  # the tree files are not the signed ones either: nothing to compare with
    bad = np.flatnonzero((shipped != hashes).any(axis=1))
    if not len(bad):
        return False
    i = int(bad[0])
    report.findings.append(
        Finding(
            "changed",
            "the event and its leaf hash were both rewritten: the signed tree holds another leaf here",
            i,
            event_id[i].as_py(),
        )
    )
    return True


def verify_export(
    export: Path,
    checkpoint_note: str,
    verifier: Verifier,
    *,
    old_checkpoint_note: str | None = None,
    tree: Path | None = None,
    partial: bool = False,
) -> Report:
    """Verify every event of an export or archive against a signed checkpoint (see the module doc).

    `partial`: the export holds some of the log's leaves (a filtered export, the archive): each
    event is checked against the log's tree files, which must hash to the signed root; leaves it
    does not hold are counted in `Report.absent`. It proves every event held is in the log, in
    its place, unchanged; only a whole export can also show that none is missing.
    """
    report = Report(partial=partial)
    try:
        report.checkpoint = verify_checkpoint(checkpoint_note, verifier)
    except NoteError as exc:
        report.findings.append(Finding("signature", f"the checkpoint does not verify: {exc}"))
        return report
    if old_checkpoint_note is not None:
        try:
            report.old_checkpoint = verify_checkpoint(old_checkpoint_note, verifier)
        except NoteError as exc:
            report.findings.append(Finding("signature", f"the older checkpoint does not verify: {exc}"))
            return report
    leaves = _Leaves()
    files, report.not_checked = _files(export)
    for batch in _batches(files):
        _check_batch(batch, leaves, report)
    if report.checked == 0:
        report.findings.append(Finding("empty", f"no event found under {export}"))
        return report
    tree_dir = tree if tree is not None else export / TREE_DIR / "tree"
    if partial:
        _check_partial(leaves, report, tree_dir)
    else:
        _check_tree(leaves, report, tree_dir)
    report.sessions = session_completeness(files)
    return report


def _check_tree(leaves: _Leaves, report: Report, tree: Path) -> None:
    checkpoint = report.checkpoint
    assert checkpoint is not None  # noqa: S101 - set by the caller before the rows are read
    if not leaves.indexes:
        return
    indexes = np.concatenate(leaves.indexes)
    hashes = np.concatenate(leaves.hashes)
    event_ids = pa.chunked_array(leaves.event_ids).combine_chunks()
    order = np.argsort(indexes, kind="stable")
    sorted_index, sorted_hashes = indexes[order], hashes[order]
    sorted_ids = event_ids.take(pa.array(order))
    unique = _index_findings(sorted_index, sorted_ids, checkpoint.size, report)
    _duplicate_events(sorted_index, sorted_ids, report)
    if report.findings:
        return  # the leaves are not 0..size-1 once each: a root would only restate that
    leaf_hashes_sorted = sorted_hashes[unique]
    if merkle_root(leaf_hashes_sorted) != checkpoint.root:
        if not _locate_with_tree(tree, leaf_hashes_sorted, checkpoint, sorted_ids, report):
            report.findings.append(
                Finding(
                    "root",
                    "the leaves do not hash to the checkpoint's root (leaf hashes rewritten to match "
                    "edited events; pass the log's tree directory to locate the first one)",
                )
            )
        return
    old = report.old_checkpoint
    if old is not None:
        _check_old(old, checkpoint, leaf_hashes_sorted, report)


def _signed_leaves(tree: Path, checkpoint: Checkpoint) -> npt.NDArray[np.uint8] | None:
    """The tree files' first `size` leaf hashes when they hash to the checkpoint's root, else None."""
    leaf_file = tree / "level-00.bin"
    if not leaf_file.exists():
        return None
    shipped = np.fromfile(leaf_file, dtype=np.uint8, count=checkpoint.size * HASH_SIZE)
    if len(shipped) < checkpoint.size * HASH_SIZE:
        return None
    shipped = shipped.reshape(checkpoint.size, HASH_SIZE)
    return shipped if merkle_root(shipped) == checkpoint.root else None


def _check_partial(leaves: _Leaves, report: Report, tree: Path) -> None:
    """Each held leaf against the signed tree's leaf at its index; absent leaves only counted."""
    checkpoint = report.checkpoint
    assert checkpoint is not None  # noqa: S101 - set by the caller before the rows are read
    signed = _signed_leaves(tree, checkpoint)
    if signed is None:
        report.findings.append(
            Finding(
                "tree",
                f"a partial check needs the log's tree files hashing to the signed root ({tree}/level-00.bin)",
            )
        )
        return
    if not leaves.indexes:
        return
    indexes = np.concatenate(leaves.indexes)
    hashes = np.concatenate(leaves.hashes)
    event_ids = pa.chunked_array(leaves.event_ids).combine_chunks()
    order = np.argsort(indexes, kind="stable")
    sorted_index, sorted_ids = indexes[order], event_ids.take(pa.array(order))
    unique = _index_findings(sorted_index, sorted_ids, checkpoint.size, report, partial=True)
    _duplicate_events(sorted_index, sorted_ids, report)
    held = sorted_index[unique]
    differs = (signed[held] != hashes[order][unique]).any(axis=1)
    unique_ids = sorted_ids.filter(pa.array(unique))
    for row in np.flatnonzero(differs).tolist():
        report.findings.append(
            Finding(
                "changed",
                "the event and its leaf hash were both rewritten: the signed tree holds another leaf here",
                int(held[row]),
                unique_ids[row].as_py(),
            )
        )


def _check_old(old: Checkpoint, new: Checkpoint, hashes: npt.NDArray[np.uint8], report: Report) -> None:
    """Consistency from the auditor's older checkpoint, proved from the recomputed leaves."""
    if old.size > new.size:
        report.findings.append(
            Finding(
                "consistency",
                f"the older checkpoint ({old.size} leaves) is larger than the new one ({new.size})",
            )
        )
        return

    def subtree(start: int, end: int) -> bytes:
        return merkle_root(hashes[start:end])

    proof = consistency_proof(old.size, new.size, subtree)
    if not verify_consistency(old.size, new.size, old.root, new.root, proof):
        report.findings.append(
            Finding(
                "consistency",
                f"the log is not an extension of the older checkpoint ({old.size} leaves): history was rewritten",
                old.size,
            )
        )


def leaf_hash_hex(data: bytes) -> str:
    """Hex of SHA-256(0x00 || data) (for messages and the standalone script's tests)."""
    return hashlib.sha256(b"\x00" + data).hexdigest()
