"""Configurable resources: where LogPilot lives and where its landing zone is (local dir or S3)."""

import os
from typing import TYPE_CHECKING, Optional

import dagster as dg

from logpilot_dagster.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from logpilot_dagster.settings import LogPilotPaths

if TYPE_CHECKING:  # the registry's miner (drain3) is imported by the steps that use it
    from logpilot_dagster.ingest.registry import SchemaRegistry


class LogPilotHome(dg.ConfigurableResource):
    """`LOGPILOT_HOME`: landing zone, DuckDB file, Parquet, Chroma and state."""

    home: str = "data"
    show_progress: bool = False

    @property
    def paths(self) -> LogPilotPaths:
        return LogPilotPaths.from_env(self.home).ensure()

    def registry(self) -> "SchemaRegistry":
        from logpilot_dagster.ingest.registry import SchemaRegistry

        return SchemaRegistry.load(self.paths)


class S3Connection(dg.ConfigurableResource):
    """An S3 or S3-compatible endpoint (credentials from the usual AWS chain). boto3 is imported when a client
    is made, not when the code location loads (dagster-aws's `S3Resource` costs seconds at import)."""

    endpoint_url: Optional[str] = None
    region_name: str = "us-east-1"

    def get_client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url or None, region_name=self.region_name)


class LandingZone(dg.ConfigurableResource):
    """The landing zone: `$LOGPILOT_HOME/landing_zone` unless an S3 bucket is configured."""

    s3_bucket: str = ""
    s3_prefix: str = ""
    s3: dg.ResourceDependency[S3Connection]

    def store(self, paths: LogPilotPaths) -> ObjectStore:
        if self.s3_bucket:
            return S3ObjectStore(self.s3.get_client(), self.s3_bucket, self.s3_prefix)
        return LocalObjectStore(paths.landing_zone)


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """An `EnvVar` when the variable is set (so the UI shows where a value comes from), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def landing_kind() -> str:
    """The landing zone's kind badge: `s3` when `LOGPILOT_LANDING_BUCKET` is set, else `file`."""
    return "s3" if os.environ.get("LOGPILOT_LANDING_BUCKET") else "file"


def s3_connection() -> S3Connection:
    return S3Connection(endpoint_url=env_or("LOGPILOT_S3_ENDPOINT_URL", "") or None,
                        region_name=env_or("AWS_DEFAULT_REGION", "us-east-1"))


def default_resources() -> dict:
    return {
        "logpilot": LogPilotHome(home=env_or("LOGPILOT_HOME", "data")),
        "landing_zone": LandingZone(s3_bucket=env_or("LOGPILOT_LANDING_BUCKET", ""),
                                    s3_prefix=env_or("LOGPILOT_LANDING_PREFIX", ""), s3=s3_connection()),
    }
