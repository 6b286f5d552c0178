-- Derived figures live inside the events' own parts (projections), never in tables of their own.
--
-- Why: 002-004 kept three tables (sessions_rollup, event_index, event_counts) filled by
-- materialized views. A view writes its own part after the insert into audit_events, and the
-- parts commit one by one: a kill -9 between them left the derived tables short of (or beyond)
-- the events. event_index missing ids let a resent batch be stored twice; event_counts and
-- sessions_rollup then disagreed with the events (issue 7, reproduced in
-- tests/storage/clickhouse/test_torn_derived.py).
-- A projection is written inside the part's temporary directory and published with it by one
-- atomic rename, and merges and mutations rebuild it from the same rows: a part and its derived
-- figures cannot be separated by any crash. Projections are an access path, not a second copy
-- that can disagree: a part without one (before MATERIALIZE finishes) is read from its rows.
--
--   p_ids            event_id -> timestamp, sorted by id: "which of these ids are stored" and
--                    GET /api/events/{id} are key lookups (what event_index was).
--   p_hour_*         events per (UTC hour, event type | user | workbook): the dashboard's count
--                    lists, distinct users/workbooks and hour/day/week series over whole hours.
--   p_sessions       per session: first/last timestamp, first event's user and machine, the
--                    exact set of ids and of workbooks. Every state is idempotent under a
--                    duplicate row, so these figures stay exact with several writers too.
--
-- The embedded engine has one writer, which never inserts an id twice, so its reads skip FINAL
-- and use the projections. Several writers read through FINAL, which ignores projections, except
-- for the session figures, whose states do not count duplicates.
--
-- Merges of ReplacingMergeTree may drop rows, so they rebuild projections ('rebuild').
-- non_replicated_deduplication_window = 0: the store re-checks ids before every insert and its
-- retries, which makes engine-side block deduplication redundant; for a non-replicated table it
-- also records a block's hash before the part is committed, so a crash between the two would
-- make a retry of that very block vanish (replicated tables commit both in Keeper atomically).
--
-- Every statement is idempotent; a crash in the middle means the file runs again at next start.
-- MATERIALIZE PROJECTION builds the projections of parts written before this file (a mutation,
-- waited for), so an existing database is healed from its events, whatever its old derived
-- tables held.
DROP VIEW IF EXISTS event_index_mv;
DROP VIEW IF EXISTS sessions_rollup_mv;
DROP VIEW IF EXISTS event_counts_mv;

ALTER TABLE audit_events MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild', non_replicated_deduplication_window = 0;

ALTER TABLE audit_events ADD PROJECTION IF NOT EXISTS p_ids (SELECT event_id, timestamp ORDER BY event_id);
ALTER TABLE audit_events ADD PROJECTION IF NOT EXISTS p_hour_type (
    SELECT toStartOfHour(timestamp), event_type, count() GROUP BY toStartOfHour(timestamp), event_type
);
ALTER TABLE audit_events ADD PROJECTION IF NOT EXISTS p_hour_user (
    SELECT toStartOfHour(timestamp), user_name, count() GROUP BY toStartOfHour(timestamp), user_name
);
ALTER TABLE audit_events ADD PROJECTION IF NOT EXISTS p_hour_workbook (
    SELECT toStartOfHour(timestamp), workbook_name, count() GROUP BY toStartOfHour(timestamp), workbook_name
);
ALTER TABLE audit_events ADD PROJECTION IF NOT EXISTS p_sessions (
    SELECT
        session_id,
        min(timestamp),
        max(timestamp),
        argMin((toString(user_name), CAST(machine_name, 'Nullable(String)')), (timestamp, event_id)),
        uniqExact(event_id),
        groupUniqArrayIf(toString(assumeNotNull(workbook_name)), workbook_name IS NOT NULL)
    GROUP BY session_id
);

ALTER TABLE audit_events MATERIALIZE PROJECTION p_ids SETTINGS mutations_sync = 2;
ALTER TABLE audit_events MATERIALIZE PROJECTION p_hour_type SETTINGS mutations_sync = 2;
ALTER TABLE audit_events MATERIALIZE PROJECTION p_hour_user SETTINGS mutations_sync = 2;
ALTER TABLE audit_events MATERIALIZE PROJECTION p_hour_workbook SETTINGS mutations_sync = 2;
ALTER TABLE audit_events MATERIALIZE PROJECTION p_sessions SETTINGS mutations_sync = 2;

DROP TABLE IF EXISTS event_index;
DROP TABLE IF EXISTS sessions_rollup;
DROP TABLE IF EXISTS event_counts;
