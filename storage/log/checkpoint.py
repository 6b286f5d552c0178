"""C2SP tlog-checkpoints, and a signer that never signs one inconsistent with the last.

A checkpoint is the signed (origin, tree size, root) of the log:

    govtrack.example/log      <- origin (also the key name)
    1048576                   <- tree size, decimal, no leading zeros
    3q2+7w...=                <- base64 of the RFC 6962 root
                              <- blank line, then the signed-note signature
    — govtrack.example/log AbCd...

`CheckpointSigner.publish` keeps the latest checkpoint in a file beside the tree; before signing
a new one it checks a consistency proof from the last one (c2sp: "a log MUST NOT sign any
checkpoint which is inconsistent with any checkpoint it previously signed"). A smaller size, a
different root at the same size, or a failing proof raises `InconsistentCheckpointError` and nothing
is signed: the store lost or changed committed events, and an operator has to look.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from storage.log.merkle import HASH_SIZE, verify_consistency
from storage.log.note import NoteError, Signer, Verifier, b64decode_strict, open_note, sign_note

__all__ = [
    "Checkpoint",
    "CheckpointSigner",
    "InconsistentCheckpointError",
    "parse_checkpoint_text",
    "verify_checkpoint",
]

CHECKPOINT_FILE: Final = "checkpoint"
_SIZE: Final = re.compile(r"0|[1-9][0-9]{0,19}")


class InconsistentCheckpointError(RuntimeError):
    """The new tree does not extend the last signed one: refusing to sign."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The checkpoint's note text (three lines, each ending in a newline)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    def sign(self, signer: Signer) -> str:
        """The signed note of this checkpoint."""
        if signer.name != self.origin:
            raise NoteError(f"the key {signer.name!r} is not the log {self.origin!r}")
        return sign_note(self.text(), signer)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse a checkpoint's note text strictly: exactly origin, size and root, no extension lines.

    Raises:
        NoteError: anything else (govtrack never writes extension lines, so one is not ours).
    """
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise NoteError("a checkpoint is exactly three lines: origin, tree size, root hash")
    origin, size, root = lines[:3]
    if not origin or any(c.isspace() for c in origin):
        raise NoteError("the checkpoint's origin must be non-empty and without spaces")
    if not _SIZE.fullmatch(size) or int(size) >= 1 << 64:
        raise NoteError(f"the checkpoint's tree size {size[:30]!r} is not a decimal without leading zeros")
    raw = b64decode_strict(root)
    if len(raw) != HASH_SIZE:
        raise NoteError("the checkpoint's root is not a 32-byte hash")
    return Checkpoint(origin, int(size), raw)


def verify_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a signed note, once the verifier's signature checks.

    Args:
        note: the signed note.
        verifier: the log's key; its name must be the checkpoint's origin.
        origin: the origin expected (default: the verifier's name).

    Raises:
        NoteError: malformed, not signed by `verifier`, or another log's checkpoint.
    """
    checkpoint = parse_checkpoint_text(open_note(note, [verifier]))
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteError(f"checkpoint of log {checkpoint.origin!r}, expected {expected!r}")
    return checkpoint


#: The consistency proof from old_size to new_size of the log being checkpointed.
ConsistencySource = Callable[[int, int], list[bytes]]


class CheckpointSigner:
    """Signs checkpoints of one log, each only after proving it extends the last one signed."""

    def __init__(self, directory: Path, signer: Signer) -> None:
        self.path = directory / CHECKPOINT_FILE
        self.signer = signer
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def latest(self) -> tuple[Checkpoint, str] | None:
        """The last signed checkpoint and its note, or None before the first one."""
        if not self.path.exists():
            return None
        note = self.path.read_text(encoding="utf-8")
        return verify_checkpoint(note, self.signer.verifier), note

    def publish(self, size: int, root: bytes, consistency: ConsistencySource) -> str:
        """Sign (size, root) and keep it as the latest checkpoint; return the signed note.

        Raises:
            InconsistentCheckpointError: the tree is smaller than, or does not extend, the last one.
        """
        with self._lock:
            last = self.latest()
            if last is not None:
                self._check_extends(last[0], size, root, consistency)
                if last[0].size == size:
                    return last[1]
            note = Checkpoint(self.signer.name, size, root).sign(self.signer)
            self._write(note)
            return note

    @staticmethod
    def _check_extends(last: Checkpoint, size: int, root: bytes, consistency: ConsistencySource) -> None:
        if size < last.size:
            raise InconsistentCheckpointError(
                f"the log has {size} leaves, fewer than the {last.size} already signed"
            )
        proof = consistency(last.size, size) if size > last.size else []
        if not verify_consistency(last.size, size, last.root, root, proof):
            raise InconsistentCheckpointError(
                f"the tree of size {size} does not extend the signed checkpoint of size {last.size}"
            )

    def _write(self, note: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(note)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
