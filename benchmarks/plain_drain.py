"""The live benchmark's baseline: a plain consumer that only drains a topic (no parsing, no DB), on either client.

It runs in a process of its own, with nothing but the client loaded, so that no other objects on its heap slow
its garbage collections. Prints ``{"seconds": ..., "cpu_s": ...}`` for reading ``EXPECTED`` records from the
beginning of every partition (the consumer's start-up and metadata lookups excluded). CPU counts every thread
of the process (librdkafka fetches and decodes in its own threads).

- ``kafka-python``: ``KafkaConsumer(**CLIENT_CONFIG)``, ``poll()`` (its ``max_poll_records`` per poll);
- ``confluent``: confluent-kafka's ``Consumer(CLIENT_CONFIG)`` (librdkafka properties: the benchmark passes the
  worker's settings translated as the worker translates them), ``consume(num_messages=POLL_RECORDS)``.

    python benchmarks/plain_drain.py CLIENT CLIENT_CONFIG_JSON TOPIC EXPECTED [POLL_RECORDS]
"""

from __future__ import annotations

import json
import resource
import sys
import time


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def kafka_python(config: dict, topic: str, expected: int) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**config)
    consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))])
    consumer.seek_to_beginning()
    seen, t0, cpu0 = 0, time.perf_counter(), cpu_seconds()
    while seen < expected:
        for records in consumer.poll(timeout_ms=1000).values():
            seen += len(records)
    result = {"seconds": time.perf_counter() - t0, "cpu_s": cpu_seconds() - cpu0}
    consumer.close()
    return result


def confluent(config: dict, topic: str, expected: int, poll_records: int) -> dict:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(config)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    seen, t0, cpu0 = 0, time.perf_counter(), cpu_seconds()
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
    while seen < expected:
        seen += sum(1 for m in consumer.consume(poll_records, timeout=1.0) if m.error() is None)
    result = {"seconds": time.perf_counter() - t0, "cpu_s": cpu_seconds() - cpu0}
    consumer.close()
    return result


def main() -> None:
    client, config, topic, expected = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if client == "confluent":
        result = confluent(config, topic, expected, int(sys.argv[5]))
    else:
        result = kafka_python(config, topic, expected)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
