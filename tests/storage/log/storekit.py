"""Checks that a store's transparency log agrees with the events it holds, by independent code.

The oracle is docs/verify_root.py, the standalone script an auditor runs (standard library plus
pyarrow, no govtrack import): it rebuilds each event's canonical form and the RFC 6962 root.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from storage.base import EventFilter, EventStore
from storage.log.checkpoint import verify_checkpoint
from storage.log.proofs import verify_tlog_proof
from storage.log.store_log import StoreLog
from tests.contract.events import Row, page_all

REPO = Path(__file__).resolve().parents[3]


@cache
def verify_root() -> ModuleType:
    """docs/verify_root.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("verify_root", REPO / "docs" / "verify_root.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def independent_leaf(row: Row) -> bytes:
    """SHA-256(0x00 || canonical event), computed by docs/verify_root.py."""
    canonical: bytes = verify_root().canonical(row)
    return hashlib.sha256(b"\x00" + canonical).digest()


def independent_root(hashes: list[bytes]) -> bytes:
    """The RFC 6962 root of leaf hashes, computed by docs/verify_root.py."""
    root: bytes = verify_root().root(list(hashes))
    return root


def log_of(store: EventStore) -> StoreLog | None:
    """The store's log, or its hot store's under the archive tier (None for a store that keeps none)."""
    inner: Any = getattr(store, "hot", store)
    found: Any = getattr(inner, "transparency_log", None)
    return found if isinstance(found, StoreLog) else None


def assert_log_agrees(store: EventStore, leaves: int) -> None:
    """The store holds leaves 0..leaves-1 once each, and everything of the log agrees with them.

    Every leaf hash recomputes; the tree files, a freshly signed checkpoint and inclusion proofs
    agree with the stored leaves. A store without a log (several writers) must hold no leaf at all.
    """
    rows = page_all(store, EventFilter(), order="asc", limit=5000)
    log = log_of(store)
    if log is None:
        assert all(r["leaf_index"] is None and r["leaf_hash"] is None for r in rows)
        return
    by_index = sorted(rows, key=lambda r: r["leaf_index"])
    assert [r["leaf_index"] for r in by_index] == list(range(leaves)), "leaves are not 0..n-1 once each"
    for row in by_index:
        assert row["leaf_hash"] == independent_leaf(row), f"leaf {row['leaf_index']} does not recompute"
    hashes = [r["leaf_hash"] for r in by_index]
    assert log.log.size == leaves, f"tree files hold {log.log.size} leaves, the store {leaves}"
    assert log.log.tree.root() == independent_root(hashes)
    note = log.checkpoint_now()
    assert note is not None, f"no checkpoint could be signed: {log.last_error}"
    checkpoint = verify_checkpoint(note, log.log.checkpoints.signer.verifier)
    assert (checkpoint.size, checkpoint.root) == (leaves, independent_root(hashes))
    assert note.split("\n")[2] == base64.b64encode(independent_root(hashes)).decode()
    for index in sorted({0, leaves // 2, leaves - 1}) if leaves else []:
        proof = log.log.inclusion(index)
        assert verify_tlog_proof(proof, hashes[index], log.log.checkpoints.signer.verifier)[0] == index
