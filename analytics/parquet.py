"""Open a Parquet export or archive directory (`year=YYYY/month=MM/*.parquet`) for analysis.

Both readers use hive partitioning, so a filter on `year`/`month` prunes whole directories, and
both leave the files untouched (read-only). `manifest.json` and temporary files are ignored.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

__all__ = ["duckdb_relation", "scan_events"]


def _glob(root: str | Path) -> str:
    return str(Path(root) / "**" / "*.parquet")


def scan_events(root: str | Path, *, with_partitions: bool = False) -> pl.LazyFrame:
    """The events under `root` as a polars LazyFrame in EVENT_SCHEMA's columns.

    Args:
        root: an export or archive directory.
        with_partitions: keep the hive `year` and `month` columns (useful for pruning filters).
    """
    frame = pl.scan_parquet(_glob(root), hive_partitioning=True)
    return frame if with_partitions else frame.drop("year", "month", strict=False)


def duckdb_relation(
    root: str | Path, connection: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyRelation:
    """The events under `root` as a DuckDB relation (year and month columns included).

    Pass a connection to join with other relations; the default is DuckDB's module connection.
    """
    con = connection if connection is not None else duckdb.default_connection()
    return con.read_parquet(_glob(root), hive_partitioning=True)
