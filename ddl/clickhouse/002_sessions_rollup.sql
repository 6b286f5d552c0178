-- sessions_rollup: one aggregate row per session, kept current by a materialized view on every
-- insert into audit_events, so /api/sessions reads this small table instead of scanning events.
--
-- The view sees every inserted block, including a re-sent event that ReplacingMergeTree will only
-- collapse later. Every state here is therefore idempotent under duplicates: min/max of the
-- timestamps, argMin of the first event (ties by event_id), the exact set of event ids
-- (uniqExact, so event_count counts each id once) and the distinct set of workbooks.
CREATE TABLE IF NOT EXISTS sessions_rollup
(
    session_id  String,
    start_time  SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    end_time    SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    first_event AggregateFunction(argMin, Tuple(String, Nullable(String)), Tuple(DateTime64(6, 'UTC'), String)),
    event_ids   AggregateFunction(uniqExact, String),
    workbooks   AggregateFunction(groupUniqArray, String)
)
ENGINE = AggregatingMergeTree
ORDER BY session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_rollup_mv TO sessions_rollup AS
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
FROM audit_events
WHERE isNotNull(audit_events.session_id)  -- qualified: the alias session_id above would shadow it
GROUP BY session_id;
