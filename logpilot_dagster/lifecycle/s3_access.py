"""DuckDB reads of tier objects on S3: httpfs with a temporary secret built from boto3's credentials."""

from __future__ import annotations

import duckdb

from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.storage.s3_secret import create_s3_secret as _create_secret


def create_s3_secret(con: duckdb.DuckDBPyConnection, settings: TierStoreSettings) -> None:
    """``LOAD httpfs`` and a temporary secret ``logpilot_tiers`` scoped to the tier bucket."""
    _create_secret(con, "logpilot_tiers", f"s3://{settings.bucket}", settings.endpoint_url)
