"""Spool: durable, ordered, capped; crash leftovers cleaned; corrupt files kept aside, never dropped."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from storage.spool import (
    CORRUPT_DIR,
    REJECTED_DIR,
    Spool,
    SpoolCorruptError,
    SpoolFullError,
    SpoolLockedError,
)
from tests.faults import event_ids, make_batch

MiB = 1024 * 1024


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def ids_of(table: pa.Table) -> list[str]:
    return [str(v) for v in table.column("event_id").to_pylist()]


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != ".lock")


def test_write_read_roundtrip_keeps_schema_and_rows(spool_dir: Path) -> None:
    batch = make_batch(25, start=7)
    with Spool(spool_dir, MiB) as spool:
        entry = spool.write(batch)
        assert (entry.seq, entry.rows) == (1, 25)
        assert entry.path.exists()
        assert entry.size == entry.path.stat().st_size
        back = spool.read(entry)
    assert back.equals(batch)
    assert back.schema.equals(batch.schema)


def test_entries_are_ordered_and_sequence_survives_reopen(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        seqs = [spool.write(make_batch(3, start=i * 3)).seq for i in range(4)]
        assert seqs == [1, 2, 3, 4]
        spool.remove(spool.entries()[-1])  # the highest number goes away...
    with Spool(spool_dir, MiB) as spool:
        assert [e.seq for e in spool.entries()] == [1, 2, 3]
        assert [e.rows for e in spool.entries()] == [3, 3, 3]
        new = spool.write(make_batch(1, start=100))
        assert new.seq == 4  # ...so the sequence restarts from what is on disk: still after 3
        order = [ids_of(spool.read(e))[0] for e in spool.entries()]
    assert order == [event_ids(0, 1)[0], event_ids(3, 1)[0], event_ids(6, 1)[0], event_ids(100, 1)[0]]


def test_depth_and_bytes_track_writes_and_removes(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        assert (spool.depth, spool.bytes) == (0, 0)
        a = spool.write(make_batch(10))
        b = spool.write(make_batch(20, start=10))
        assert (spool.depth, spool.bytes) == (2, a.size + b.size)
        assert spool.first() == a
        spool.remove(a)
        spool.remove(a)  # idempotent
        assert (spool.depth, spool.bytes) == (1, b.size)
        assert not a.path.exists()
        snap = spool.snapshot()
        assert (snap.depth, snap.bytes, snap.rows, snap.corrupt_files) == (1, b.size, 20, 0)
        spool.remove(b)
        assert spool.first() is None


def test_cap_refuses_without_leaving_anything_behind(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as probe:
        one = probe.write(make_batch(50)).size
        probe.remove(probe.entries()[0])
    with Spool(spool_dir, 2 * one + one // 2) as spool:
        spool.write(make_batch(50))
        spool.write(make_batch(50, start=50))
        with pytest.raises(SpoolFullError, match="spool full"):
            spool.write(make_batch(50, start=100))
        assert spool.depth == 2
        assert files_in(spool_dir) == [f"{1:020d}.arrow", f"{2:020d}.arrow"]  # no temp file left
        spool.remove(spool.entries()[0])
        assert spool.write(make_batch(50, start=100)).seq == 3


def test_a_batch_bigger_than_the_cap_is_refused(spool_dir: Path) -> None:
    with Spool(spool_dir, 100) as spool, pytest.raises(SpoolFullError):
        spool.write(make_batch(10))


def test_temp_files_of_an_interrupted_write_are_removed_at_open(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        spool.write(make_batch(5))
    (spool_dir / ".deadbeef.tmp").write_bytes(b"ARROW1 half a batch")
    with Spool(spool_dir, MiB) as spool:
        assert spool.depth == 1
    assert files_in(spool_dir) == [f"{1:020d}.arrow"]


def test_truncated_entry_is_moved_to_corrupt_and_reported(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        spool.write(make_batch(5))
        last = spool.write(make_batch(5, start=5))
    data = last.path.read_bytes()
    last.path.write_bytes(data[: len(data) // 2])
    with Spool(spool_dir, MiB) as spool:
        assert [e.seq for e in spool.entries()] == [1]
        snap = spool.snapshot()
        assert snap.corrupt_files == 1
        assert (spool_dir / CORRUPT_DIR / last.path.name).read_bytes() == data[: len(data) // 2]
        assert spool.write(make_batch(1, start=99)).seq == 3  # the quarantined number is not reused


def test_entry_corrupted_after_open_is_quarantined_on_read(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        entry = spool.write(make_batch(5))
        entry.path.write_bytes(b"not arrow at all")
        with pytest.raises(SpoolCorruptError) as info:
            spool.read(entry)
        assert info.value.quarantined == spool_dir / CORRUPT_DIR / entry.path.name
        assert info.value.quarantined.exists()
        assert (spool.depth, spool.bytes) == (0, 0)


def test_rejected_entry_is_kept_aside(spool_dir: Path) -> None:
    with Spool(spool_dir, MiB) as spool:
        entry = spool.write(make_batch(5))
        target = spool.reject(entry, reason="schema mismatch")
        assert target == spool_dir / REJECTED_DIR / entry.path.name
        assert spool.depth == 0
        assert spool.snapshot().rejected_files == 1


def test_one_owner_per_directory(spool_dir: Path) -> None:
    first = Spool(spool_dir, MiB)
    with pytest.raises(SpoolLockedError):
        Spool(spool_dir, MiB)
    first.close()
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.write(make_batch(1))
    with Spool(spool_dir, MiB) as again:
        assert again.depth == 0


def test_concurrent_writers_get_distinct_sequences(spool_dir: Path) -> None:
    with Spool(spool_dir, 64 * MiB) as spool:

        def writer(w: int) -> None:
            for i in range(10):
                spool.write(make_batch(2, start=(w * 10 + i) * 2))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = spool.entries()
        assert [e.seq for e in entries] == list(range(1, 41))
        all_ids = [i for e in entries for i in ids_of(spool.read(e))]
    assert sorted(all_ids) == sorted(event_ids(0, 80))
