"""The integration facade (storage/log/log.py), and pymerkle staying a test-only dependency.

Leaves are assigned from the log's size, tree files sync to a store's committed leaves after a
crash, proofs go against the latest checkpoint only, no checkpoint over a store that lost events.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from analytics.demo import generate_events
from storage.log.checkpoint import InconsistentCheckpointError, verify_checkpoint
from storage.log.log import TransparencyLog
from storage.log.merkle import root_from_leaves
from storage.log.note import generate_signer
from storage.log.proofs import check_consistency, verify_tlog_proof


def test_assign_commit_checkpoint_prove(tmp_path: Path) -> None:
    signer = generate_signer("govtrack.test/log")
    log = TransparencyLog(tmp_path, signer, durable=False)
    events = generate_events(50, seed=2)
    first = log.assign(events.slice(0, 30))
    assert first.column("leaf_index").to_pylist() == list(range(30))
    log.committed(first.column("leaf_hash").combine_chunks())
    with pytest.raises(LookupError):
        log.inclusion(3)  # no checkpoint yet
    old_note = log.checkpoint()
    second = log.assign(events.slice(30))
    assert second.column("leaf_index").to_pylist() == list(range(30, 50))
    log.committed(second.column("leaf_hash").combine_chunks())
    with pytest.raises(LookupError):
        log.inclusion(40)  # newer than the latest checkpoint
    new_note = log.checkpoint()
    hashes = [*first.column("leaf_hash").to_pylist(), *second.column("leaf_hash").to_pylist()]
    new = verify_checkpoint(new_note, signer.verifier)
    assert (new.size, new.root) == (50, root_from_leaves(hashes))
    assert verify_tlog_proof(log.inclusion(40), hashes[40], signer.verifier)[0] == 40
    assert check_consistency(log.consistency(30, 50), verify_checkpoint(old_note, signer.verifier), new)
    assert log.verifier_key() == signer.verifier.vkey()


def test_sync_to_the_store_after_a_crash_and_refusal_after_a_loss(tmp_path: Path) -> None:
    signer = generate_signer("govtrack.test/log")
    rows = TransparencyLog(tmp_path / "scratch", signer).assign(generate_events(40, seed=3))
    store_hashes = rows.column("leaf_hash").combine_chunks()

    def read(first: int, last: int) -> pa.Array:
        return store_hashes.slice(first, last - first)

    log = TransparencyLog(tmp_path / "log", signer, durable=False)
    log.committed(store_hashes.slice(0, 25))
    log.checkpoint()
    log.close()
    # the store committed 40 leaves, the process died before the tree files heard of 15 of them
    reopened = TransparencyLog(tmp_path / "log", signer)
    reopened.sync(40, read)
    assert reopened.size == 40
    assert reopened.tree.root() == root_from_leaves(store_hashes.to_pylist())
    reopened.checkpoint()
    # a store restored from an old backup holds 30: syncing down is allowed, signing is not
    reopened.sync(30, read)
    with pytest.raises(InconsistentCheckpointError):
        reopened.checkpoint()


def test_the_package_never_imports_pymerkle() -> None:
    for path in [*Path("storage").rglob("*.py"), *Path("api").rglob("*.py")]:
        assert "pymerkle" not in path.read_text(encoding="utf-8"), path
