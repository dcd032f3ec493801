"""Any Kafka (or Kafka-compatible) cluster reached through ``bootstrap_servers``; LogPilot does not run it."""

from __future__ import annotations

from logpilot_dagster.broker.base import Broker
from logpilot_dagster.broker.settings import BrokerSettings


class KafkaBroker(Broker):
    """A broker someone else runs: ``start``/``stop`` do nothing."""

    def __init__(self, settings: BrokerSettings, bootstrap_servers: str | None = None) -> None:
        super().__init__(settings)
        self._bootstrap = bootstrap_servers or settings.bootstrap_servers
        if not self._bootstrap:
            raise ValueError("KafkaBroker needs bootstrap_servers")

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap
