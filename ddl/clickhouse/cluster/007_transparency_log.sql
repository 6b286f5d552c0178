-- Cluster variant of ../007_transparency_log.sql (read that file for why). The replicated local
-- tables gain the columns on every replica; the Distributed table has its own column list, so it
-- gains them too (it stores nothing). With several API replicas writing, the leaf columns stay
-- NULL (no global commit order without a sequencer); session_seq is stored as everywhere.
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS session_seq Nullable(Int64) CODEC(ZSTD(1)) AFTER batch_id;
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS leaf_index Nullable(Int64) CODEC(ZSTD(1)) AFTER session_seq;
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS leaf_hash Nullable(FixedString(32)) CODEC(NONE) AFTER leaf_index;
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_leaf_index leaf_index TYPE minmax GRANULARITY 1;
ALTER TABLE audit_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS session_seq Nullable(Int64) AFTER batch_id;
ALTER TABLE audit_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS leaf_index Nullable(Int64) AFTER session_seq;
ALTER TABLE audit_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS leaf_hash Nullable(FixedString(32)) AFTER leaf_index;
