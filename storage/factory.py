"""Build a store from its URL; the URL scheme picks the engine.

`parquet:///abs/dir` (or a plain path) is DuckDB over Parquet; `chdb:///abs/dir` is the embedded
ClickHouse engine; `http(s)://user:pass@host:8123/db` is a ClickHouse server or cluster.
Engines are imported lazily so that local mode never loads the ClickHouse driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from storage.base import ENGINE_MEMORY_MB, EventStore

if TYPE_CHECKING:
    from storage.log.store_log import LogOptions

__all__ = ["create_store", "store_kind"]


def store_kind(url: str) -> str:
    """'parquet' or 'clickhouse', by the URL's scheme; a bare path is Parquet."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("", "parquet", "file"):
        return "parquet"
    if scheme in ("chdb", "http", "https", "clickhouse"):
        return "clickhouse"
    raise ValueError(f"unsupported store URL scheme {scheme!r}: use parquet://, chdb://, http(s)://")


def parquet_root(url: str) -> Path:
    """The directory of a `parquet://` or `file://` URL, or of a plain path."""
    parts = urlsplit(url)
    return Path(parts.netloc + parts.path).resolve()


def create_store(
    url: str, *, database: str | None = None, memory_mb: int = ENGINE_MEMORY_MB, log: LogOptions | None = None
) -> EventStore:
    """A store for `url`, not yet opened; `database` isolates ClickHouse tests inside one path.

    `memory_mb` bounds an embedded engine's memory (DuckDB, chdb); a server's is its own. `log`
    configures the transparency log (default: on, beside the data, key generated if absent); a
    ClickHouse server shared by several writers keeps none whatever it says.
    """
    if store_kind(url) == "parquet":
        from storage.parquet.store import ParquetStore

        return ParquetStore(parquet_root(url), memory_mb=memory_mb, log=log)
    from storage.clickhouse.store import ClickHouseStore

    return ClickHouseStore(url, database=database, memory_mb=memory_mb, log=log)
