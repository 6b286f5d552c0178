"""`verify` passes a good archive and names the first problem of a tampered one.

A flipped byte, a missing file, an extra file, an edited manifest (even one whose digest was
recomputed to match) and an empty archive each fail, on both hot stores' archives; S3 too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from storage.archive.location import open_location
from storage.archive.mover import archive_months
from storage.archive.verify import verify_archive
from storage.base import EventStore
from tests.contract.events import table
from tests.objectstores.servers import ObjectStore
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, rows


@pytest.fixture
def archived(store: EventStore, tiers_of: TiersOf, tmp_path: Path) -> Path:
    """An archive of January and February (two manifests, a generation 2 for January)."""
    tiers = tiers_of(str(tmp_path / "archive"))
    data = rows(60)
    tiers.append(table(data))
    archive_months(tiers, BEFORE)
    assert verify_archive(tiers.location).ok
    return tmp_path / "archive"


def _one(root: Path, pattern: str) -> Path:
    return sorted(root.glob(pattern))[0]


def test_a_good_archive_verifies(archived: Path) -> None:
    report = verify_archive(open_location(str(archived)))
    assert report.ok
    assert report.months == 2
    assert report.files_checked == len(list(archived.glob("year=*/month=*/*.parquet")))
    assert report.rows == len([r for r in rows(60) if r["timestamp"].month < 3])


def test_a_flipped_byte_fails(archived: Path) -> None:
    victim = _one(archived, "year=2024/month=02/*.parquet")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    report = verify_archive(open_location(str(archived)))
    assert not report.ok
    assert report.problems == [
        f"year=2024/month=02/{victim.name}: sha256 or size differs from the manifest (the file changed)"
    ]


def test_a_missing_file_fails(archived: Path) -> None:
    victim = _one(archived, "year=2024/month=01/*.parquet")
    victim.unlink()
    report = verify_archive(open_location(str(archived)), 202401)
    assert report.problems == [f"year=2024/month=01/{victim.name}: missing file"]


def test_an_extra_file_fails(archived: Path) -> None:
    (archived / "year=2024/month=02/stray.parquet").write_bytes(b"PAR1")
    report = verify_archive(open_location(str(archived)))
    assert report.problems == ["year=2024/month=02/stray.parquet: extra file that no manifest lists"]


def test_an_edited_manifest_fails(archived: Path) -> None:
    manifest = _one(archived, "year=2024/month=02/_manifest-g*.json")
    data = json.loads(manifest.read_text())
    data["files"][0]["rows"] += 1
    data["rows"] += 1
    manifest.write_text(json.dumps(data))
    report = verify_archive(open_location(str(archived)))
    assert len(report.problems) == 1
    assert "the manifest was edited" in report.problems[0]


def test_an_edited_manifest_with_a_forged_digest_still_fails(archived: Path) -> None:
    manifest = _one(archived, "year=2024/month=02/_manifest-g*.json")
    data = json.loads(manifest.read_text())
    data["files"][0]["rows"] += 1
    data["rows"] += 1
    body = {k: v for k, v in data.items() if k != "digest"}
    data["digest"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    manifest.write_text(json.dumps(data))
    report = verify_archive(open_location(str(archived)))
    assert len(report.problems) == 1
    assert "rows, the manifest says" in report.problems[0]


def test_nothing_to_check_is_not_verified(tmp_path: Path) -> None:
    report = verify_archive(open_location(str(tmp_path / "empty")))
    assert not report.ok
    assert report.files_checked == 0


@pytest.mark.slow
def test_a_flipped_byte_on_s3_fails(store: EventStore, tiers_of: TiersOf, s3: ObjectStore) -> None:
    tiers = tiers_of(s3.new_url(), s3.options)
    tiers.append(table(rows(40)))
    archive_months(tiers, BEFORE)
    assert verify_archive(tiers.location).ok
    victim = next(f for m in tiers.reader.months().values() for f in m.files)
    full = tiers.location.full(victim.path)
    data = bytearray(tiers.location.read_bytes(victim.path))
    data[100] ^= 0x80
    bucket, key = full.split("/", 1)
    s3.s3_client().put_object(Bucket=bucket, Key=key, Body=bytes(data))
    report = verify_archive(tiers.location)
    assert report.problems == [f"{victim.path}: sha256 or size differs from the manifest (the file changed)"]
