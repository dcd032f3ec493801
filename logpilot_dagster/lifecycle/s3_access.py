"""DuckDB reads of tier objects on S3: httpfs with a temporary secret built from boto3's credentials."""

from __future__ import annotations

from urllib.parse import urlparse

import boto3
import duckdb

from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.storage.warehouse import load_extension


def create_s3_secret(con: duckdb.DuckDBPyConnection, settings: TierStoreSettings) -> None:
    """``LOAD httpfs`` and ``CREATE OR REPLACE TEMPORARY SECRET`` scoped to the tier bucket. Temporary: DuckDB
    would write a persistent secret unencrypted under ``~/.duckdb``; the credentials stay in this process."""
    load_extension(con, "httpfs")
    session = boto3.session.Session()
    creds = session.get_credentials()
    options = {"TYPE": "s3", "SCOPE": f"s3://{settings.bucket}",
               "REGION": session.region_name or "us-east-1"}
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        options.update(KEY_ID=frozen.access_key, SECRET=frozen.secret_key)
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
    if settings.endpoint_url:
        url = urlparse(settings.endpoint_url)
        options.update(ENDPOINT=url.netloc, URL_STYLE="path", USE_SSL=str(url.scheme == "https").lower())
    body = ", ".join(f"{k} {v}" if k in ("TYPE", "USE_SSL") else f"{k} '{v.replace(chr(39), chr(39) * 2)}'"
                     for k, v in options.items())
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET logpilot_tiers ({body})")
