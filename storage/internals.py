"""What a store's inside looks like right now, for operators: an optional capability of a store.

Why: whether an engine keeps up (ClickHouse parts piling up faster than merges fold them, Parquet
files waiting for compaction) is invisible from the API's own counters until inserts are throttled
or reads slow down. A store that can say so cheaply implements `HasInternals`: `internals()`
returns a flat `{name: value}` read from metadata only (system tables, the in-memory manifest),
never from a scan of the events. The names are those of `INTERNALS` below; /metrics exports each
as the gauge `govtrack_<name>` and /health shows them in the store check.

Wrappers pass the call through: `ForwardingStore.internals` (deferred opening, tracing, test
faults) forwards it through its hook, and `internals_of` walks the `inner`/`hot` attributes of any
other wrapper (the archive's TieredStore) down to the engine.
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

from storage.layers import layers

__all__ = ["INTERNALS", "HasInternals", "internals_of"]

#: Every name a store may report, with what it means (the gauge's help text).
INTERNALS: Final[dict[str, str]] = {
    # ClickHouse: the events table (audit_events, or audit_events_local of the node a cluster
    # client is connected to), from system.parts / system.merges / system.mutations.
    "clickhouse_active_parts": "Active parts of the events table (all partitions).",
    "clickhouse_max_parts_per_partition": (
        "Active parts of the events table's fullest partition (a month); inserts are delayed at "
        "clickhouse_parts_to_delay_insert and refused at clickhouse_parts_to_throw_insert."
    ),
    "clickhouse_partitions": "Partitions (months) of the events table holding active parts.",
    "clickhouse_merges_running": "Merges of the events table in progress.",
    "clickhouse_parts_merging": "Source parts taking part in the merges in progress.",
    "clickhouse_mutations_pending": "Mutations of the events table not done yet.",
    "clickhouse_rows": "Rows in the active parts of the events table (a duplicate not merged yet counts).",
    "clickhouse_bytes_on_disk": "Bytes on disk of the active parts of the events table.",
    "clickhouse_parts_to_delay_insert": "The server's parts-per-partition threshold that delays inserts.",
    "clickhouse_parts_to_throw_insert": "The server's parts-per-partition threshold that refuses inserts.",
    "clickhouse_memory_tracked_bytes": (
        "Memory the ClickHouse engine tracks as in use (the whole engine or server, not only this table)."
    ),
    # Parquet: from the manifest and the compactor's own bookkeeping.
    "parquet_files": "Live Parquet data files (all months).",
    "parquet_months": "Months holding live Parquet files.",
    "parquet_max_files_per_month": "Live Parquet files of the month holding the most.",
    "parquet_rows": "Rows in the live Parquet files.",
    "parquet_compaction_backlog_files": (
        "Files in size tiers that reached the compaction threshold: waiting for a merge or in one."
    ),
    "parquet_compaction_running": "Files being merged by the compaction in progress (0: none).",
    "parquet_compactions": "Merges compaction has done since the store opened.",
    "parquet_last_compaction_seconds": "Duration of the last merge (absent until one ran).",
    "parquet_last_compaction_rows": "Rows written by the last merge (absent until one ran).",
    "parquet_spill_bytes": "Bytes DuckDB has spilled under the store's root right now.",
    "parquet_duckdb_memory_bytes": "Bytes DuckDB (reads and compaction together) holds in memory now.",
}


@runtime_checkable
class HasInternals(Protocol):
    """A store that can describe its physical state cheaply (metadata only, no scan)."""

    def internals(self) -> dict[str, float]:
        """`{name: value}` with names from `INTERNALS`; raises when the engine does not answer."""
        ...


def internals_of(store: object) -> dict[str, float]:
    """The internals of the first store down a chain of wrappers that has them; {} when none has.

    Raises what the store raises (a store that is down, a wrapper's fault); callers that must not
    fail (a scrape, /health) catch it.
    """
    for layer in layers(store):
        if isinstance(layer, HasInternals):
            return layer.internals()
    return {}
