"""Storage backends: the DuckDB warehouse and the object store (local directory or S3)."""
