"""The transparency log a store drives at commit and the HTTP routes read proofs from.

Integration contract (what a store does; nothing here touches a store's append path):

1. At commit, under the store's single writer and after deduplication (a duplicate is never a
   second leaf): `rows = log.assign(new_rows)` adds `leaf_index` (log.size, log.size + 1, ...)
   and `leaf_hash`, and the store appends `rows` with those two columns in the same commit unit
   as the events (Parquet: the same files and manifest swap; ClickHouse: the same insert).
2. After the commit returned: `log.committed(rows["leaf_hash"])` extends the tree files, and the
   caller publishes a checkpoint (`log.checkpoint()`) after each commit or every few seconds.
3. At start: `log.sync(store_size, read_leaf_hashes)` truncates or extends the tree files to
   exactly the store's committed leaves (a crash between 1 and 2 leaves them behind), reading
   the missing leaf hashes from the store (`read_leaf_hashes(first, last)` in leaf order).
4. Routes: `GET /api/log/checkpoint` -> `log.latest_checkpoint()`, `GET /api/log/key` ->
   `log.verifier_key()`, `GET /api/events/{id}/proof` -> `log.inclusion(event.leaf_index)`,
   `GET /api/log/consistency?from=N&to=M` -> `log.consistency(N, M)`.

Only one process may assign leaf indexes: the embedded engines have one writer; a ClickHouse
server shared by several API replicas needs one sequencer (see storage/log/treefile.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from storage.log.canonical import with_leaves
from storage.log.checkpoint import Checkpoint, CheckpointSigner
from storage.log.note import Signer
from storage.log.proofs import format_consistency_proof, format_tlog_proof
from storage.log.treefile import TreeFiles

__all__ = ["LeafHashReader", "TransparencyLog"]

#: Leaf hashes [first, last) from the store, in leaf order (fixed_size_binary(32)).
LeafHashReader = Callable[[int, int], pa.Array]

_SYNC_CHUNK = 1 << 20


class TransparencyLog:
    """Tree files, checkpoints and proofs of one store's events, kept in one directory."""

    def __init__(self, directory: Path, signer: Signer, *, durable: bool = True) -> None:
        self.directory = directory
        self.tree = TreeFiles(directory / "tree", durable=durable)
        self.checkpoints = CheckpointSigner(directory, signer)
        self._assign_lock = threading.Lock()

    @property
    def size(self) -> int:
        """Leaves in the tree files (the store's committed leaves once `sync` ran)."""
        return self.tree.size

    def assign(self, rows: pa.Table) -> pa.Table:
        """`rows` as the next leaves: plus leaf_index (from `size`) and leaf_hash columns."""
        with self._assign_lock:
            return with_leaves(rows, self.tree.size)

    def committed(self, hashes: pa.Array) -> bytes:
        """The store committed these leaves (in order, right after the current size): extend."""
        values = hashes.cast(pa.binary(32))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if values.null_count:
            raise ValueError("a committed leaf has no hash")
        data = values.buffers()[1].to_pybytes()[values.offset * 32 : (values.offset + len(values)) * 32]
        return self.tree.append([data[i : i + 32] for i in range(0, len(data), 32)])

    def sync(self, store_size: int, read_leaf_hashes: LeafHashReader) -> None:
        """Make the tree files hold exactly the store's `store_size` committed leaves."""
        if self.tree.size > store_size:
            self.tree.truncate(store_size)
        while self.tree.size < store_size:
            first = self.tree.size
            self.committed(read_leaf_hashes(first, min(store_size, first + _SYNC_CHUNK)))

    def checkpoint(self) -> str:
        """Sign the current tree (refused if it does not extend the last checkpoint).

        Size and root come from one frontier snapshot: an append between reading the two would
        otherwise pair one size with another size's root.
        """
        frontier = self.tree.frontier()
        return self.checkpoints.publish(frontier.size, frontier.root(), self.tree.consistency_proof)

    def latest_checkpoint(self) -> tuple[Checkpoint, str] | None:
        """The latest signed checkpoint and its note."""
        return self.checkpoints.latest()

    def verifier_key(self) -> str:
        """The log's verifier key (signed-note vkey form)."""
        return self.checkpoints.signer.verifier.vkey()

    def inclusion(self, leaf_index: int) -> str:
        """C2SP tlog-proof of a leaf against the latest checkpoint.

        Raises:
            LookupError: no checkpoint yet, or the leaf is newer than the latest checkpoint.
        """
        latest = self.checkpoints.latest()
        if latest is None or leaf_index >= latest[0].size:
            raise LookupError(f"leaf {leaf_index} is not covered by a signed checkpoint yet")
        checkpoint, note = latest
        return format_tlog_proof(leaf_index, self.tree.inclusion_proof(leaf_index, checkpoint.size), note)

    def consistency(self, old_size: int, new_size: int) -> str:
        """The text consistency proof between two sizes (0 <= old <= new <= size)."""
        return format_consistency_proof(old_size, new_size, self.tree.consistency_proof(old_size, new_size))

    def close(self) -> None:
        """Close the tree files."""
        self.tree.close()
