-- The transparency log's columns (issue 11; storage/log, storage/schema.py) and session_seq.
--
--   session_seq   the add-in's number of the event within its session (0, 1, 2 ...), optional:
--                 completeness per session (gaps, one number with two contents, no session_end).
--   leaf_index    the event's position in the RFC 6962 log, in commit order; assigned by the one
--                 writer (the embedded engine) under its writer lock, after deduplication, so a
--                 duplicate is never a second leaf.
--   leaf_hash     SHA-256(0x00 || canonical event) (docs/canonical-event.md).
--
-- They are written by the same insert as the event, so they live in the event's own part: no
-- crash can separate an event from its leaf. Several writers (API replicas sharing a server)
-- have no global commit order without a sequencer: there the leaf columns stay NULL and the
-- log's endpoints say so. Events stored before this file hold NULLs too (outside the log).
--
-- No projection by leaf_index: proofs are served from the log's tree files beside the data;
-- the store reads leaves by index only at start, to extend the tree files after a crash (the
-- few leaves past the tree's end), and the minmax index below prunes that read to the newest
-- parts. leaf_hash is random bytes: no codec could shrink it.
--
-- ADD COLUMN is metadata only: existing parts read the new columns as NULL, nothing is rewritten.
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS session_seq Nullable(Int64) CODEC(ZSTD(1)) AFTER batch_id;
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS leaf_index Nullable(Int64) CODEC(ZSTD(1)) AFTER session_seq;
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS leaf_hash Nullable(FixedString(32)) CODEC(NONE) AFTER leaf_index;
ALTER TABLE audit_events ADD INDEX IF NOT EXISTS idx_leaf_index leaf_index TYPE minmax GRANULARITY 1;
