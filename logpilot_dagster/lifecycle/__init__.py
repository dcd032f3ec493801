"""Lifecycle: hot (DuckDB ``logs``) → warm (zstd Parquet objects) → cold (archive storage class), retention,
restore, and the ``logs_all`` view across the readable tiers. One catalog table in the warehouse knows every
object (``catalog``)."""
