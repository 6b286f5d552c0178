"""Reads span the tiers exactly; moves are exact, idempotent, exclusive; late and resent events.

Every test runs on both hot stores (the `store` fixture). The main one snapshots every read a store
answers (stats over eight windows, every page in both orders with cursors, page ends, time series
of every bucket and group, sessions paged and filtered, each session, events, cell histories),
archives January and February, and compares: the snapshot must not change by one value, and
every figure must still equal the plain-Python oracle over the events. It does so with the
archive on a local path, on S3 (moto) and on Azure Blob (Azurite).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage.archive.fingerprint import fingerprint_of, hex_fp
from storage.archive.location import open_location
from storage.archive.mover import ArchiveBusyError, ReconcileError, archive_months
from storage.archive.verify import verify_archive
from storage.base import EventFilter, EventStore, Page
from tests.contract.agreement import assert_store_agrees
from tests.contract.events import event, table
from tests.objectstores.servers import ObjectStore
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, FEB, MAR, rows, snapshot


def test_every_read_answers_the_same_after_archiving(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows()
    ids = sorted(r["event_id"] for r in data)
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    before = snapshot(tiers, ids)
    report = archive_months(tiers, BEFORE)
    assert [m.month for m in report.months] == ["2024-01", "2024-02"]
    assert sum(m.rows for m in report.months) == len([r for r in data if r["timestamp"] < MAR])
    assert set(store.months()) == {202403}  # type: ignore[attr-defined]
    assert sorted(tiers.reader.months()) == [202401, 202402]
    after = snapshot(tiers, ids)
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, (
        f"{len(changed)} reads changed, e.g. {changed[:5]}: {before[changed[0]]} -> {after[changed[0]]}"
    )
    assert_store_agrees(tiers, data)
    assert verify_archive(tiers.location).ok


@pytest.mark.slow
@pytest.mark.parametrize("where", ["s3", "azure"])
def test_an_archive_on_an_object_store_answers_exactly(
    store: EventStore, tiers_of: TiersOf, where: str, request: pytest.FixtureRequest
) -> None:
    """The same move to S3 (moto) and Azure Blob (Azurite): every figure still equals the oracle."""
    objects: ObjectStore = request.getfixturevalue(where)
    data = rows(90)
    tiers = tiers_of(objects.new_url(), objects.options)
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    assert sorted(tiers.reader.months()) == [202401, 202402]
    assert set(store.months()) == {202403}  # type: ignore[attr-defined]
    assert_store_agrees(tiers, data)
    report = verify_archive(tiers.location)
    assert report.ok, report.problems
    assert report.rows == len([r for r in data if r["timestamp"] < MAR])


def test_each_month_is_in_one_tier_and_the_manifest_tells_it(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    feb = [r for r in data if FEB <= r["timestamp"] < MAR]
    manifest = tiers.reader.months()[202402]
    assert manifest.rows == len(feb)
    assert hex_fp(manifest.fingerprint) == hex_fp(fingerprint_of(r["event_id"] for r in feb))
    written = [
        i
        for f in manifest.files
        for i in pq.read_table(tmp_path / "archive" / f.path).column("event_id").to_pylist()
    ]
    assert written == [r["event_id"] for r in sorted(feb, key=lambda r: (r["timestamp"], r["event_id"]))]
    assert max(r["timestamp"] for r in feb) == MAR - dt.timedelta(microseconds=1)
    assert store.month_fingerprint(202402) == (0, 0)  # type: ignore[attr-defined]
    hot_march = store.query(EventFilter(), Page(limit=1000)).num_rows
    assert hot_march == len([r for r in data if r["timestamp"] >= MAR])


def test_archiving_again_changes_nothing(store: EventStore, tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").rglob("*") if p.is_file())
    again = archive_months(tiers, BEFORE)
    assert again.months == []
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").rglob("*") if p.is_file()) == files
    assert_store_agrees(tiers, data)


def test_dry_run_moves_nothing(store: EventStore, tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    report = archive_months(tiers, BEFORE, dry_run=True)
    jan = len([r for r in data if r["timestamp"] < FEB])
    feb = len([r for r in data if FEB <= r["timestamp"] < MAR])
    moves = [(m.month, m.rows, m.status) for m in report.months]
    assert moves == [("2024-01", jan, "would_move"), ("2024-02", feb, "would_move")]
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").rglob("*.parquet"))
    assert set(store.months()) == {202401, 202402, 202403}  # type: ignore[attr-defined]


def test_late_events_for_an_archived_month_become_its_next_generation(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    late = [
        event(
            20_000 + i,
            timestamp=dt.datetime(2024, 1, 31, 23, 59, 59, 999_999 - i, tzinfo=dt.UTC),
            session_id="edge-a",
        )
        for i in range(4)
    ]
    result = tiers.append(table(late))
    assert (result.stored, result.duplicates) == (4, 0)
    assert_store_agrees(tiers, [*data, *late])  # served from both tiers meanwhile, exactly
    report = archive_months(tiers, BEFORE)
    assert [(m.month, m.rows, m.generation) for m in report.months] == [("2024-01", 4, 2)]
    manifest = tiers.reader.months()[202401]
    assert sorted({f.generation for f in manifest.files}) == [1, 2]
    assert manifest.rows == len([r for r in [*data, *late] if r["timestamp"] < FEB])
    assert 202401 not in store.months()  # type: ignore[attr-defined]
    assert_store_agrees(tiers, [*data, *late])
    assert verify_archive(tiers.location).ok


def test_a_resent_batch_of_an_archived_month_is_not_stored_again(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    fresh = [event(30_000, timestamp=dt.datetime(2024, 2, 10, tzinfo=dt.UTC)), event(30_001, timestamp=MAR)]
    result = tiers.append(table([*data[:40], *fresh, *data[-20:]]))
    assert (result.stored, result.duplicates) == (2, 60)
    assert_store_agrees(tiers, [*data, *fresh])


def test_a_mismatch_drops_nothing(store: EventStore, tiers_of: TiersOf, tmp_path: Path) -> None:
    """An event arrives for the month after its files were written: the reconcile refuses."""
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    late = event(40_000, timestamp=dt.datetime(2024, 1, 15, tzinfo=dt.UTC))

    def arrive(step: str, month: int) -> None:
        if step == "read_back" and month == 202401:
            tiers.append(table([late]))

    with pytest.raises(ReconcileError, match="nothing was dropped"):
        archive_months(tiers, BEFORE, on_step=arrive)
    assert 202401 in store.months()  # type: ignore[attr-defined]
    assert not list((tmp_path / "archive").rglob("*.parquet"))  # the run's files are gone
    assert_store_agrees(tiers, [*data, late])
    archive_months(tiers, BEFORE)  # run again: now it reconciles
    assert_store_agrees(tiers, [*data, late])
    assert verify_archive(tiers.location).ok


def test_two_archivers_at_once_one_commits_the_other_fails_cleanly(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows()
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    inside, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def slow(step: str, month: int) -> None:
        if step == "files_written":
            inside.set()
            assert release.wait(30)

    first = threading.Thread(target=lambda: outcome.append(archive_months(tiers, BEFORE, on_step=slow)))
    first.start()
    try:
        assert inside.wait(30)
        with pytest.raises(ArchiveBusyError):
            archive_months(tiers, BEFORE)
    finally:
        release.set()
        first.join(60)
    assert len(outcome) == 1
    assert_store_agrees(tiers, data)
    assert verify_archive(tiers.location).ok


@pytest.mark.parametrize("where", ["local", "s3", "azure"])
def test_a_generation_is_committed_once(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The commit primitive: of two writers creating one manifest, exactly one wins, on every location."""
    if where == "local":
        location = open_location(str(tmp_path / "a"))
    else:
        objects: ObjectStore = request.getfixturevalue(where)
        location = open_location(objects.new_url(), objects.options)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def commit(body: bytes) -> None:
        barrier.wait()
        results.append(location.create_exclusive("year=2024/month=01/_manifest-g000001.json", body))

    threads = [threading.Thread(target=commit, args=(body,)) for body in (b"first", b"second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True]
    assert location.read_bytes("year=2024/month=01/_manifest-g000001.json") in (b"first", b"second")
    assert not location.create_exclusive("year=2024/month=01/_manifest-g000001.json", b"third")
