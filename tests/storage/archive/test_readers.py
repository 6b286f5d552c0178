"""The archive is readable without govtrack: DuckDB, polars and ClickHouse's file() and s3().

Each reader, pointed at `year=*/month=*/*.parquet` with hive partitioning, must count exactly the
rows the months' manifests list, month by month, and see the event schema's columns. The archive
is written from both hot stores; ClickHouse reads it through the test session's embedded engine
(one data path per process, a database of its own), from a local path and from S3 (moto).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest

from storage.archive.mover import archive_months
from storage.archive.tiers import TieredStore
from storage.base import EventStore
from storage.clickhouse.store import ClickHouseStore
from storage.schema import EVENT_SCHEMA
from tests.contract.events import table
from tests.objectstores.servers import S3_KEY, ObjectStore
from tests.storage.archive.conftest import TiersOf
from tests.storage.archive.data import BEFORE, rows

GLOB = "year=*/month=*/*.parquet"


def _archived(
    tiers_of: TiersOf, url: str, options: object = None
) -> tuple[TieredStore, dict[tuple[int, int], int]]:
    tiers = tiers_of(url, options)
    tiers.append(table(rows(60)))
    archive_months(tiers, BEFORE)
    want = {(m // 100, m % 100): man.rows for m, man in tiers.reader.months().items()}
    assert sum(want.values()) > 0
    return tiers, want


@pytest.fixture
def engine(chdb_path: Path) -> ClickHouseStore:
    """The session's embedded ClickHouse, in a database of its own."""
    store = ClickHouseStore(f"chdb://{chdb_path}", database=f"r_{uuid.uuid4().hex[:10]}")
    store.open()
    return store


def test_duckdb_and_polars_count_the_manifests_rows(tiers_of: TiersOf, tmp_path: Path) -> None:
    _, want = _archived(tiers_of, str(tmp_path / "archive"))
    pattern = str(tmp_path / "archive" / GLOB)
    con = duckdb.connect()
    query = (
        f"SELECT year, month, count(*) FROM read_parquet('{pattern}', hive_partitioning = true) GROUP BY ALL"
    )
    counted = con.execute(query).fetchall()
    con.close()
    assert {(int(y), int(m)): n for y, m, n in counted} == want
    frame = pl.scan_parquet(pattern, hive_partitioning=True).group_by("year", "month").len().collect()
    assert {(int(y), int(m)): n for y, m, n in frame.iter_rows()} == want
    names = pl.scan_parquet(pattern, hive_partitioning=False).collect_schema().names()
    assert names == EVENT_SCHEMA.names


def test_clickhouse_file_counts_the_manifests_rows(
    tiers_of: TiersOf, tmp_path: Path, engine: ClickHouseStore
) -> None:
    _, want = _archived(tiers_of, str(tmp_path / "archive"))
    sql = (
        "SELECT toUInt16(extract(_path, 'year=(\\\\d+)')) AS y, toUInt8(extract(_path, 'month=(\\\\d+)')) AS m, "
        "count() AS n FROM file({p:String}, Parquet) GROUP BY y, m"
    )
    try:
        counted = engine._arrow((sql, {"p": str(tmp_path / "archive" / GLOB)})).to_pylist()
    finally:
        engine.close()
    assert {(r["y"], r["m"]): r["n"] for r in counted} == want


@pytest.mark.slow
def test_clickhouse_s3_counts_the_manifests_rows(
    store: EventStore, tiers_of: TiersOf, s3: ObjectStore, engine: ClickHouseStore
) -> None:
    url = s3.new_url()
    _, want = _archived(tiers_of, url, s3.options)
    http = f"{s3.endpoint}/{url.removeprefix('s3://')}/{GLOB}"
    sql = (
        "SELECT toUInt16(extract(_path, 'year=(\\\\d+)')) AS y, toUInt8(extract(_path, 'month=(\\\\d+)')) AS m, "
        "count() AS n FROM s3({u:String}, {k:String}, {k:String}, 'Parquet') GROUP BY y, m"
    )
    try:
        counted = engine._arrow((sql, {"u": http, "k": S3_KEY})).to_pylist()
    finally:
        engine.close()
    assert {(r["y"], r["m"]): r["n"] for r in counted} == want
    frame = pl.scan_parquet(
        f"{url}/{GLOB}",
        hive_partitioning=True,
        storage_options={
            "aws_endpoint_url": s3.endpoint,
            "aws_access_key_id": S3_KEY,
            "aws_secret_access_key": S3_KEY,
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        },
    )
    assert {
        (int(y), int(m)): n for y, m, n in frame.group_by("year", "month").len().collect().iter_rows()
    } == want
