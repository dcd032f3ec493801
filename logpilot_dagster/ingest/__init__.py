"""Ingest: formats, sources, reading, parsing, masking and mining of landing-zone files; the yearly backfill."""
