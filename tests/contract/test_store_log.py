"""The transparency log on every store: leaves in commit order, stored with the events, exported, verified.

Expected leaf hashes and roots come from docs/verify_root.py (tests/storage/log/storekit.py), the
standalone script an auditor runs, never from govtrack's own canonical code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.base import EventFilter, EventStore
from storage.factory import create_store
from storage.log.checkpoint import verify_checkpoint
from storage.log.proofs import check_consistency
from storage.log.verify import verify_export
from tests.contract.events import BASE, eid, event, page_all, table
from tests.storage.log.storekit import assert_log_agrees, independent_leaf, independent_root, log_of


def _by_id(store: EventStore) -> dict[str, dict[str, object]]:
    return {r["event_id"]: r for r in page_all(store, EventFilter(), order="asc", limit=500)}


def test_leaves_follow_commit_order_and_a_duplicate_is_never_a_second_leaf(store: EventStore) -> None:
    store.append(table([event(3), event(1), event(2)]))
    result = store.append(table([event(5), event(1), event(4), event(5)]))
    assert (result.stored, result.duplicates) == (2, 2)
    rows = _by_id(store)
    assert {i: rows[eid(i)]["leaf_index"] for i in range(1, 6)} == {3: 0, 1: 1, 2: 2, 5: 3, 4: 4}
    for row in rows.values():
        assert row["leaf_hash"] == independent_leaf(row)
    assert_log_agrees(store, 5)


def test_leaf_columns_given_by_a_caller_are_replaced(store: EventStore) -> None:
    forged = table([event(1), event(2)])
    forged = forged.set_column(
        forged.schema.get_field_index("leaf_index"), "leaf_index", pa.array([7, 7], pa.int64())
    )
    forged = forged.set_column(
        forged.schema.get_field_index("leaf_hash"), "leaf_hash", pa.array([b"\x01" * 32] * 2, pa.binary(32))
    )
    store.append(forged)
    rows = _by_id(store)
    assert [rows[eid(1)]["leaf_index"], rows[eid(2)]["leaf_index"]] == [0, 1]
    assert rows[eid(1)]["leaf_hash"] == independent_leaf(rows[eid(1)])
    assert_log_agrees(store, 2)


def test_the_log_continues_after_a_reopen(tmp_path: Path, chdb_path: Path, store: EventStore) -> None:
    store.append(table([event(i) for i in range(1, 11)]))
    first = log_of(store)
    assert first is not None
    old_note = first.checkpoint_now()
    assert old_note is not None
    verifier = first.log.checkpoints.signer.verifier
    store.close()
    again = _reopen(store, tmp_path, chdb_path)
    try:
        again.append(table([event(i) for i in range(5, 16)]))
        assert_log_agrees(again, 15)
        reopened = log_of(again)
        assert reopened is not None
        assert reopened.log.checkpoints.signer.verifier.vkey() == verifier.vkey()
        new_note = reopened.checkpoint_now()
        assert new_note is not None
        old, new = verify_checkpoint(old_note, verifier), verify_checkpoint(new_note, verifier)
        assert (old.size, new.size) == (10, 15)
        assert check_consistency(reopened.log.consistency(10, 15), old, new)
    finally:
        again.close()


def _reopen(store: EventStore, tmp_path: Path, chdb_path: Path) -> EventStore:
    """The same data opened again (a restart), through the factory as the service does."""
    database = getattr(store, "database", None)
    url = f"chdb://{chdb_path}" if database else f"parquet://{tmp_path / 'parquet'}"
    again = create_store(url, database=database)
    again.open()
    return again


def test_session_seq_is_stored_and_in_the_leaf(store: EventStore) -> None:
    store.append(table([event(1, session_seq=0), event(2, session_seq=7), event(3)]))
    rows = _by_id(store)
    assert [rows[eid(i)]["session_seq"] for i in (1, 2, 3)] == [0, 7, None]
    assert_log_agrees(store, 3)


def test_an_export_of_the_whole_store_verifies_offline(store: EventStore, tmp_path: Path) -> None:
    store.append(table([event(i, timestamp=BASE + dt.timedelta(days=20 * i)) for i in range(1, 9)]))
    store.append(table([event(i, session_seq=i) for i in range(20, 26)]))
    log = log_of(store)
    assert log is not None
    result = store.export(EventFilter(), str(tmp_path / "export"))
    assert result.manifest["log"] == {"checkpoint": "log/checkpoint", "size": 14}
    export = tmp_path / "export"
    rows = pa.concat_tables([pq.read_table(p) for p in sorted(export.rglob("*.parquet"))])
    assert sorted(rows.column("leaf_index").to_pylist()) == list(range(14))
    note = (export / "log" / "checkpoint").read_text()
    verifier = log.log.checkpoints.signer.verifier
    report = verify_export(export, note, verifier)
    assert report.ok, [f.line() for f in report.findings]
    assert report.checked == 14
    hashes = [r["leaf_hash"] for r in sorted(rows.to_pylist(), key=lambda r: r["leaf_index"])]
    assert verify_checkpoint(note, verifier).root == independent_root(hashes)


def test_an_export_holds_only_what_its_checkpoint_covers(store: EventStore, tmp_path: Path) -> None:
    store.append(table([event(i) for i in range(1, 6)]))
    log = log_of(store)
    assert log is not None
    # Leaves committed after the export's snapshot (here: 5 leaves) never enter it.
    from storage.log.export_log import snapshot

    snap = snapshot(log)
    assert snap is not None
    assert snap.size == 5
    store.append(table([event(i) for i in range(6, 9)]))
    cut = dataclasses.replace(EventFilter(), leaves_before=snap.size)
    rows = page_all(store, cut, order="asc", limit=100)
    assert sorted(r["leaf_index"] for r in rows) == [0, 1, 2, 3, 4]


def test_a_filtered_export_verifies_as_partial(store: EventStore, tmp_path: Path) -> None:
    store.append(table([event(i, timestamp=BASE + dt.timedelta(days=i)) for i in range(1, 11)]))
    log = log_of(store)
    assert log is not None
    store.append(table([event(11, timestamp=BASE + dt.timedelta(days=40))]))
    whole = tmp_path / "whole"
    store.export(EventFilter(), str(whole))
    part = tmp_path / "part"
    store.export(EventFilter(end=BASE + dt.timedelta(days=5, hours=1)), str(part))
    note = (part / "log" / "checkpoint").read_text()
    verifier = log.log.checkpoints.signer.verifier
    assert not (part / "log" / "tree").exists()  # a filtered export carries no tree
    assert not verify_export(part, note, verifier).ok  # as a whole export: leaves missing
    report = verify_export(part, note, verifier, partial=True, tree=whole / "log" / "tree")
    assert report.ok, [f.line() for f in report.findings]
    assert (report.checked, report.absent) == (5, 6)


def test_several_writers_keep_no_log_but_store_session_seq(shared_chdb: EventStore) -> None:
    shared_chdb.append(table([event(1, session_seq=4), event(2)]))
    assert log_of(shared_chdb) is None
    rows = _by_id(shared_chdb)
    assert [rows[eid(1)]["session_seq"], rows[eid(2)]["session_seq"]] == [4, None]
    assert_log_agrees(shared_chdb, 0)  # no leaf at all
