-- Cluster variant of ../002_sessions_rollup.sql. The view runs on every shard over the rows
-- inserted there; a session's events may sit on several shards (events shard by event_id), so
-- the Distributed sessions_rollup merges the partial states of all shards at query time (the
-- states are mergeable by construction: min, max, argMin, uniqExact, groupUniqArray).
CREATE TABLE IF NOT EXISTS sessions_rollup_local ON CLUSTER '{cluster}'
(
    session_id  String,
    start_time  SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    end_time    SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    first_event AggregateFunction(argMin, Tuple(String, Nullable(String)), Tuple(DateTime64(6, 'UTC'), String)),
    event_ids   AggregateFunction(uniqExact, String),
    workbooks   AggregateFunction(groupUniqArray, String)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_rollup_mv ON CLUSTER '{cluster}' TO sessions_rollup_local AS
SELECT
    assumeNotNull(session_id) AS session_id,
    min(timestamp) AS start_time,
    max(timestamp) AS end_time,
    argMinState(
        (toString(user_name), CAST(machine_name, 'Nullable(String)')),
        (timestamp, event_id)
    ) AS first_event,
    uniqExactState(event_id) AS event_ids,
    groupUniqArrayStateIf(toString(assumeNotNull(workbook_name)), workbook_name IS NOT NULL) AS workbooks
FROM audit_events_local
WHERE isNotNull(audit_events_local.session_id)  -- qualified: the alias session_id above would shadow it
GROUP BY session_id;

CREATE TABLE IF NOT EXISTS sessions_rollup ON CLUSTER '{cluster}' AS sessions_rollup_local
ENGINE = Distributed('{cluster}', currentDatabase(), sessions_rollup_local, cityHash64(session_id));
