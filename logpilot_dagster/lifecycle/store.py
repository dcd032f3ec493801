"""The tier store for a home: a ``LocalObjectStore`` on ``$LOGPILOT_HOME/tiers`` or an ``S3ObjectStore``."""

from __future__ import annotations

from pathlib import Path

from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore


def tier_store(settings: TierStoreSettings, s3_client=None) -> ObjectStore:
    """``s3_client``: e.g. ``S3Connection.get_client()``; default a boto3 client at the endpoint."""
    if not settings.is_s3:
        return LocalObjectStore(Path(settings.local_root))
    import boto3  # only for S3 tiers: boto3 costs about a second at import

    client = s3_client or boto3.client("s3", endpoint_url=settings.endpoint_url)
    return S3ObjectStore(client, settings.bucket, settings.prefix)
