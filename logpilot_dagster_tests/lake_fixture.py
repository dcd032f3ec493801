"""The lake profile on real services: one Postgres (``pgserver``) per session, a fresh catalog database and a
moto S3 bucket per test, and ``LOGPILOT_PROFILE=lake`` pointing at them."""

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import boto3
import pytest

from logpilot_dagster.settings import LogPilotPaths

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL 16 server on a unix socket (stopped at the end of the session).

    Its data directory is not under pytest's ``/tmp/pytest-of-<user>``: run as root, pgserver runs Postgres as
    its own user and opens the path up for it, and every new pytest session sets that folder back to 0700, after
    which the next checkpoint (every 5 minutes) cannot open ``pg_control`` and Postgres shuts down."""
    import pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="logpilot-test-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


def lake_env(postgres, endpoint: str, database: str) -> dict[str, str]:
    """The environment of the lake profile over ``database`` of ``postgres`` and bucket ``lake`` at ``endpoint``."""
    socket_dir = postgres.get_postmaster_info().socket_dir
    return {"LOGPILOT_PROFILE": "lake",
            "LOGPILOT_LAKE_CATALOG": f"postgres:host={socket_dir} dbname={database} user=postgres",
            "LOGPILOT_LAKE_DATA": "s3://lake/data/", "LOGPILOT_LAKE_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def lake_home(postgres, moto_endpoint, tmp_path, monkeypatch) -> LogPilotPaths:
    """A LOGPILOT_HOME on the lake profile: its catalog a new Postgres database, its data in ``s3://lake/data/``."""
    database = f"lake_{os.getpid()}_{next(_databases)}"
    postgres.psql(f"CREATE DATABASE {database};")
    for name, value in lake_env(postgres, moto_endpoint, database).items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
    return LogPilotPaths.from_env(tmp_path / "home").ensure()
