"""The consumer interface the worker reads a topic through: one small API, two clients behind it.

``LOGPILOT_KAFKA_CLIENT`` picks the client: ``kafka-python`` (the default) or ``confluent`` (confluent-kafka, on
librdkafka). Both read one topic by explicit assignment (no group rebalancing; the group only stores offsets)
and hand out what they fetched as Arrow columns (``RECORD_SCHEMA``), so nothing downstream depends on a
client's record objects. Their errors become ``BrokerError`` (``BrokerUnreachable`` when retrying may help),
with one line naming the client and the condition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import pyarrow as pa

from logpilot_dagster.broker.settings import CONFLUENT, KAFKA_PYTHON

__all__ = ["CONFLUENT", "KAFKA_PYTHON", "BrokerError", "BrokerUnreachable", "LogConsumer", "RECORD_SCHEMA",
           "record_columns"]
RECORD_SCHEMA = pa.schema([("partition", pa.int32()), ("offset", pa.int64()), ("timestamp", pa.int64()),
                           ("key", pa.binary()), ("value", pa.binary())])


class BrokerError(RuntimeError):
    """A broker request failed."""


class BrokerUnreachable(BrokerError):
    """The broker did not answer (down, moved, timed out): retrying may help."""


def record_columns(partitions: list, offsets: list, timestamps: list, keys: list, values: list) -> pa.Table:
    """Fetched records as one ``RECORD_SCHEMA`` table (the only per-record Python work on the consumer side)."""
    return pa.table([pa.array(partitions, pa.int32()), pa.array(offsets, pa.int64()),
                     pa.array(timestamps, pa.int64()), pa.array(keys, pa.binary()), pa.array(values, pa.binary())],
                    schema=RECORD_SCHEMA)


class LogConsumer(ABC):
    """Reads the partitions of ``topic`` it is assigned, from the offsets it is told.

    ``assign`` starts afresh: no high watermark is known for a partition until a fetch from it came back.
    ``highwater`` is that fetch's high watermark, the broker's real head (tansu under-reports ``end_offsets``).
    ``poll`` returns at most ``max_records`` records as soon as some are there, else after ``timeout_s``.
    """

    client: str

    def __init__(self, topic: str) -> None:
        self.topic = topic

    @abstractmethod
    def partitions(self) -> list[int]:
        """The topic's partition ids as the broker reports them now ([] while it does not know the topic)."""

    @abstractmethod
    def assign(self, partitions: list[int]) -> None:
        """Read these partitions (only these) from now on; positions are set with ``seek``."""

    @abstractmethod
    def seek(self, partition: int, offset: int | None) -> None:
        """Read ``partition`` from ``offset`` next; None: from the earliest record the broker has."""

    @abstractmethod
    def position(self, partition: int) -> int:
        """The offset of the next record ``poll`` returns for ``partition``."""

    @abstractmethod
    def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        """Each partition's end offset as an offsets request reports it."""

    @abstractmethod
    def committed(self, partition: int) -> int | None:
        """The consumer group's committed offset, None when it has none."""

    @abstractmethod
    def highwater(self, partition: int) -> int | None:
        """The high watermark of the last fetch from ``partition`` since ``assign``; None before one."""

    @abstractmethod
    def poll(self, timeout_s: float, max_records: int) -> pa.Table:
        """The next fetched records (``RECORD_SCHEMA``), in offset order within each partition."""

    def subscribe(self, on_assigned: Callable[[list[int]], None], on_revoked: Callable[[list[int]], None]) -> None:
        """Group mode: take partitions from the consumer group's assignment instead of ``assign``. The callbacks
        run inside ``poll`` with the partitions gained or given up; they must not wait for the broker."""
        raise BrokerError(f"{self.client}: consumer-group mode needs the kafka-python client")

    def assignment(self) -> list[int]:
        """The partitions this consumer reads now (group mode: the group's current assignment)."""
        raise BrokerError(f"{self.client}: consumer-group mode needs the kafka-python client")

    @abstractmethod
    def commit(self, offsets: dict[int, int]) -> None:
        """Store next offsets per partition for the consumer group."""

    @abstractmethod
    def close(self) -> None:
        """Leave the broker; the consumer is unusable afterwards."""
