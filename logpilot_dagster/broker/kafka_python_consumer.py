"""``LogConsumer`` on kafka-python (pure Python; the default client)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import pyarrow as pa
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from logpilot_dagster.broker.consumer import KAFKA_PYTHON, BrokerError, BrokerUnreachable, LogConsumer, record_columns

TIMEOUT_MS = 5000


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except KafkaError as exc:
        kind = BrokerUnreachable if exc.retriable else BrokerError
        raise kind(f"kafka-python: {type(exc).__name__}: {exc}") from exc


class KafkaPythonConsumer(LogConsumer):
    """``config``: kafka-python ``KafkaConsumer`` keyword arguments."""

    client = KAFKA_PYTHON

    def __init__(self, topic: str, config: dict) -> None:
        super().__init__(topic)
        with _translated():
            self._consumer = KafkaConsumer(**config)
        self._tps: dict[int, TopicPartition] = {}

    def _tp(self, partition: int) -> TopicPartition:
        return self._tps.get(partition) or TopicPartition(self.topic, partition)

    def partitions(self) -> list[int]:
        with _translated():
            return sorted(self._consumer.partitions_for_topic(self.topic) or ())

    def assign(self, partitions: list[int]) -> None:
        self._tps = {p: TopicPartition(self.topic, p) for p in partitions}
        with _translated():
            self._consumer.unsubscribe()  # fresh partition states: no high watermark from an earlier fetch
            self._consumer.assign(list(self._tps.values()))

    def seek(self, partition: int, offset: int | None) -> None:
        with _translated():
            if offset is None:
                self._consumer.seek_to_beginning(self._tp(partition))
            else:
                self._consumer.seek(self._tp(partition), offset)

    def position(self, partition: int) -> int:
        with _translated():
            return self._consumer.position(self._tp(partition), timeout_ms=TIMEOUT_MS)

    def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        with _translated():
            ends = self._consumer.end_offsets([self._tp(p) for p in partitions], timeout_ms=TIMEOUT_MS)
        return {tp.partition: end for tp, end in ends.items()}

    def committed(self, partition: int) -> int | None:
        with _translated():
            return self._consumer.committed(self._tp(partition), timeout_ms=TIMEOUT_MS)

    def highwater(self, partition: int) -> int | None:
        return self._consumer.highwater(self._tp(partition))

    def poll(self, timeout_s: float, max_records: int) -> pa.Table:
        with _translated():
            polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        records = [r for batch in polled.values() for r in batch] if len(polled) != 1 else next(iter(polled.values()))
        return record_columns([r.partition for r in records], [r.offset for r in records],
                              [r.timestamp for r in records], [r.key for r in records], [r.value for r in records])

    def subscribe(self, on_assigned: Callable[[list[int]], None], on_revoked: Callable[[list[int]], None]) -> None:
        # kafka-python runs the listener on its IO thread inside poll(), where a call that waits for the broker fails
        with _translated():
            self._consumer.subscribe([self.topic], listener=_Listener(self, on_assigned, on_revoked))

    def assignment(self) -> list[int]:
        return sorted(tp.partition for tp in self._consumer.assignment())

    def commit(self, offsets: dict[int, int]) -> None:
        with _translated():
            self._consumer.commit({self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
                                  timeout_ms=TIMEOUT_MS)

    def close(self) -> None:
        self._consumer.close()


class _Listener(ConsumerRebalanceListener):
    """Hands the group's partition changes to the worker as partition ids."""

    def __init__(self, owner: KafkaPythonConsumer, on_assigned, on_revoked) -> None:
        self.owner, self.on_assigned, self.on_revoked = owner, on_assigned, on_revoked

    def on_partitions_revoked(self, revoked) -> None:
        self.on_revoked(sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned) -> None:
        self.owner._tps = {tp.partition: tp for tp in assigned}
        self.on_assigned(sorted(tp.partition for tp in assigned))
