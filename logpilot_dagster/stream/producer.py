"""Produce raw lines to the topic: key = source name, record timestamp = the line's event time."""

from __future__ import annotations

from typing import BinaryIO, Iterable, Iterator

from logpilot_dagster.broker import Broker
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.stream.client_noise import quiet_kafka_logs
from logpilot_dagster.stream.event_time import event_times_ms

CHUNK_LINES = 10_000


class LineProducer:
    """Sends lines as records. Delivery is at least once: ``flush`` returns when the broker acknowledged them."""

    def __init__(self, broker: Broker, registry: SchemaRegistry, topic: str | None = None) -> None:
        self.topic = topic or broker.settings.topic
        self.registry = registry
        quiet_kafka_logs()
        broker.ensure_topic(self.topic)
        self.producer = broker.producer()

    def send(self, source_name: str, lines: list[bytes]) -> int:
        """Queue lines (without their newline); blank lines are skipped, bytes that are not UTF-8 are sent as
        they are (the worker quarantines them). Returns the number of records queued."""
        lines = [line for line in lines if line.strip()]
        texts = [line.decode("utf-8", "replace") for line in lines]
        key = source_name.encode()
        for line, ts in zip(lines, event_times_ms(self.registry.sources.get(source_name), texts)):
            self.producer.send(self.topic, key=key, value=line, timestamp_ms=ts)
        return len(lines)

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()

    def __enter__(self) -> "LineProducer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_line_chunks(stream: BinaryIO, chunk_lines: int = CHUNK_LINES) -> Iterator[list[bytes]]:
    """Lines of a binary stream in chunks, newline stripped (a last line without newline included)."""
    chunk: list[bytes] = []
    for line in stream:
        chunk.append(line.rstrip(b"\r\n"))
        if len(chunk) >= chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def produce_stream(producer: LineProducer, source_name: str, chunks: Iterable[list[bytes]]) -> int:
    """Send every chunk, then wait for the broker's acknowledgement; returns the number of lines."""
    sent = sum(producer.send(source_name, chunk) for chunk in chunks)
    producer.flush()
    return sent
