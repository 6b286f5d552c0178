"""Text forms of proofs: C2SP tlog-proof for inclusion, and a consistency proof in the same style.

Inclusion (c2sp.org/tlog-proof@v1), what `GET /api/events/{id}/proof` serves:

    c2sp.org/tlog-proof@v1
    index 73894                       <- the event's leaf_index
    gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=   <- sibling hashes, leaf to root
    ...
                                      <- blank line
    <the signed checkpoint, verbatim>

Consistency (govtrack's own, same conventions), what `GET /api/log/consistency` serves:

    govtrack/consistency-proof@v1
    old 1000
    new 2000
    <base64 hashes of RFC 6962 PROOF(old, D[new]), one per line>

Parsing is strict (exact header, decimal numbers without leading zeros, canonical base64 of 32
bytes per hash, nothing after the last line), so no field of a proof is read but unchecked.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final

from storage.log.checkpoint import Checkpoint, verify_checkpoint
from storage.log.merkle import HASH_SIZE, verify_consistency, verify_inclusion
from storage.log.note import NoteError, Verifier, b64decode_strict

__all__ = [
    "CONSISTENCY_HEADER",
    "TLOG_PROOF_HEADER",
    "ConsistencyProof",
    "InclusionProof",
    "check_consistency",
    "format_consistency_proof",
    "format_tlog_proof",
    "parse_consistency_proof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

TLOG_PROOF_HEADER: Final = "c2sp.org/tlog-proof@v1"
CONSISTENCY_HEADER: Final = "govtrack/consistency-proof@v1"
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,19}")
MAX_PROOF_HASHES: Final = 128  # 2 x 64 levels: more cannot belong to a tree of < 2**64 leaves


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """A parsed tlog-proof: leaf index, sibling hashes, the signed checkpoint, optional extra."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """A parsed consistency proof between two tree sizes."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


def _hash_lines(hashes: list[bytes] | tuple[bytes, ...]) -> str:
    return "".join(base64.b64encode(h).decode() + "\n" for h in hashes)


def _number(text: str, prefix: str) -> int:
    if not text.startswith(prefix) or not _NUMBER.fullmatch(text[len(prefix) :]):
        raise NoteError(f"expected '{prefix}<decimal>', got {text[:40]!r}")
    value = int(text[len(prefix) :])
    if value >= 1 << 64:
        raise NoteError(f"{prefix.strip()} out of range")
    return value


def _hash(text: str) -> bytes:
    raw = b64decode_strict(text)
    if len(raw) != HASH_SIZE:
        raise NoteError("a proof hash is 32 bytes")
    return raw


def format_tlog_proof(
    index: int, hashes: list[bytes], checkpoint_note: str, extra: bytes | None = None
) -> str:
    """The C2SP tlog-proof text of an inclusion proof against a signed checkpoint."""
    head = TLOG_PROOF_HEADER + "\n"
    if extra is not None:
        head += f"extra {base64.b64encode(extra).decode()}\n"
    return f"{head}index {index}\n{_hash_lines(hashes)}\n{checkpoint_note}"


def parse_tlog_proof(text: str) -> InclusionProof:
    """Parse a tlog-proof strictly (the checkpoint is returned as text, unverified).

    Raises:
        NoteError: any deviation from the format.
    """
    lines = text.split("\n")
    if lines[0] != TLOG_PROOF_HEADER or len(lines) < 4:
        raise NoteError(f"a tlog-proof starts with {TLOG_PROOF_HEADER}")
    at, extra = 1, None
    if lines[at].startswith("extra "):
        extra = base64.b64decode(lines[at][6:], validate=True)
        at += 1
    index = _number(lines[at], "index ")
    at += 1
    hashes: list[bytes] = []
    while at < len(lines) and lines[at] != "":
        hashes.append(_hash(lines[at]))
        at += 1
    if at >= len(lines) or len(hashes) > MAX_PROOF_HASHES:
        raise NoteError("a tlog-proof needs a blank line and a checkpoint after at most 128 hashes")
    return InclusionProof(index, tuple(hashes), "\n".join(lines[at + 1 :]), extra)


def verify_tlog_proof(text: str, leaf_hash: bytes, verifier: Verifier) -> tuple[int, Checkpoint]:
    """Check a tlog-proof for `leaf_hash`: the checkpoint's signature, then the inclusion proof.

    Returns:
        (leaf index, the verified checkpoint).

    Raises:
        NoteError: malformed, a bad signature, or the leaf is not included at that index.
    """
    proof = parse_tlog_proof(text)
    checkpoint = verify_checkpoint(proof.checkpoint, verifier)
    if not verify_inclusion(proof.index, checkpoint.size, leaf_hash, proof.hashes, checkpoint.root):
        raise NoteError(f"leaf {proof.index} is not included in the checkpoint of size {checkpoint.size}")
    return proof.index, checkpoint


def format_consistency_proof(old_size: int, new_size: int, hashes: list[bytes]) -> str:
    """The text form of a consistency proof from `old_size` to `new_size`."""
    return f"{CONSISTENCY_HEADER}\nold {old_size}\nnew {new_size}\n{_hash_lines(hashes)}"


def parse_consistency_proof(text: str) -> ConsistencyProof:
    """Parse a consistency proof strictly.

    Raises:
        NoteError: any deviation from the format.
    """
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != CONSISTENCY_HEADER or lines[-1] != "":
        raise NoteError(f"a consistency proof starts with {CONSISTENCY_HEADER} and ends with a newline")
    old, new = _number(lines[1], "old "), _number(lines[2], "new ")
    body = lines[3:-1]
    if len(body) > MAX_PROOF_HASHES:
        raise NoteError("too many hashes for a consistency proof")
    return ConsistencyProof(old, new, tuple(_hash(line) for line in body))


def check_consistency(text: str, old: Checkpoint, new: Checkpoint) -> bool:
    """True when the proof text's sizes are the checkpoints' and it proves new extends old."""
    proof = parse_consistency_proof(text)
    if (proof.old_size, proof.new_size) != (old.size, new.size) or old.origin != new.origin:
        return False
    return verify_consistency(old.size, new.size, old.root, new.root, proof.hashes)
