"""Shared fixtures. ``sample_home`` is a small LOGPILOT_HOME built through the real Dagster assets."""

import pytest

from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster_tests.pipeline import build_home

#: ``broker`` (the real tansu broker on a free loopback port), ``live_home`` and ``live_settings``.
#: ``lake_home``: a home on the lake profile (Postgres catalog from pgserver, data on moto S3).
#: ``llm_server``: an OpenAI-compatible chat-completions endpoint on loopback.
pytest_plugins = ["logpilot_dagster_tests.broker_fixture", "logpilot_dagster_tests.s3_fixture",
                  "logpilot_dagster_tests.lake_fixture", "logpilot_dagster_tests.llm_fixture"]

SAMPLE_YEARS = (2022, 2023)


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory) -> LogPilotPaths:
    """Two sample years (40k lines, the bad files in 2023) backfilled, with catalog, T1 and template vectors."""
    home = tmp_path_factory.mktemp("logpilot_home")
    build_home(home, SAMPLE_YEARS, lines=40_000, vectors=True)
    return LogPilotPaths.from_env(home)
