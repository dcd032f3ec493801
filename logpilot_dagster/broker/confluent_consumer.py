"""``LogConsumer`` on confluent-kafka (librdkafka): fetching and decoding run in C threads.

- Seeks are applied as one ``assign`` with the offsets before the next fetch: librdkafka refuses a ``seek`` on a
  partition whose fetcher has not started yet, and an ``assign`` also drops what was prefetched from before.
- A partition's high watermark is librdkafka's, cached from fetch responses, once a fetch from it came back
  since ``assign``: a record, or the end-of-partition event (``enable.partition.eof``) at the head. After a
  ``poll`` that emptied librdkafka's queue it is the one read before that poll (at least the position), as
  kafka-python reports the watermark of the fetch it handed out: librdkafka prefetches in the background, and a
  fetch landing after the poll would count as lag, so the worker would hold a real-time batch until its deadline.
- librdkafka's log lines and error events go to the ``confluent_kafka`` logger (``client_noise`` turns the
  repeated ones into one line); "all brokers down" makes the next ``poll`` raise ``BrokerUnreachable``.
- The kafka-python settings of ``Broker.client_config`` (SASL/TLS included) are translated (``librdkafka_config``).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from logpilot_dagster.broker.consumer import CONFLUENT, BrokerError, BrokerUnreachable, LogConsumer, record_columns

TIMEOUT_S = 5.0
CLOSE_WAIT_S = 5.0
#: Most records one ``consume`` call hands over (librdkafka's limit is 1M); a batch takes several polls.
CONSUME_MAX = 20_000
#: librdkafka prefetches per partition up to this many KiB (default 64 MiB): bounds the worker's memory.
QUEUED_KBYTES = 16 * 1024
#: kafka-python keyword -> librdkafka property; values pass unchanged.
KAFKA_PYTHON_NAMES = {
    "bootstrap_servers": "bootstrap.servers", "group_id": "group.id", "fetch_max_bytes": "fetch.max.bytes",
    "max_partition_fetch_bytes": "max.partition.fetch.bytes", "fetch_max_wait_ms": "fetch.wait.max.ms",
    "security_protocol": "security.protocol", "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username", "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location", "ssl_certfile": "ssl.certificate.location", "ssl_keyfile": "ssl.key.location",
}
#: kafka-python settings with no librdkafka counterpart the worker needs (poll sizes are per call here).
IGNORED = {"max_poll_records", "enable_auto_commit", "auto_offset_reset"}
MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default
PROBE_GROUP = "logpilot-probe"  # librdkafka wants a group id; a consumer without one never commits
log = logging.getLogger("confluent_kafka")
_DOWN = {KafkaError._ALL_BROKERS_DOWN}
# right after a broker restart the client's metadata no longer knows the partition: retry, as for a broker down
_NOT_YET_KNOWN = (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART)


def librdkafka_config(config: dict) -> dict:
    """A consumer's kafka-python keyword arguments as librdkafka properties (unknown keywords are an error)."""
    unknown = set(config) - set(KAFKA_PYTHON_NAMES) - IGNORED
    if unknown:
        raise ValueError(f"confluent-kafka: no librdkafka setting for {sorted(unknown)}")
    properties = {KAFKA_PYTHON_NAMES[key]: value for key, value in config.items() if key in KAFKA_PYTHON_NAMES}
    if "fetch.max.bytes" in properties:  # librdkafka wants it at least message.max.bytes (1 MB by default)
        properties["message.max.bytes"] = min(MESSAGE_MAX_BYTES, properties["fetch.max.bytes"])
    return properties


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        retriable = error is None or error.retriable() or error.code() in (KafkaError._TIMED_OUT,
                                                                           KafkaError._TRANSPORT, *_DOWN,
                                                                           *_NOT_YET_KNOWN)
        name = error.name() if error is not None else type(exc).__name__
        text = error.str() if error is not None else str(exc)
        raise (BrokerUnreachable if retriable else BrokerError)(f"confluent-kafka: {name}: {text}") from exc


class ConfluentConsumer(LogConsumer):
    """``config``: kafka-python ``KafkaConsumer`` keyword arguments (see ``librdkafka_config``)."""

    client = CONFLUENT

    def __init__(self, topic: str, config: dict) -> None:
        super().__init__(topic)
        self._down: str | None = None
        self._commit_failed: str | None = None
        properties = {"group.id": PROBE_GROUP, **librdkafka_config(config), "enable.auto.commit": False,
                      "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                      "enable.partition.eof": True, "queued.max.messages.kbytes": QUEUED_KBYTES,
                      "log.connection.close": False, "logger": log, "error_cb": self._on_error,
                      "on_commit": self._on_commit}
        with _translated():
            self._consumer = Consumer(properties)
        self._next: dict[int, int | None] = {}  # per assigned partition: where the next fetch starts
        self._reassign = False
        self._fetched: set[int] = set()  # partitions a fetch came back from since the last assign
        self._handed_out: dict[int, int] = {}  # heads whose records the last poll handed out in full

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in _DOWN:
            self._down = error.str()
        log.warning("confluent-kafka: %s: %s", error.name(), error.str())

    def _on_commit(self, error: KafkaError | None, _partitions) -> None:
        if error is not None:
            self._commit_failed = f"confluent-kafka: {error.name()}: {error.str()}"

    def _tp(self, partition: int, offset: int | None = None) -> TopicPartition:
        if offset is None:
            return TopicPartition(self.topic, partition)
        return TopicPartition(self.topic, partition, offset)

    def partitions(self) -> list[int]:
        with _translated():
            topic = self._consumer.list_topics(self.topic, timeout=TIMEOUT_S).topics.get(self.topic)
        return [] if topic is None or topic.error is not None else sorted(topic.partitions)

    def assign(self, partitions: list[int]) -> None:
        self._next = {p: None for p in partitions}
        self._reassign = True

    def seek(self, partition: int, offset: int | None) -> None:
        if offset is None:
            with _translated():
                offset = self._consumer.get_watermark_offsets(self._tp(partition), timeout=TIMEOUT_S)[0]
        self._next[partition] = offset
        self._reassign = True

    def _apply_seeks(self) -> None:
        if not self._reassign:
            return
        for p, offset in self._next.items():
            if offset is None:
                self._next[p] = self.committed(p)
                if self._next[p] is None:
                    self.seek(p, None)
        with _translated():
            self._consumer.assign([self._tp(p, o) for p, o in self._next.items()])
        self._reassign, self._fetched, self._handed_out = False, set(), {}

    def position(self, partition: int) -> int:
        self._apply_seeks()
        return self._next[partition]

    def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        with _translated():
            return {p: self._consumer.get_watermark_offsets(self._tp(p), timeout=TIMEOUT_S)[1] for p in partitions}

    def committed(self, partition: int) -> int | None:
        with _translated():
            [tp] = self._consumer.committed([self._tp(partition)], timeout=TIMEOUT_S)
        return tp.offset if tp.offset >= 0 else None

    def highwater(self, partition: int) -> int | None:
        if self._reassign or partition not in self._fetched:
            return None
        if partition in self._handed_out:
            return self._handed_out[partition]
        high = self._consumer.get_watermark_offsets(self._tp(partition), cached=True)[1]
        return high if high >= 0 else None

    def _cached_heads(self) -> dict[int, int]:
        heads = {p: self._consumer.get_watermark_offsets(self._tp(p), cached=True)[1] for p in self._fetched}
        return {p: high for p, high in heads.items() if high >= 0}

    def poll(self, timeout_s: float, max_records: int) -> pa.Table:
        self._apply_seeks()
        limit = min(max_records, CONSUME_MAX)
        before = self._cached_heads()
        with _translated():
            messages = self._consumer.consume(limit, timeout=0)
            if not messages:  # wait for the first record only, like kafka-python's poll
                first = self._consumer.poll(timeout_s)
                messages = [first] if first is not None else []
                if first is not None and limit > 1:
                    messages += self._consumer.consume(limit - 1, timeout=0)
        if self._down is not None:
            down, self._down = self._down, None
            raise BrokerUnreachable(f"confluent-kafka: {down}")
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:  # its offset is not always set
                self._fetched.add(message.partition())
            else:
                raise (BrokerUnreachable if error.retriable() else BrokerError)(
                    f"confluent-kafka: {error.name()}: {error.str()}")
        columns = record_columns([m.partition() for m in records], [m.offset() for m in records],
                                 [m.timestamp()[1] for m in records], [m.key() for m in records],
                                 [m.value() for m in records])
        if records:
            self._fetched.update(pc.unique(columns.column("partition")).to_pylist())
            for tp in self._consumer.position([self._tp(p) for p in self._fetched]):
                if tp.offset >= 0:  # else nothing consumed from it since the assign
                    self._next[tp.partition] = tp.offset
        drained = len(messages) < limit  # so every record fetched before the poll was handed out
        self._handed_out = {p: max(high, self._next[p]) for p, high in before.items()} if drained else {}
        return columns

    def commit(self, offsets: dict[int, int]) -> None:
        """Asynchronous: librdkafka's synchronous commit has no timeout and waits for ever on a broker that left
        (for another port). An earlier commit's failure, known once a poll brought its outcome, is raised here
        after this one is sent."""
        with _translated():
            self._consumer.commit(offsets=[self._tp(p, o) for p, o in offsets.items()], asynchronous=True)
        failed, self._commit_failed = self._commit_failed, None
        if failed is not None:
            raise BrokerError(failed)

    def close(self) -> None:
        """librdkafka's close waits for queued commits, for as long as their coordinator is gone (the broker
        moved to another port, or died): it runs on its own thread, waited for ``CLOSE_WAIT_S`` at most."""
        closer = threading.Thread(target=self._consumer.close, name="confluent-close", daemon=True)
        closer.start()
        closer.join(CLOSE_WAIT_S)
