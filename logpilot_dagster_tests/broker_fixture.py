"""Pytest fixtures for the live path: a real embedded broker (tansu on a free loopback port; in memory, or durable
on a real SeaweedFS store) and a small home.

The brokers' settings carry the worker's consumer client, ``kafka_client`` (kafka-python by default); a test
marked ``@both_clients`` runs once per client. ``conftest.py`` imports ``broker``; the live tests import the
rest from here.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from logpilot_dagster.broker import BrokerSettings, EmbeddedBroker, SeaweedS3
from logpilot_dagster.broker.settings import CLIENTS, KAFKA_PYTHON
from logpilot_dagster.ingest.sample_data import render_line, source_specs
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.ingest.sources import write_sources
from logpilot_dagster.stream import LiveSettings


#: Run a test once per consumer client (it overrides the ``kafka_client`` fixture).
both_clients = pytest.mark.parametrize("kafka_client", CLIENTS)


@pytest.fixture
def kafka_client() -> str:
    return KAFKA_PYTHON


@pytest.fixture
def broker(kafka_client):
    """A fresh embedded broker (memory storage) whose raw topic ``test.raw`` has 3 partitions."""
    with EmbeddedBroker(BrokerSettings(topic="test.raw", partitions=3, client=kafka_client)) as running:
        yield running


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One SeaweedFS S3 store for the session (it takes a few seconds to start); each broker gets a bucket."""
    with SeaweedS3(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


@pytest.fixture
def durable_broker(seaweed, kafka_client):
    """An embedded broker whose log lives in its own bucket of the session's SeaweedFS store (as
    ``logpilot broker`` runs by default); ``kill`` and ``start`` keep the log."""
    with EmbeddedBroker(BrokerSettings(topic="test.raw", partitions=3, client=kafka_client), store=seaweed,
                        bucket=f"test-{uuid.uuid4().hex[:12]}") as running:
        yield running


@pytest.fixture
def live_home(tmp_path) -> LogPilotPaths:
    """A LOGPILOT_HOME with the sample ``sources.yaml`` (eight services, their real header formats)."""
    paths = LogPilotPaths.from_env(tmp_path / "home").ensure()
    write_sources(paths.sources_file, source_specs())
    return paths


@pytest.fixture
def live_settings(live_home, broker) -> LiveSettings:
    """Small batches, so a few thousand records already make several transactions."""
    return LiveSettings(paths=live_home, broker=broker.settings, batch_size=500, max_latency_s=0.3)


def sample_lines(service: str, n: int, start: datetime, step: timedelta = timedelta(seconds=1),
                 seed: int = 0) -> list[bytes]:
    """``n`` lines of ``service`` in its own header format, one per ``step`` from ``start`` (UTC)."""
    r = random.Random(seed)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return [render_line(service, start + i * step, r)[1].encode() for i in range(n)]


def recent(hours: float = 1.0) -> datetime:
    """A whole second ``hours`` ago (UTC, naive like DuckDB TIMESTAMPs)."""
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(tzinfo=None, microsecond=0)


def write_lines(path: Path, lines: list[bytes], mode: str = "ab") -> None:
    with open(path, mode) as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
