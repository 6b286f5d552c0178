-- Cluster variant of ../001_audit_events.sql (read that file for the ORDER BY, codec and index
-- choices: the column block here must stay identical, tests/test_ddl.py checks it).
--
-- audit_events_local: one replicated table per shard (ReplicatedReplacingMergeTree, Keeper path
-- per shard, replica name from macros). Replication deduplicates inserts by block hash or by the
-- store's insert_deduplication_token, so no non_replicated window is needed.
-- audit_events: the Distributed table the API reads and writes, sharded by event_id so that every
-- copy of an event lands on the same shard, where ReplacingMergeTree and FINAL collapse it.
CREATE TABLE IF NOT EXISTS audit_events_local ON CLUSTER '{cluster}'
(
    event_id       String CODEC(ZSTD(1)),
    timestamp      DateTime64(6, 'UTC') CODEC(Delta(8), ZSTD(1)),
    event_type     LowCardinality(String),
    user_name      LowCardinality(String),
    machine_name   LowCardinality(Nullable(String)),
    session_id     Nullable(String) CODEC(ZSTD(1)),
    workbook_name  LowCardinality(Nullable(String)),
    sheet_name     LowCardinality(Nullable(String)),
    cell_address   Nullable(String) CODEC(ZSTD(1)),
    old_value      Nullable(String) CODEC(ZSTD(3)),
    new_value      Nullable(String) CODEC(ZSTD(3)),
    formula        Nullable(String) CODEC(ZSTD(3)),
    correlation_id Nullable(String) CODEC(ZSTD(1)),
    attributes     Map(String, String) CODEC(ZSTD(3)),
    received_at    DateTime64(6, 'UTC') CODEC(Delta(8), ZSTD(1)),
    batch_id       String CODEC(ZSTD(1)),
    _version       UInt64 MATERIALIZED toUInt64(9000000000000000) - toUInt64(toUnixTimestamp64Micro(received_at)),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_correlation_id correlation_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_workbook workbook_name TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_cell cityHash64(ifNull(workbook_name, ''), ifNull(sheet_name, ''), ifNull(cell_address, ''))
        TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', _version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), user_name, timestamp, event_id)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS audit_events ON CLUSTER '{cluster}' AS audit_events_local
ENGINE = Distributed('{cluster}', currentDatabase(), audit_events_local, cityHash64(event_id));
