-- Cluster variant of ../000_schema_migrations.sql: replicated, so every replica sees which DDL
-- files were applied (the store applies ddl/clickhouse/cluster/ when its URL says ddl=cluster).
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER '{cluster}'
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', applied_at)
ORDER BY version;
