"""Kafka-compatible brokers behind one interface: the embedded ``tansu`` or any Kafka cluster.

``connect_broker`` picks the backend from the settings: ``LOGPILOT_KAFKA_BOOTSTRAP`` when set, else the
embedded broker that ``logpilot broker`` announced under the state directory. ``embedded_broker`` builds the
embedded one: durable (tansu on SeaweedFS, files under ``buffer_dir``) unless ``memory``.
"""

from __future__ import annotations

from pathlib import Path

from logpilot_dagster.broker.base import Broker
from logpilot_dagster.broker.embedded import EmbeddedBroker, announced_bootstrap
from logpilot_dagster.broker.remote import KafkaBroker
from logpilot_dagster.broker.seaweedfs import SeaweedS3
from logpilot_dagster.broker.settings import BrokerSettings

ANNOUNCE_FILE = "broker.json"


class BrokerUnavailable(RuntimeError):
    """No bootstrap address is configured and no embedded broker is running."""


def announce_file(state_dir: Path) -> Path:
    return Path(state_dir) / ANNOUNCE_FILE


def embedded_broker(settings: BrokerSettings, buffer_dir: Path, memory: bool = False, port: int | None = None,
                    announce_to: Path | None = None) -> EmbeddedBroker:
    """The embedded broker: its log in a SeaweedFS store under ``buffer_dir``, or in memory if ``memory``.
    ``announce_to``: the state directory where it announces itself to the other commands."""
    return EmbeddedBroker(settings, port=port, store=None if memory else SeaweedS3(buffer_dir),
                          announce_file=None if announce_to is None else announce_file(announce_to))


def connect_broker(settings: BrokerSettings, state_dir: Path) -> Broker:
    """The configured Kafka, or the running embedded broker announced in ``state_dir``."""
    if settings.bootstrap_servers:
        return KafkaBroker(settings)
    bootstrap = announced_bootstrap(announce_file(state_dir))
    if bootstrap is None:
        raise BrokerUnavailable("no broker: run `logpilot broker` or set LOGPILOT_KAFKA_BOOTSTRAP")
    return KafkaBroker(settings, bootstrap)


__all__ = ["Broker", "BrokerSettings", "BrokerUnavailable", "EmbeddedBroker", "KafkaBroker", "SeaweedS3",
           "announce_file", "connect_broker", "embedded_broker"]
