-- schema_migrations: which numbered DDL files have been applied to this database, with the
-- sha256 of each file. Applied first on every start (it is its own bootstrap). Replacing on
-- version so that two replicas of the API starting at once cannot leave a file recorded twice.
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version;
