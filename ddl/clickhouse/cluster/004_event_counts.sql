-- Cluster variant of ../004_event_counts.sql. A cluster always has several writers, so the store
-- never reads these counts there (it aggregates the deduplicated events instead); the table is
-- kept so that both variants define the same tables, and so that per-shard counts are at hand.
CREATE TABLE IF NOT EXISTS event_counts_local ON CLUSTER '{cluster}'
(
    hour   DateTime('UTC'),
    dim    Enum8('event_type' = 1, 'user_name' = 2, 'workbook_name' = 3),
    key    String,
    events UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (hour, dim, key);

CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_mv ON CLUSTER '{cluster}' TO event_counts_local AS
SELECT toStartOfHour(timestamp) AS hour, tupleElement(c_pair, 1) AS dim, tupleElement(c_pair, 2) AS key, count() AS events
FROM audit_events_local
ARRAY JOIN arrayConcat(
    [('event_type', toString(event_type)), ('user_name', toString(user_name))],
    if(isNull(workbook_name), [], [('workbook_name', toString(assumeNotNull(workbook_name)))])
) AS c_pair
GROUP BY hour, dim, key;

CREATE TABLE IF NOT EXISTS event_counts ON CLUSTER '{cluster}' AS event_counts_local
ENGINE = Distributed('{cluster}', currentDatabase(), event_counts_local, rand());
