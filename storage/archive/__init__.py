"""The archive tier: months moved from the hot store to Parquet on a path, S3 or Azure Blob.

One module per job: `location` (where: pyarrow.fs and exclusive creates), `fingerprint` (the
order-independent content hash), `manifest` (the per-month commit record), `writer` (sorted Parquet
files with rollups in their footers), `verify`, `reader` (DuckDB over the archive), `tiers` (the
store that serves both tiers), `mover` (the verified move), `retention`, `holds`, `exporter`.
"""
