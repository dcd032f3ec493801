"""Kafka-compatible brokers behind one interface: the embedded ``tansu`` or any Kafka cluster.

``connect_broker`` picks the backend from the settings: ``LOGPILOT_KAFKA_BOOTSTRAP`` when set, else the
embedded broker that ``logpilot broker`` announced under the state directory.
"""

from __future__ import annotations

from pathlib import Path

from logpilot_dagster.broker.base import Broker
from logpilot_dagster.broker.embedded import EmbeddedBroker, announced_bootstrap
from logpilot_dagster.broker.remote import KafkaBroker
from logpilot_dagster.broker.settings import BrokerSettings

ANNOUNCE_FILE = "broker.json"


class BrokerUnavailable(RuntimeError):
    """No bootstrap address is configured and no embedded broker is running."""


def announce_file(state_dir: Path) -> Path:
    return Path(state_dir) / ANNOUNCE_FILE


def connect_broker(settings: BrokerSettings, state_dir: Path) -> Broker:
    """The configured Kafka, or the running embedded broker announced in ``state_dir``."""
    if settings.bootstrap_servers:
        return KafkaBroker(settings)
    bootstrap = announced_bootstrap(announce_file(state_dir))
    if bootstrap is None:
        raise BrokerUnavailable("no broker: run `logpilot broker` or set LOGPILOT_KAFKA_BOOTSTRAP")
    return KafkaBroker(settings, bootstrap)


__all__ = ["Broker", "BrokerSettings", "BrokerUnavailable", "EmbeddedBroker", "KafkaBroker", "announce_file",
           "connect_broker"]
