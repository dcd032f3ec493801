"""The broker interface: one small API, interchangeable backends (embedded tansu or any Kafka)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from logpilot_dagster.broker.settings import CONFLUENT, BrokerSettings

if TYPE_CHECKING:  # kafka and pyarrow are imported when a client is made: the code location loads without them
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from logpilot_dagster.broker.consumer import LogConsumer


class Broker(ABC):
    """A Kafka-compatible broker: knows its bootstrap address, creates topics, hands out clients.

    Backends implement ``bootstrap_servers`` and may override ``start``/``stop`` (a no-op for a broker that
    someone else runs). Use as a context manager to start and stop it.
    """

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port...]`` for clients."""

    def start(self) -> "Broker":
        return self

    def stop(self) -> None:
        """Release what ``start`` acquired."""

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client_config(self) -> dict:
        return {"bootstrap_servers": self.bootstrap_servers, **self.settings.security_config()}

    def ensure_topic(self, topic: str | None = None, partitions: int | None = None,
                     retention_ms: int | None = None) -> bool:
        """Create the topic (default: the settings' raw topic) with ``retention.ms``; False if it existed."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(**self.client_config())
        try:
            new = NewTopic(topic or self.settings.topic, num_partitions=partitions or self.settings.partitions,
                           replication_factor=1 if self.is_embedded else -1,
                           topic_configs={"retention.ms": str(retention_ms or self.settings.retention_ms)})
            admin.create_topics([new])
            return True
        except TopicAlreadyExistsError:
            return False
        finally:
            admin.close()

    @property
    def is_embedded(self) -> bool:
        return False

    def producer(self, **overrides) -> KafkaProducer:
        """A producer tuned for throughput (batched, lz4-free so any broker accepts it)."""
        from kafka import KafkaProducer

        return KafkaProducer(**{**self.client_config(), "linger_ms": 20, "batch_size": 256 * 1024, **overrides})

    def _consumer_config(self, overrides: dict) -> dict:
        return {**self.client_config(), "enable_auto_commit": False, "auto_offset_reset": "earliest", **overrides}

    def consumer(self, **overrides) -> KafkaConsumer:
        """A plain kafka-python consumer (tools and tests); the worker reads through ``log_consumer``."""
        from kafka import KafkaConsumer

        return KafkaConsumer(**self._consumer_config(overrides))

    def log_consumer(self, topic: str | None = None, client: str | None = None, **overrides) -> LogConsumer:
        """A ``LogConsumer`` of ``topic`` (default: the raw topic) on ``client`` (default: ``settings.client``);
        ``overrides``: kafka-python consumer keywords, translated for other clients."""
        config = self._consumer_config(overrides)
        if (client or self.settings.client) == CONFLUENT:
            from logpilot_dagster.broker.confluent_consumer import ConfluentConsumer as backend
        else:
            from logpilot_dagster.broker.kafka_python_consumer import KafkaPythonConsumer as backend
        return backend(topic or self.settings.topic, config)

    def partitions(self, topic: str | None = None) -> list[TopicPartition]:
        """The topic's partitions, as the broker reports them now."""
        from kafka import TopicPartition

        topic = topic or self.settings.topic
        consumer = self.consumer()
        try:
            return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        finally:
            consumer.close()
