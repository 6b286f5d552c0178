"""A durable on-disk queue of Arrow batches, for when the event store is unavailable.

Why: an acknowledged batch must survive a crash even while the store is down. Each batch becomes
one Arrow IPC *file* (it has a footer, so a truncated file is detectable), written under a
temporary name, fsync'd, renamed to `<sequence>.arrow` and made durable with an fsync of the
directory. Only then does `write` return, so a crash at any moment leaves either no entry or a
complete one. Sequence numbers grow monotonically and give replay its order.

Layout of `directory`::

    00000000000000000001.arrow   entries, replayed in sequence order
    .<random>.tmp                a write in progress; deleted at open (never acknowledged)
    .lock                        flock'd by the owning process: one spool, one owner
    corrupt/                     entries that could not be read back (kept, never dropped)
    rejected/                    entries the store refused terminally during replay (kept)

An entry that fails to read is moved to `corrupt/` and logged, never silently dropped; an
operator can inspect it there (or move it back). Quarantined files do not count against
`max_bytes`, so one bad file cannot block ingest forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import structlog

__all__ = [
    "CORRUPT_DIR",
    "REJECTED_DIR",
    "Spool",
    "SpoolCorruptError",
    "SpoolEntry",
    "SpoolFullError",
    "SpoolLockedError",
    "SpoolSnapshot",
]

CORRUPT_DIR: Final = "corrupt"
REJECTED_DIR: Final = "rejected"
_ENTRY_RE: Final = re.compile(r"^(\d{20})\.arrow$")
_TMP_SUFFIX: Final = ".tmp"
_LOCK_NAME: Final = ".lock"

log = structlog.get_logger(__name__)


class SpoolFullError(Exception):
    """Writing the batch would exceed the spool's byte cap; the caller must refuse it (503)."""


class SpoolLockedError(Exception):
    """Another process (or another open Spool) owns this directory."""


class SpoolCorruptError(Exception):
    """An entry could not be read back; it has been moved to `corrupt/` (see `.quarantined`)."""

    def __init__(self, message: str, *, quarantined: Path) -> None:
        super().__init__(message)
        self.quarantined = quarantined


@dataclass(frozen=True, slots=True, order=True)
class SpoolEntry:
    """One spooled batch; entries order by `seq`, which is their replay order."""

    seq: int
    path: Path
    size: int
    rows: int


@dataclass(frozen=True, slots=True)
class SpoolSnapshot:
    """Counts for /health and metrics."""

    depth: int
    bytes: int
    rows: int
    max_bytes: int
    corrupt_files: int
    rejected_files: int
    directory: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for the health endpoint."""
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "rows": self.rows,
            "max_bytes": self.max_bytes,
            "corrupt_files": self.corrupt_files,
            "rejected_files": self.rejected_files,
            "path": self.directory,
        }


def _fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in `directory` durable (POSIX needs the directory fsync'd)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_ipc_file(path: Path, table: pa.Table) -> int:
    """Write `table` as an Arrow IPC file, fsync it, and return its size in bytes."""
    with open(path, "xb") as raw:
        with pa.ipc.new_file(raw, table.schema) as writer:
            writer.write_table(table)
        raw.flush()
        os.fsync(raw.fileno())
        return raw.tell()


def _inspect(path: Path) -> int:
    """Row count of a complete IPC file, from its footer and batch headers; raises if unreadable."""
    with pa.memory_map(str(path), "r") as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


class Spool:
    """An ordered, durable, size-capped queue of Arrow tables in one directory.

    Thread-safe. One process owns a directory at a time (an exclusive `flock` on `.lock`), because
    two writers would hand out the same sequence numbers. Call `close()` (or use `with`) to
    release it; the OS releases it if the process dies.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self._dir = Path(directory)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: dict[int, SpoolEntry] = {}
        self._bytes = 0
        self._next_seq = 1
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = self._acquire_dir_lock()
        try:
            self._recover()
        except BaseException:
            self.close()
            raise

    # -- public API ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The spool's directory."""
        return self._dir

    @property
    def max_bytes(self) -> int:
        """The byte cap over all queued entries."""
        return self._max_bytes

    @property
    def depth(self) -> int:
        """Number of queued entries."""
        with self._lock:
            return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes on disk of all queued entries (quarantined files excluded)."""
        with self._lock:
            return self._bytes

    def write(self, table: pa.Table) -> SpoolEntry:
        """Append `table` durably; when this returns the entry survives a crash or power loss.

        Raises:
            SpoolFullError: the entry would take the spool past `max_bytes` (nothing is kept).
            OSError: the disk failed (nothing is kept).
        """
        tmp = self._dir / f".{uuid.uuid4().hex}{_TMP_SUFFIX}"
        try:
            size = _write_ipc_file(tmp, table)  # outside the lock: concurrent writers overlap I/O
            with self._lock:
                self._ensure_open()
                if self._bytes + size > self._max_bytes:
                    raise SpoolFullError(
                        f"spool full: {self._bytes} of {self._max_bytes} bytes used, batch needs {size}"
                    )
                entry = SpoolEntry(self._next_seq, self._entry_path(self._next_seq), size, table.num_rows)
                os.rename(tmp, entry.path)
                _fsync_dir(self._dir)
                self._next_seq += 1
                self._entries[entry.seq] = entry
                self._bytes += size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return entry

    def entries(self) -> list[SpoolEntry]:
        """Queued entries, oldest (lowest sequence) first; a snapshot, safe to iterate."""
        with self._lock:
            return sorted(self._entries.values())

    def first(self) -> SpoolEntry | None:
        """The oldest queued entry, or None when the spool is empty."""
        with self._lock:
            return self._entries[min(self._entries)] if self._entries else None

    def read(self, entry: SpoolEntry) -> pa.Table:
        """The entry's table, fully in memory (the file may be removed right after).

        Raises:
            SpoolCorruptError: the file is unreadable; it has been moved to `corrupt/`.
            FileNotFoundError: the entry was already removed.
        """
        try:
            with pa.OSFile(str(entry.path), "rb") as source:
                table = pa.ipc.open_file(source).read_all()
            table.validate(full=True)
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as exc:
            target = self._quarantine(entry, CORRUPT_DIR, reason=f"unreadable: {exc}")
            raise SpoolCorruptError(f"spool entry {entry.seq} is corrupt: {exc}", quarantined=target) from exc
        return table

    def remove(self, entry: SpoolEntry) -> None:
        """Delete a replayed entry durably (unlink + directory fsync); idempotent."""
        with self._lock:
            self._forget(entry)
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
            _fsync_dir(self._dir)

    def reject(self, entry: SpoolEntry, reason: str) -> Path:
        """Move an entry the store refuses for good to `rejected/`, so replay can go on; logged."""
        return self._quarantine(entry, REJECTED_DIR, reason=reason)

    def snapshot(self) -> SpoolSnapshot:
        """Depth, bytes, rows and quarantine counts, for /health and metrics."""
        with self._lock:
            rows = sum(e.rows for e in self._entries.values())
            depth, size = len(self._entries), self._bytes
        return SpoolSnapshot(
            depth=depth,
            bytes=size,
            rows=rows,
            max_bytes=self._max_bytes,
            corrupt_files=self._count(CORRUPT_DIR),
            rejected_files=self._count(REJECTED_DIR),
            directory=str(self._dir),
        )

    def close(self) -> None:
        """Release the directory lock; idempotent. Queued entries stay on disk for the next open."""
        with self._lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor drops the flock
                self._lock_fd = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _entry_path(self, seq: int) -> Path:
        return self._dir / f"{seq:020d}.arrow"

    def _ensure_open(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f"spool {self._dir} is closed")

    def _acquire_dir_lock(self) -> int:
        """Take the exclusive, non-blocking lock that makes this process the directory's owner."""
        fd = os.open(self._dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SpoolLockedError(f"spool directory {self._dir} is in use by another owner") from exc
        return fd

    def _recover(self) -> None:
        """Drop temp files of interrupted writes, index complete entries, quarantine bad ones."""
        seqs = [0]
        for path in sorted(self._dir.iterdir()):
            if path.name.endswith(_TMP_SUFFIX) and path.is_file():
                log.warning("spool.temp_file_removed", path=str(path))
                path.unlink()
                continue
            match = _ENTRY_RE.match(path.name)
            if match is None or not path.is_file():
                continue
            seq = int(match.group(1))
            seqs.append(seq)
            self._index_existing(seq, path)
        for sub in (CORRUPT_DIR, REJECTED_DIR):
            seqs.extend(int(m.group(1)) for p in self._files(sub) if (m := _ENTRY_RE.match(p.name)))
        self._next_seq = max(seqs) + 1
        _fsync_dir(self._dir)
        if self._entries:
            log.info("spool.recovered", depth=len(self._entries), bytes=self._bytes, directory=str(self._dir))

    def _index_existing(self, seq: int, path: Path) -> None:
        """Add a file found at open to the index, or quarantine it when its footer is unreadable."""
        entry = SpoolEntry(seq, path, path.stat().st_size, 0)
        try:
            entry = SpoolEntry(seq, path, entry.size, _inspect(path))
        except (pa.ArrowException, OSError) as exc:
            self._move_aside(entry, CORRUPT_DIR, reason=f"unreadable at open: {exc}")
            return
        self._entries[seq] = entry
        self._bytes += entry.size

    def _quarantine(self, entry: SpoolEntry, sub: str, *, reason: str) -> Path:
        """Take an entry out of the queue and keep its file under `sub/` (never delete it)."""
        with self._lock:
            self._forget(entry)
            return self._move_aside(entry, sub, reason=reason)

    def _move_aside(self, entry: SpoolEntry, sub: str, *, reason: str) -> Path:
        """Rename the file into `sub/` durably and log why (lock held or during open)."""
        target_dir = self._dir / sub
        target_dir.mkdir(exist_ok=True)
        target = target_dir / entry.path.name
        os.rename(entry.path, target)
        _fsync_dir(target_dir)
        _fsync_dir(self._dir)
        log.error("spool.entry_quarantined", seq=entry.seq, rows=entry.rows, path=str(target), reason=reason)
        return target

    def _forget(self, entry: SpoolEntry) -> None:
        """Drop an entry from the index and the byte count (lock held)."""
        known = self._entries.pop(entry.seq, None)
        if known is not None:
            self._bytes -= known.size

    def _files(self, sub: str) -> list[Path]:
        folder = self._dir / sub
        return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []

    def _count(self, sub: str) -> int:
        return len(self._files(sub))
