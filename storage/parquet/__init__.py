"""ParquetStore: DuckDB over `year=YYYY/month=MM/` Parquet files (local mode and archive tier).

store (the EventStore) → layout (files, manifest), index (id hashes), rollup (footer figures),
queries (every DuckDB statement), series (time series from rollups), compaction (background
merging), errors (DuckDB/OS errors → store errors).
"""
