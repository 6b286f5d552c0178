"""Retention deletes whole old archived months and logs them; legal holds block it, in both tiers.

On both hot stores; the Object Lock case on an S3 bucket (moto) with Object Lock enabled, where
held files carry an S3 legal hold that refuses even a direct delete of their version.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from api.settings import Settings
from api.tiers import run_pass
from storage.archive.mover import archive_months
from storage.archive.retention import apply_retention, deletion_log
from storage.archive.tiers import TieredStore
from storage.archive.verify import verify_archive
from storage.base import EventStore
from tests.contract.agreement import assert_store_agrees
from tests.contract.events import Row, table
from tests.objectstores.servers import ObjectStore
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, FEB, rows

UTC = dt.UTC
#: With 30 days of retention on 15 March, January (ended 1 February) is past, February is not.
NOW = dt.datetime(2024, 3, 15, tzinfo=UTC)


def _archived(tiers_of: TiersOf, url: str, data: list[Row], options: object = None) -> TieredStore:
    tiers = tiers_of(url, options)
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    return tiers


def test_retention_deletes_whole_old_months_and_records_them(tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows(60)
    tiers = _archived(tiers_of, str(tmp_path / "archive"), data)
    january = tiers.reader.months()[202401]
    report = apply_retention(tiers, 30, now=NOW)
    assert [d["month"] for d in report.deleted] == ["2024-01"]
    assert report.held == []
    assert sorted(tiers.reader.months()) == [202402]
    assert not list((tmp_path / "archive" / "year=2024" / "month=01").glob("*.parquet"))
    assert_store_agrees(tiers, [r for r in data if r["timestamp"] >= FEB])
    log = deletion_log(tiers)
    assert len(log) == 1
    assert log[0]["rows"] == len([r for r in data if r["timestamp"] < FEB])
    assert [(f["path"], f["sha256"], f["rows"]) for f in log[0]["files"]] == [
        (f.path, f.sha256, f.rows) for f in january.files
    ]
    assert json.loads(next((tmp_path / "archive" / "_deletions").glob("*.json")).read_text()) == log[0]
    assert verify_archive(tiers.location).ok
    assert apply_retention(tiers, 30, now=NOW).deleted == []  # nothing left to delete: nothing changes


def test_a_hold_blocks_retention_until_released(tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows(60)
    tiers = _archived(tiers_of, str(tmp_path / "archive"), data)
    hold = tiers.holds.create(
        dt.datetime(2024, 1, 20, tzinfo=UTC), dt.datetime(2024, 1, 21, tzinfo=UTC), None, None, "case 1"
    )
    report = apply_retention(tiers, 30, now=NOW)
    assert report.deleted == []
    assert report.held == [{"month": "2024-01", "holds": [hold.hold_id]}]
    assert_store_agrees(tiers, data)
    tiers.holds.release(hold.hold_id)
    assert [d["month"] for d in apply_retention(tiers, 30, now=NOW).deleted] == ["2024-01"]


def test_a_user_hold_blocks_only_months_holding_that_users_events(tiers_of: TiersOf, tmp_path: Path) -> None:
    data = rows(60)
    tiers = _archived(tiers_of, str(tmp_path / "archive"), data)
    whole = (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 4, 1, tzinfo=UTC))
    nobody = tiers.holds.create(*whole, "CORP\\nobody", None, "no such user")
    edge = tiers.holds.create(*whole, "CORP\\edge0", None, "one event, at the last microsecond of January")
    assert [h["holds"] for h in apply_retention(tiers, 30, now=NOW).held] == [[edge.hold_id]]
    tiers.holds.release(edge.hold_id)
    report = apply_retention(tiers, 30, now=NOW)
    assert [d["month"] for d in report.deleted] == ["2024-01"]
    assert [h.hold_id for h in tiers.holds.active()] == [nobody.hold_id]


def test_the_background_pass_archives_then_applies_retention(
    store: EventStore, tiers_of: TiersOf, tmp_path: Path
) -> None:
    data = rows(60)
    tiers = tiers_of(str(tmp_path / "archive"))
    tiers.append(table(data))
    settings = Settings(archive_url=str(tmp_path / "archive"), archive_after_days=30, retention_days=60)
    done = run_pass(tiers, settings, now=dt.datetime(2024, 4, 20, tzinfo=UTC))  # archive before March
    assert [m["month"] for m in done["archive"]["months"]] == ["2024-01", "2024-02"]
    assert [d["month"] for d in done["retention"]["deleted"]] == ["2024-01"]  # ended > 60 days before
    assert set(store.months()) == {202403}  # type: ignore[attr-defined]
    assert_store_agrees(tiers, [r for r in data if r["timestamp"] >= FEB])


@pytest.mark.slow
def test_held_files_carry_an_s3_legal_hold(tiers_of: TiersOf, s3: ObjectStore) -> None:
    client = s3.s3_client()
    url = s3.new_url(client, object_lock=True)
    data = rows(60)
    tiers = _archived(tiers_of, url, data, s3.options)
    assert tiers.holds.object_lock()
    start, end = dt.datetime(2024, 1, 10, tzinfo=UTC), dt.datetime(2024, 1, 12, tzinfo=UTC)
    hold = tiers.holds.create(start, end, None, None, "litigation")
    tiers.holds.sync_legal_holds(tiers.reader.files(start, end))  # what POST /api/holds does
    bucket = url.split("/")[2]

    def legal_hold(path: str) -> str:
        key = tiers.location.full(path).split("/", 1)[1]
        answer = client.get_object_legal_hold(Bucket=bucket, Key=key)
        return str(answer["LegalHold"]["Status"])

    january = tiers.reader.months()[202401].files
    assert {legal_hold(f.path) for f in january} == {"ON"}
    key = tiers.location.full(january[0].path).split("/", 1)[1]
    version = client.head_object(Bucket=bucket, Key=key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert apply_retention(tiers, 30, now=NOW).held == [{"month": "2024-01", "holds": [hold.hold_id]}]
    assert_store_agrees(tiers, data)
    released = tiers.holds.release(hold.hold_id)
    tiers.holds.sync_legal_holds(tiers.reader.files(released.start, released.end))  # what DELETE does
    assert {legal_hold(f.path) for f in january} == {"OFF"}
    assert [d["month"] for d in apply_retention(tiers, 30, now=NOW).deleted] == ["2024-01"]
