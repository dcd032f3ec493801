"""Live ingestion: the collector/producer side and the exactly-once worker (Kafka -> DuckDB ``logs``).

Public API: ``LiveSettings``, ``run_ingestion`` / ``IngestionWorker`` / ``IngestStats``, ``LineProducer``,
``Collector``; the CLI subcommands live in ``logpilot_dagster.stream.cli``.
"""

from logpilot_dagster.stream.collector import Collector, FileTailer
from logpilot_dagster.stream.producer import LineProducer
from logpilot_dagster.stream.settings import LiveSettings
from logpilot_dagster.stream.worker import CATCH_UP, REAL_TIME, IngestionWorker, IngestStats, run_ingestion

__all__ = ["CATCH_UP", "REAL_TIME", "Collector", "FileTailer", "IngestStats", "IngestionWorker", "LineProducer",
           "LiveSettings", "run_ingestion"]
