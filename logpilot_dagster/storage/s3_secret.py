"""A temporary DuckDB S3 secret (httpfs) built from boto3's credentials, for any bucket DuckDB reads or writes."""

from __future__ import annotations

from urllib.parse import urlparse

import duckdb


def create_s3_secret(con: duckdb.DuckDBPyConnection, name: str, scope: str, endpoint_url: str | None) -> None:
    """``LOAD httpfs`` and ``CREATE OR REPLACE TEMPORARY SECRET name`` scoped to ``scope`` (``s3://bucket``).
    Temporary: DuckDB would write a persistent secret unencrypted under ``~/.duckdb``; the credentials stay in
    this process. ``endpoint_url``: an S3-compatible server (path-style URLs)."""
    import boto3

    from logpilot_dagster.storage.warehouse import load_extension

    load_extension(con, "httpfs")
    session = boto3.session.Session()
    creds = session.get_credentials()
    options = {"TYPE": "s3", "SCOPE": scope, "REGION": session.region_name or "us-east-1"}
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        options.update(KEY_ID=frozen.access_key, SECRET=frozen.secret_key)
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
    if endpoint_url:
        url = urlparse(endpoint_url)
        options.update(ENDPOINT=url.netloc, URL_STYLE="path", USE_SSL=str(url.scheme == "https").lower())
    body = ", ".join(f"{k} {v}" if k in ("TYPE", "USE_SSL") else f"{k} '{v.replace(chr(39), chr(39) * 2)}'"
                     for k, v in options.items())
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {name} ({body})")
