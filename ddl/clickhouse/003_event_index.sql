-- event_index: every stored event_id with its timestamp, sorted by event_id, kept by a
-- materialized view. Identity is the event_id alone (a re-sent id with another timestamp is
-- still a duplicate), but audit_events is sorted by time, so "which of these 20,000 ids exist?"
-- would probe every granule there; here it is a primary-key lookup. It also turns
-- GET /api/events/{id} into a key lookup plus a one-day read of audit_events.
CREATE TABLE IF NOT EXISTS event_index
(
    event_id  String CODEC(ZSTD(1)),
    timestamp DateTime64(6, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree
ORDER BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_index_mv TO event_index AS
SELECT event_id, timestamp FROM audit_events;

-- Backfill for databases created before this file (runs once; repeats would be harmless).
INSERT INTO event_index SELECT event_id, timestamp FROM audit_events;
