"""Settings of the live path (broker + worker), from the environment or plain values (``dg.EnvVar``-friendly)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from logpilot_dagster.broker import BrokerSettings
from logpilot_dagster.settings import LogPilotPaths

DEFAULT_GROUP = "logpilot-ingest"
#: Records per catch-up transaction: fewer, larger transactions (and WAL checkpoints) cost DuckDB less per
#: record; 150k measured faster than 50k (benchmarks/bench_live.py) for about 100 MB more peak memory.
DEFAULT_BATCH_SIZE = 150_000


def buffer_dir(paths: LogPilotPaths) -> Path:
    """Where the embedded broker's durable log lives (SeaweedFS files): ``LOGPILOT_HOME/buffer``."""
    return paths.home / "buffer"


@dataclass(frozen=True)
class LiveSettings:
    """``batch_size`` caps the records per DuckDB transaction. A smaller batch is handed on once the worker has
    reached the head of the topic or its oldest record waited ``max_latency_s``, provided the transform/write
    pipeline has room; under load records keep gathering into fewer, larger transactions instead."""

    paths: LogPilotPaths
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    group_id: str = DEFAULT_GROUP
    batch_size: int = DEFAULT_BATCH_SIZE
    max_latency_s: float = 1.0
    #: One member of consumer group ``group_id`` (partitions from the group) instead of all partitions.
    group_mode: bool = False

    @classmethod
    def from_env(cls, paths: LogPilotPaths | None = None, env: Mapping[str, str] | None = None) -> "LiveSettings":
        """Broker variables (see ``BrokerSettings.from_env``) plus ``LOGPILOT_INGEST_GROUP``,
        ``LOGPILOT_INGEST_GROUP_MODE`` (1/true), ``LOGPILOT_INGEST_BATCH_SIZE`` and ``LOGPILOT_INGEST_MAX_LATENCY_S``."""
        env = os.environ if env is None else env
        return cls(
            paths=paths or LogPilotPaths.from_env(),
            broker=BrokerSettings.from_env(env),
            group_id=env.get("LOGPILOT_INGEST_GROUP") or DEFAULT_GROUP,
            batch_size=int(env.get("LOGPILOT_INGEST_BATCH_SIZE") or DEFAULT_BATCH_SIZE),
            max_latency_s=float(env.get("LOGPILOT_INGEST_MAX_LATENCY_S") or 1.0),
            group_mode=(env.get("LOGPILOT_INGEST_GROUP_MODE") or "").lower() in ("1", "true", "yes"),
        )
