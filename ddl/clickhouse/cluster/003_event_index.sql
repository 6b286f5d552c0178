-- Cluster variant of ../003_event_index.sql; sharded by event_id exactly like audit_events.
CREATE TABLE IF NOT EXISTS event_index_local ON CLUSTER '{cluster}'
(
    event_id  String CODEC(ZSTD(1)),
    timestamp DateTime64(6, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_index_mv ON CLUSTER '{cluster}' TO event_index_local AS
SELECT event_id, timestamp FROM audit_events_local;

CREATE TABLE IF NOT EXISTS event_index ON CLUSTER '{cluster}' AS event_index_local
ENGINE = Distributed('{cluster}', currentDatabase(), event_index_local, cityHash64(event_id));
