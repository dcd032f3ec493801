"""Configurable resources: where LogPilot lives and where its landing zone is (local dir or S3)."""

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from logpilot_dagster.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.settings import LogPilotPaths


class LogPilotHome(dg.ConfigurableResource):
    """``LOGPILOT_HOME``: landing zone, DuckDB file, Parquet, Chroma and state."""

    home: str = "data"
    show_progress: bool = False

    @property
    def paths(self) -> LogPilotPaths:
        return LogPilotPaths.from_env(self.home).ensure()

    def registry(self) -> SchemaRegistry:
        return SchemaRegistry.load(self.paths)


class LandingZone(dg.ConfigurableResource):
    """The landing zone: ``$LOGPILOT_HOME/landing_zone`` unless an S3 bucket is configured."""

    s3_bucket: str = ""
    s3_prefix: str = ""
    s3: dg.ResourceDependency[S3Resource]

    def store(self, paths: LogPilotPaths) -> ObjectStore:
        if self.s3_bucket:
            return S3ObjectStore(self.s3.get_client(), self.s3_bucket, self.s3_prefix)
        return LocalObjectStore(paths.landing_zone)


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """An ``EnvVar`` when the variable is set (so the UI shows where a value comes from), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def default_resources() -> dict:
    endpoint = dg.EnvVar("LOGPILOT_S3_ENDPOINT_URL") if os.environ.get("LOGPILOT_S3_ENDPOINT_URL") else None
    s3 = S3Resource(endpoint_url=endpoint, region_name=env_or("AWS_DEFAULT_REGION", "us-east-1"))
    return {
        "logpilot": LogPilotHome(home=env_or("LOGPILOT_HOME", "data")),
        "landing_zone": LandingZone(s3_bucket=env_or("LOGPILOT_LANDING_BUCKET", ""),
                                    s3_prefix=env_or("LOGPILOT_LANDING_PREFIX", ""), s3=s3),
    }
