-- Cluster variant of ../005_hot_codecs.sql (read that file for why): the replicated local
-- tables change codec on every replica; the Distributed table stores nothing.
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' MODIFY COLUMN old_value Nullable(String) CODEC(LZ4);
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' MODIFY COLUMN new_value Nullable(String) CODEC(LZ4);
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' MODIFY COLUMN formula Nullable(String) CODEC(LZ4);
ALTER TABLE audit_events_local ON CLUSTER '{cluster}' MODIFY COLUMN attributes Map(String, String) CODEC(LZ4);
