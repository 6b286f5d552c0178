"""Issue 9: an embedded engine's memory is bounded by a setting, not by the size of the data.

DuckDB (the Parquet store) gets `memory_limit` and spills to a directory under the store's root;
a compaction under a budget far smaller than its input still completes, by spilling. The embedded
ClickHouse engine gets a server memory cap and caches sized as shares of it (they default to
5 GiB each).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from storage.base import ENGINE_MEMORY_MB, EventFilter
from storage.clickhouse.store import ClickHouseStore, engine_options
from storage.parquet.store import SPILL_DIR, ParquetStore
from storage.schema import EVENT_SCHEMA, UTC_MICROS
from tests.conftest import new_database
from tests.contract.events import BASE, event, micros, table

MIB = 1024 * 1024
BASE_US = micros(BASE)


def test_duckdb_has_the_budget_and_spills_under_the_root(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "p", memory_mb=192)
    store.open()
    try:
        with store._cursor() as cur:
            limit = cur.execute("SELECT current_setting('memory_limit')").fetchone()
            spill = cur.execute("SELECT current_setting('temp_directory')").fetchone()
        assert limit is not None
        assert spill is not None
        assert limit[0] in ("96.0 MiB", "91.5 MiB")  # half the budget; DuckDB shows MB as MiB
        assert Path(spill[0]) == tmp_path / "p" / SPILL_DIR / "reads"
    finally:
        store.close()


def wide_rows(first: int, count: int) -> pa.Table:
    """`count` events with 400-character values (~0.5 KB a row), built column-wise."""
    template = table([event(0)])
    columns = {name: pa.repeat(template.column(name)[0], count) for name in template.column_names}
    columns["event_id"] = pa.array([str(uuid.UUID(int=first + i)) for i in range(count)])
    columns["timestamp"] = pa.array(np.arange(count, dtype=np.int64) * 1_000_000 + BASE_US).cast(UTC_MICROS)
    columns["new_value"] = pa.array([f"{i:08d}" + "x" * 392 for i in range(count)])
    return pa.table(columns).cast(EVENT_SCHEMA)


def test_a_compaction_larger_than_the_budget_completes(tmp_path: Path) -> None:
    """Four 100k-row files (~200 MB as Arrow) merged and sorted by a 128 MB compaction engine: it spills."""
    store = ParquetStore(tmp_path / "p", memory_mb=256, compact_threshold=4, compact_max_rows=10_000_000)
    store.open()
    try:
        for k in range(4):
            store.append(wide_rows(k * 100_000, 100_000))
        assert store.compact() == 1
        assert len(store._files.manifest.files) == 1
        assert store.stats(EventFilter(), 1).total_events == 400_000
    finally:
        store.close()


def test_the_embedded_clickhouse_engine_is_capped(chdb_path: Path) -> None:
    store = ClickHouseStore(f"chdb://{chdb_path}", database=new_database())
    store.open()
    try:
        rows = store._conn().query(
            "SELECT name, value FROM system.server_settings WHERE name IN "
            "('max_server_memory_usage', 'mark_cache_size', 'primary_index_cache_size', "
            "'index_mark_cache_size', 'uncompressed_cache_size')"
        )
        got = {name: value for name, value in rows.result_rows}
    finally:
        store.close()
    assert got == engine_options(ENGINE_MEMORY_MB)
    assert int(got["max_server_memory_usage"]) == ENGINE_MEMORY_MB * MIB
