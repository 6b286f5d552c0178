#!/usr/bin/env python3
"""Recompute the Merkle root of a govtrack export without govtrack's code (docs/canonical-event.md).

    python verify_root.py EXPORT_DIR [CHECKPOINT_FILE]

Needs only Python 3.9+ and pyarrow. For each Parquet file under EXPORT_DIR (the log/ folder is
skipped) it rebuilds every event's canonical form (version 1), checks it against the stored
leaf_hash, checks the leaf indexes are 0..n-1 once each, and prints the tree size and root as
a checkpoint's second and third lines. Given a checkpoint it compares them (the Ed25519
signature is for `govtrack verify` or any C2SP signed-note tool: the standard library has no
Ed25519). Exit 0 when everything matches, 1 otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

TEXT = (
    "batch_id",
    "cell_address",
    "correlation_id",
    "event_id",
    "event_type",
    "formula",
    "machine_name",
    "new_value",
    "old_value",
    "session_id",
    "sheet_name",
    "user_name",
    "workbook_name",
)


def jcs(value: object) -> str:
    """RFC 8785 for the values a canonical event holds: strings, integers, null, objects."""
    if isinstance(value, dict):  # keys in UTF-16 code unit order
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs(k) + ":" + jcs(value[k]) for k in keys) + "}"
    return json.dumps(value, ensure_ascii=False)


def canonical(row: dict[str, Any]) -> bytes:
    """The canonical event (version 1) of one exported row, as UTF-8 bytes."""
    event = {name: row[name] for name in TEXT}
    for name in ("timestamp", "received_at"):
        event[name] = row[name].strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # stored as UTC
    event["attributes"] = dict(row["attributes"] or [])
    event["leaf_index"] = row["leaf_index"]
    event["session_seq"] = row.get("session_seq")
    event["v"] = 1
    return jcs(event).encode("utf-8")


def root(hashes: list[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of the leaf hashes, in order."""
    while len(hashes) > 1:  # RFC 6962: pair left to right, an odd last node moves up unchanged
        pairs = [
            hashlib.sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest() for i in range(0, len(hashes) - 1, 2)
        ]
        hashes = pairs + hashes[-1:] if len(hashes) % 2 else pairs
    return hashes[0] if hashes else hashlib.sha256(b"").digest()


def main(export: str, checkpoint: str | None = None) -> int:
    """Check every leaf, print size and root, compare with the checkpoint; 0 when all match."""
    leaves: dict[int, bytes] = {}
    bad = 0
    files = sorted(p for p in Path(export).rglob("*.parquet") if "log" not in p.relative_to(export).parts[:1])
    for file in files:
        for row in pq.read_table(file).to_pylist():
            leaf = hashlib.sha256(b"\x00" + canonical(row)).digest()
            if leaf != row["leaf_hash"] or row["leaf_index"] in leaves:
                bad += 1
                print(
                    f"leaf {row['leaf_index']} (event {row['event_id']}): does not match its leaf_hash, or repeats an index"
                )
            leaves[row["leaf_index"]] = leaf
    if sorted(leaves) != list(range(len(leaves))):
        bad += 1
        print("leaf indexes are not 0..n-1")
    size, top = len(leaves), base64.b64encode(root([leaves[i] for i in sorted(leaves)])).decode()
    print(size)
    print(top)
    if checkpoint is not None:
        lines = Path(checkpoint).read_text(encoding="utf-8").split("\n")
        if lines[1:3] != [str(size), top]:
            bad += 1
            print(f"the checkpoint says size {lines[1]} root {lines[2]}: no match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
