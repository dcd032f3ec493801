"""Live ingestion: the collector/producer side and the exactly-once worker (Kafka -> DuckDB ``logs``).

Public API: ``LiveSettings``, ``run_ingestion`` / ``IngestionWorker`` / ``IngestStats``, ``LineProducer``,
``Collector``; the CLI subcommands live in ``logpilot_dagster.stream.cli``. The names load on first use, so the
worker's stage process (which imports ``stream.writer``) do not pay for the Kafka client.
"""

from importlib import import_module

_HOMES = {
    "Collector": "collector", "FileTailer": "collector", "LineProducer": "producer", "LiveSettings": "settings",
    "CATCH_UP": "worker", "REAL_TIME": "worker", "IngestionWorker": "worker", "IngestStats": "worker",
    "run_ingestion": "worker",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
