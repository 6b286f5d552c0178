"""The transparency log as a store drives it: leaves at commit, tree files after, checkpoints behind.

A store with one writer (ParquetStore, the embedded ClickHouseStore) owns one `StoreLog`:

1. `open(read_size, read_rows, archived)` at the store's open: brings the tree files to the
   store's committed leaves (a kill -9 between a commit and its tree-file append leaves them
   behind; they are extended from the `leaf_hash` column the store committed with the events).
   Months moved to the archive took their leaves along: with `archived` (the archive tier's
   reader) those count too and are read from there, so tree files rebuilt from scratch (lost, or
   a fresh log directory) hold every leaf, and the next leaf never reuses an archived index.
   Tree files ahead of the store are kept: those leaves were committed once (the store lost
   events, which verification then names), and a log never shrinks.
2. `assign(rows)` under the store's writer lock, after deduplication: the rows as the next leaves.
   The store writes `leaf_index`/`leaf_hash` in the same commit unit as the events.
3. `committed(rows)` under the same lock once the commit returned: the tree files are extended
   and the background signer is woken. `failed()` after a commit that raised: the next `assign`
   first asks the store how far it really got (`read_size`), so an index is never handed out twice.
4. A background thread signs a checkpoint right after a commit, then at most once per
   `checkpoint_interval_s` while commits keep coming; `checkpoint_now()` signs at once (tests,
   and a proof asked for before the thread got to it).

The tree files are written without fsync (`durable=False`): they are derived from the events,
which are durable, and step 1 repairs them at every open. The checkpoint file is fsync'd.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import pyarrow as pa

from storage.log.canonical import LEAF_HASH_TYPE, leaf_hashes
from storage.log.checkpoint import Checkpoint, InconsistentCheckpointError
from storage.log.log import LeafHashReader, TransparencyLog
from storage.log.note import load_or_create_signer
from storage.schema import LOG_COLUMNS

__all__ = [
    "DEFAULT_ORIGIN",
    "ArchivedLeaves",
    "LogOptions",
    "LogUnavailableError",
    "StoreLog",
    "exact_leaf_range",
    "with_leaf_columns",
    "without_leaves",
]

log = logging.getLogger(__name__)

DEFAULT_ORIGIN: Final = "govtrack.local/log"
KEY_FILE: Final = "signing.key"


class LogUnavailableError(LookupError):
    """The store keeps no transparency log (several writers), or it is not open."""


@dataclass(frozen=True, slots=True)
class LogOptions:
    """How a store keeps its log; `directory` None: the store's default (beside its data)."""

    enabled: bool = True
    directory: Path | None = None
    key_file: Path | None = None
    origin: str = DEFAULT_ORIGIN
    #: Generate a signing key when the key file is missing (local mode); else refuse to start.
    create_key: bool = True
    checkpoint_interval_s: float = 1.0


#: The store's committed size: the number of leaves it holds (its next leaf index).
SizeReader = Callable[[], int]
#: The (leaf_index, leaf_hash) rows a store holds in [first, last), in any order, maybe some missing.
LeafRowReader = Callable[[int, int], pa.Table]


class ArchivedLeaves(Protocol):
    """The leaves of a store's archived months (storage.archive.reader.ArchiveReader)."""

    def leaf_end(self) -> int:
        """One past the highest archived leaf index (0: none)."""
        ...

    def leaf_rows(self, first: int, last: int) -> pa.Table:
        """The archived (leaf_index, leaf_hash) rows in [first, last)."""
        ...


def with_leaf_columns(rows: pa.Table, first_index: int) -> pa.Table:
    """`rows` with leaf_index first_index, first_index + 1, ... and their leaf hashes, in place.

    The two columns replace the table's own (null) ones at their positions, so the table keeps
    its schema; the hash is computed column-wise (storage.log.canonical).
    """
    n = rows.num_rows
    indexes = pa.array(np.arange(first_index, first_index + n, dtype=np.int64))
    rows = _set_column(rows, "leaf_index", indexes)
    return _set_column(rows, "leaf_hash", leaf_hashes(rows))


def without_leaves(rows: pa.Table) -> pa.Table:
    """The rows with null leaf columns: only a store's own log sets them, never its caller."""
    for name in LOG_COLUMNS:
        position = rows.schema.get_field_index(name)
        if position >= 0 and rows.column(position).null_count != rows.num_rows:
            field = rows.schema.field(position)
            rows = rows.set_column(position, field, pa.nulls(rows.num_rows, field.type))
    return rows


def _set_column(rows: pa.Table, name: str, values: pa.Array) -> pa.Table:
    position = rows.schema.get_field_index(name)
    field = rows.schema.field(name) if position >= 0 else pa.field(name, values.type)
    values = values.cast(field.type)
    if position < 0:
        return rows.append_column(field, values)
    return rows.set_column(position, field, values)


class StoreLog:
    """One store's log: leaf assignment, tree files, signed checkpoints (see the module docstring)."""

    def __init__(self, directory: Path, options: LogOptions) -> None:
        key_file = options.key_file or directory / KEY_FILE
        signer, created = load_or_create_signer(key_file, options.origin, create=options.create_key)
        if created:
            log.warning(
                "transparency log: generated a new signing key in %s; verifier key %s",
                key_file,
                signer.verifier.vkey(),
            )
        self.directory = directory
        self.key_file = key_file
        self.log = TransparencyLog(directory, signer, durable=False)
        self._interval = options.checkpoint_interval_s
        self._next = self.log.size
        self._unsure = False
        self._read_size: SizeReader | None = None
        self._read_hashes: LeafHashReader | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._signer: threading.Thread | None = None
        self.last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def open(
        self, read_size: SizeReader, read_rows: LeafRowReader, archived: ArchivedLeaves | None = None
    ) -> None:
        """Bring the tree files to the committed leaves (the archived ones too); start the signer."""
        if archived is None:
            self._read_size = read_size
            self._read_hashes = lambda first, last: exact_leaf_range(read_rows(first, last), first, last)
        else:
            self._read_size = lambda: max(read_size(), archived.leaf_end())
            self._read_hashes = lambda first, last: exact_leaf_range(
                both_tiers(read_rows(first, last), archived.leaf_rows(first, last)), first, last
            )
        self._catch_up()
        self._check_against_checkpoint()
        self._signer = threading.Thread(target=self._sign_loop, name="govtrack-log-signer", daemon=True)
        self._signer.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the signer (after one last checkpoint) and close the tree files; idempotent."""
        if self._signer is not None:
            self._stop.set()
            self._wake.set()
            self._signer.join()
            self._signer = None
            self._sign()
        self.log.close()

    # -- the commit path (under the store's writer lock) ------------------------------------------

    def assign(self, rows: pa.Table) -> pa.Table:
        """`rows` as the next leaves (the store writes them with the events)."""
        if self._unsure:
            self._catch_up()
        return with_leaf_columns(rows, self._next)

    def committed(self, rows: pa.Table) -> None:
        """The store committed `rows` (as `assign` returned them): extend the tree, wake the signer."""
        if rows.num_rows == 0:
            return
        self._next += rows.num_rows
        try:
            if self.log.size == self._next - rows.num_rows:
                self.log.committed(rows.column("leaf_hash").combine_chunks())
            else:
                self._catch_up()
        except Exception as exc:  # the events are committed: the tree catches up at the next chance
            self.last_error = f"tree files not extended: {type(exc).__name__}: {exc}"
            log.error("transparency log: %s", self.last_error)
            self._unsure = True
        self._wake.set()

    def failed(self) -> None:
        """A commit raised after `assign`: part of it may be stored; ask the store before the next."""
        self._unsure = True

    @property
    def next_index(self) -> int:
        """The leaf index the next committed event gets."""
        return self._next

    def _catch_up(self) -> None:
        """Leaves the store holds beyond the tree files go into them (read from the store)."""
        if self._read_size is None or self._read_hashes is None:
            raise LogUnavailableError("the transparency log is not open")
        size = self._read_size()
        if size < self.log.size:
            log.warning(
                "transparency log: the store holds %d leaves, the tree %d; leaves %d..%d are kept "
                "(archived, or lost by the store: verification names them)",
                size,
                self.log.size,
                size,
                self.log.size - 1,
            )
        if size > self.log.size:
            self.log.sync(size, self._read_hashes)
        self._next = max(size, self.log.size)
        self._unsure = False

    def _check_against_checkpoint(self) -> None:
        """Tree files must hash to the last signed root: else say so (the signer refuses, loudly).

        A kill -9 cannot cause it (the page cache keeps what was written; a torn tail is cut at
        open), and tree files cut short by a power loss are extended from the store above.
        """
        latest = self.log.latest_checkpoint()
        if latest is None or latest[0].size > self.log.size:
            return
        checkpoint = latest[0]
        if self.log.tree.root(checkpoint.size) != checkpoint.root:
            self.last_error = (
                f"the tree files do not hash to the signed checkpoint of size {checkpoint.size}: "
                "no further checkpoint is signed until an operator looks"
            )
            log.error("transparency log: %s", self.last_error)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint_now(self) -> str | None:
        """Sign a checkpoint of the tree as it is now; None when it cannot be signed (logged)."""
        return self._sign()

    def latest(self) -> tuple[Checkpoint, str] | None:
        """The latest signed checkpoint and its note."""
        return self.log.latest_checkpoint()

    def _sign(self) -> str | None:
        try:
            note = self.log.checkpoint()
        except InconsistentCheckpointError as exc:
            self.last_error = str(exc)
            log.error("transparency log: refusing to sign: %s", exc)
            return None
        except OSError as exc:
            self.last_error = f"checkpoint not written: {exc}"
            log.error("transparency log: %s", self.last_error)
            return None
        return note

    def _sign_loop(self) -> None:
        """Sign after each wake-up, then rest `interval` seconds: at most one per interval."""
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            self._sign()
            self._stop.wait(self._interval)


def both_tiers(hot: pa.Table, archived: pa.Table) -> pa.Table:
    """Both tiers' (leaf_index, leaf_hash) rows in leaf order; a leaf both hold alike counts once.

    A move interrupted after its manifest committed leaves a month in both tiers until the next
    open finishes it. The same index with two different hashes stays twice, and is refused.
    """
    rows = pa.concat_tables(
        [
            pa.table(
                {
                    "leaf_index": t.column("leaf_index").cast(pa.int64()),
                    "leaf_hash": t.column("leaf_hash").cast(LEAF_HASH_TYPE),
                }
            )
            for t in (hot, archived)
        ]
    ).sort_by("leaf_index")
    if rows.num_rows < 2:
        return rows
    indexes = rows.column("leaf_index").to_numpy()
    hashes = rows.column("leaf_hash").combine_chunks()
    matrix = np.frombuffer(hashes.buffers()[1], dtype=np.uint8)[
        hashes.offset * 32 : (hashes.offset + len(hashes)) * 32
    ].reshape(-1, 32)
    repeat = (indexes[1:] == indexes[:-1]) & (matrix[1:] == matrix[:-1]).all(axis=1)
    return rows.filter(pa.array(np.concatenate([[True], ~repeat])))


def exact_leaf_range(found: pa.Table, first: int, last: int) -> pa.Array:
    """The `leaf_hash` column of (leaf_index, leaf_hash) rows that are exactly leaves first..last-1.

    Raises:
        ValueError: a leaf is missing or held twice (the store's leaves are not contiguous).
    """
    indexes = found.column("leaf_index").to_numpy(zero_copy_only=False)
    if len(indexes) != last - first or not np.array_equal(indexes, np.arange(first, last)):
        raise ValueError(
            f"the store does not hold exactly the leaves {first}..{last - 1} "
            f"({len(indexes)} rows found): its leaves are not contiguous"
        )
    return found.column("leaf_hash").combine_chunks().cast(LEAF_HASH_TYPE)
