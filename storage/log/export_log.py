"""What an export (or the archive) carries of the log, so `govtrack verify` checks it offline.

An export takes a snapshot first: a checkpoint is signed (or the latest one taken), and only the
events it covers, plus those outside the log, are exported (`EventFilter.leaves_before`). Every
such event was committed before the export began, so each page of the export sees it: an export
of the whole store holds exactly leaves 0..size-1 and verifies against its checkpoint, however
many events arrive meanwhile. Beside the Parquet files (the paths storage.log.verify expects):

    log/checkpoint            the signed checkpoint (C2SP signed note) of the snapshot
    log/tree/level-00.bin     the first `size` leaf hashes (whole-store exports and the archive):
                              `govtrack verify` names the first rewritten leaf with them, and
                              checks an export that holds only some leaves (`--partial`)

The verifier key is never written here: the auditor gets it out of band (GET /api/log/key).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Final, Protocol

from storage.base import EventFilter
from storage.log.checkpoint import parse_checkpoint_text
from storage.log.store_log import StoreLog

__all__ = [
    "CHECKPOINT_PATH",
    "TREE_LEAVES_PATH",
    "LogSnapshot",
    "export_log",
    "local_output",
    "publish_log",
    "snapshot",
    "whole_store",
    "write_log",
]

CHECKPOINT_PATH: Final = "log/checkpoint"
TREE_LEAVES_PATH: Final = "log/tree/level-00.bin"
_CHUNK_LEAVES: Final = 1 << 16

#: Opens a new file at a path relative to the export's root, for writing bytes.
OpenOutput = Callable[[str], AbstractContextManager[Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class LogSnapshot:
    """A signed checkpoint an export is cut at: its note and tree size."""

    note: str
    size: int

    def restrict(self, flt: EventFilter) -> EventFilter:
        """`flt` limited to the events this checkpoint covers (and those outside the log)."""
        return dataclasses.replace(flt, leaves_before=self.size)


def snapshot(store_log: StoreLog) -> LogSnapshot | None:
    """Sign a checkpoint of everything committed now (None when none can be signed: logged)."""
    note = store_log.checkpoint_now()
    if note is None:
        return None
    text = note[: note.index("\n\n") + 1]
    return LogSnapshot(note, parse_checkpoint_text(text).size)


def write_log(store_log: StoreLog, snap: LogSnapshot, open_output: OpenOutput, *, tree: bool) -> list[str]:
    """Write log/checkpoint (and, with `tree`, the snapshot's leaf hashes); returns the paths written."""
    with open_output(CHECKPOINT_PATH) as out:
        out.write(snap.note.encode("utf-8"))
    written = [CHECKPOINT_PATH]
    if tree:
        with open_output(TREE_LEAVES_PATH) as out:
            for first in range(0, snap.size, _CHUNK_LEAVES):
                count = min(_CHUNK_LEAVES, snap.size - first)
                out.write(store_log.log.tree.leaves(first, count))
        written.append(TREE_LEAVES_PATH)
    return written


class _Destination(Protocol):
    """Where the archive lives (storage.archive.location.Location)."""

    def open_output(self, rel: str) -> Any: ...

    def make_durable(self, rels: list[str]) -> None: ...


def publish_log(store_log: StoreLog | None, destination: _Destination) -> LogSnapshot | None:
    """Write a fresh checkpoint and the tree's leaves beside an archive (after a move committed).

    The archive then verifies on its own (`govtrack verify ARCHIVE --partial`): each archived
    event against the signed tree, the events still hot being the leaves it lacks.
    """
    if store_log is None:
        return None
    snap = snapshot(store_log)
    if snap is not None:
        destination.make_durable(write_log(store_log, snap, destination.open_output, tree=True))
    return snap


def whole_store(flt: EventFilter) -> bool:
    """Whether an export of `flt` holds every event (then it carries the tree's leaves too)."""
    return flt == EventFilter()


@contextmanager
def _durable_file(path: Path) -> Iterator[IO[bytes]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        yield out
        out.flush()
        os.fsync(out.fileno())


def local_output(root: Path) -> OpenOutput:
    """An OpenOutput writing fsync'd files under a local directory."""
    return lambda rel: _durable_file(root / rel)


def export_log(store_log: StoreLog | None, flt: EventFilter) -> tuple[LogSnapshot | None, EventFilter]:
    """The snapshot an export of `flt` is cut at (None without a log) and the filter to export."""
    snap = snapshot(store_log) if store_log is not None else None
    return snap, (snap.restrict(flt) if snap is not None else flt)
