"""ClickHouseStore: the EventStore on ClickHouse MergeTree through clickhouse-connect.

store (the EventStore) → queries (every SQL statement, values bound), migrations (ddl/clickhouse/),
ids (the single writer's id-hash filter), timeseries (bucket maths, zero fill), errors (driver
errors → transient/terminal).
"""
