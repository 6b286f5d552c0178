-- audit_events: one row per audit event (storage/schema.py EVENT_SCHEMA), single node.
--
-- Engine: ReplacingMergeTree(_version). A re-sent event (same event_id, same timestamp, hence the
-- same sorting key) collapses into one row at merge time; _version is larger for an earlier
-- received_at, so the FIRST stored version is the one kept. Reads never wait for merges: they use
-- FINAL (see storage/clickhouse_queries.py), which is cheap here because duplicates can only live
-- in the same monthly partition (the partition key is a function of the sorting key), so
-- do_not_merge_across_partitions_select_final = 1 is safe.
--
-- ORDER BY (toDate(timestamp), user_name, timestamp, event_id), chosen for the real queries:
--   * every dashboard and read carries a time range: the leading day prunes granules to the
--     days asked for (the monthly partition prunes whole months first);
--   * "one user, one day" (the most common drill-down) is then a contiguous key range;
--   * timestamp, event_id end the key so that the key identifies an event (replacing needs
--     that) and rows of one user-day are already in the API's (timestamp, event_id) order.
-- Session, correlation and event-id lookups are selective but not in the key: bloom-filter skip
-- indexes serve them. Cell history (workbook, sheet, cell, no time range) uses a bloom filter on
-- the hash of the three columns. Workbook filters use a bloom filter on workbook_name.
--
-- Types: DateTime64(6, 'UTC') (microseconds), LowCardinality for the repetitive names, Delta+ZSTD
-- on timestamps, stronger ZSTD on long text, Map(String, String) for the free-form attributes.
-- event_id stays String (canonical lowercase UUID text) so that ties order exactly as in the
-- Parquet store, which compares the same text.
CREATE TABLE IF NOT EXISTS audit_events
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
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), user_name, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192;
