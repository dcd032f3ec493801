"""Dagster wiring: thin assets, checks, jobs and sensors over the plain-Python domain modules."""
